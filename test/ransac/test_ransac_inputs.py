"""Bad input never crashes: typed errors naming the problem, plus a hypothesis fuzz test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seqace_ros.ransac import RansacOptions, _ransac, solve_pnp
from seqace_ros.ransac.synthetic import make_pnp_problem

K = (500.0, 500.0, 320.0, 240.0)


@pytest.fixture(scope="module")
def problem():
    return make_pnp_problem(np.random.default_rng(0), 50, 0.2, 1.0)


@pytest.mark.parametrize(
    ("points2d", "points3d", "intrinsics", "match"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), K, r"at least 4 correspondences, got N=3"),
        (np.zeros((0, 2)), np.zeros((0, 3)), K, r"at least 4 correspondences, got N=0"),
        (np.zeros((5, 2)), np.zeros((6, 3)), K, r"same N, got 5 and 6"),
        (np.zeros((5, 3)), np.zeros((5, 3)), K, r"points2d must have shape \(N, 2\), got \(5, 3\)"),
        (np.zeros((5, 2)), np.zeros((5,)), K, r"points3d must have shape \(N, 3\), got \(5,\)"),
        (np.zeros((5, 2), dtype=int), np.zeros((5, 3)), K, r"points2d .* floating-point .* int"),
        (np.zeros((5, 2)), np.array([["a"] * 3] * 5), K, r"points3d .* floating-point .*<U1"),
        (np.zeros((5, 2)), np.zeros((5, 3)), (0.0, 500.0, 1.0, 1.0), r"focal .* > 0.*fx=0.0"),
        (np.zeros((5, 2)), np.zeros((5, 3)), (500.0, -1.0, 1.0, 1.0), r"focal .* > 0.*fy=-1.0"),
        (np.zeros((5, 2)), np.zeros((5, 3)), (500.0, 500.0, np.nan, 1.0), r"intrinsics .*finite"),
        (
            np.zeros((5, 2)),
            np.zeros((5, 3)),
            (500.0, 500.0, 1.0),
            r"intrinsics must be .*got shape \(3,\)",
        ),
    ],
)
def test_invalid_input_raises_value_error(points2d, points3d, intrinsics, match):
    with pytest.raises(ValueError, match=match):
        solve_pnp(points2d, points3d, intrinsics)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected_with_their_row(problem, bad):
    points2d = problem.points2d.copy()
    points2d[7, 1] = bad
    with pytest.raises(ValueError, match=r"points2d must be finite.*row 7"):
        solve_pnp(points2d, problem.points3d, problem.intrinsics)
    points3d = problem.points3d.copy()
    points3d[11, 0] = bad
    with pytest.raises(ValueError, match=r"points3d must be finite.*row 11"):
        solve_pnp(problem.points2d, points3d, problem.intrinsics)


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("threshold_px", 0.0, "threshold_px must be finite and > 0"),
        ("threshold_px", float("nan"), "threshold_px must be finite and > 0"),
        ("max_hypotheses", 0, "max_hypotheses must be >= 1"),
        ("max_samples", 0, "max_samples must be >= 1"),
        ("confidence", 0.0, r"confidence must be in \(0, 1\]"),
        ("refine_top_k", 0, "refine_top_k must be >= 1"),
        ("min_inliers", 0, "min_inliers must be >= 1"),
        ("max_score_points", -1, "max_score_points must be >= 0"),
        ("min_inlier_ratio", 1.5, r"min_inlier_ratio must be in \[0, 1\]"),
        ("lo_max_points", -1, "lo_max_points and polish_iterations must be >= 0"),
        ("polish_iterations", -2, "lo_max_points and polish_iterations must be >= 0"),
        ("max_lo_rounds", -1, "lo_max_points and polish_iterations must be >= 0"),
        ("seed", -1, r"seed must be in \[0, 2\*\*64\)"),
    ],
)
def test_invalid_options_raise_value_error(problem, option, value, match):
    with pytest.raises(ValueError, match=match):
        solve_pnp(problem.points2d, problem.points3d, problem.intrinsics,
                  RansacOptions(**{option: value}))  # fmt: skip


@pytest.mark.parametrize("intrinsics", [np.ones((1, 4)), ("a", 1, 1, 1), None])
def test_malformed_intrinsics_raise_value_error(problem, intrinsics):
    with pytest.raises((ValueError, TypeError), match=r"intrinsics|float|could not convert"):
        solve_pnp(problem.points2d, problem.points3d, intrinsics)


def test_unknown_or_mistyped_options_are_rejected(problem):
    with pytest.raises(TypeError, match=r"no option 'threshold'.*threshold_px"):
        RansacOptions(threshold=5.0)
    with pytest.raises(TypeError, match="max_hypotheses must be an int, got str"):
        RansacOptions(max_hypotheses="64")
    with pytest.raises(TypeError, match="max_hypotheses must be an int, got float"):
        RansacOptions(max_hypotheses=64.0)
    with pytest.raises(TypeError, match="seed must be an int or None, got float"):
        RansacOptions(seed=1.5)
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*64\)"):
        RansacOptions(seed=2**64)
    with pytest.raises(ValueError, match="min_inliers must fit in a C int"):
        RansacOptions(min_inliers=2**40)
    options = RansacOptions()
    with pytest.raises(TypeError, match="soft_scoring must be a bool, got int"):
        options.soft_scoring = 1
    with pytest.raises(TypeError, match="threshold_px must be a real number, got str"):
        options.threshold_px = "5"
    with pytest.raises(AttributeError, match="threshold"):
        options.threshold = 5.0
    with pytest.raises(TypeError, match="options must be a RansacOptions, got dict"):
        solve_pnp(problem.points2d, problem.points3d, problem.intrinsics, {"seed": 0})


def test_options_are_typed_attributes_with_defaults():
    options = RansacOptions(threshold_px=4, seed=np.uint64(7), soft_scoring=False)
    assert options.threshold_px == 4.0
    assert isinstance(options.threshold_px, float)
    assert options.seed == 7
    assert options.soft_scoring is False
    assert RansacOptions().seed is None
    assert RansacOptions().max_hypotheses == 64
    options.seed = None
    options.max_hypotheses = np.int32(32)
    assert options.max_hypotheses == 32
    assert "max_hypotheses=32" in repr(options)
    assert "seed=None" in repr(options)


def test_private_extension_rechecks_shapes():
    with pytest.raises(ValueError, match=r"points3d must have shape \(N, 3\), got \(4, 2\)"):
        _ransac.solve_pnp(np.zeros((5, 2)), np.zeros((4, 2)), K, RansacOptions())
    with pytest.raises(ValueError, match="need at least 4 correspondences, got N=2"):
        _ransac.solve_pnp(np.zeros((2, 2)), np.zeros((2, 3)), K, RansacOptions())
    with pytest.raises(ValueError, match="points2d must be finite, found NaN or Inf in row 1"):
        _ransac.solve_pnp(np.array([[0, 0], [np.nan, 0], [1, 1], [2, 2]], dtype=float),
                          np.zeros((4, 3)), K, RansacOptions())  # fmt: skip


_values = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.floats(-1e3, 1e3)
_ELEMENTS = {
    np.float64: _values,
    np.float32: st.floats(allow_nan=True, allow_infinity=True, width=32),
    np.int32: None,
}


@st.composite
def _arrays(draw: st.DrawFn, cols: int) -> np.ndarray:
    n = draw(st.integers(0, 12))
    c = draw(st.sampled_from([cols, cols, cols, cols - 1, cols + 1]))
    dtype = draw(st.sampled_from([np.float64, np.float64, np.float32, np.int32]))
    shape = draw(st.sampled_from([(n, c), (n, c), (n,), (n, c, 1)]))
    return draw(hnp.arrays(dtype, shape, elements=_ELEMENTS[dtype]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    points2d=_arrays(2),
    points3d=_arrays(3),
    intrinsics=st.tuples(_values, _values, _values, _values),
    threshold_px=st.floats(-1.0, 50.0),
    seed=st.integers(0, 2**64 - 1),
)
def test_fuzz_never_crashes(points2d, points3d, intrinsics, threshold_px, seed):
    try:
        options = RansacOptions(threshold_px=threshold_px, seed=seed)
        result = solve_pnp(points2d, points3d, intrinsics, options)
    except ValueError:
        return
    n = len(points2d)
    assert isinstance(result.success, bool)
    assert result.T_world_cam.shape == (4, 4)
    assert np.all(np.isfinite(result.T_world_cam))
    assert result.inliers.shape == (n,)
    assert 0 <= result.stats.num_inliers <= n


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(4, 60),
    scale=st.sampled_from([1e-6, 1e-3, 1.0, 1e3, 1e6]),
    duplicates=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_fuzz_degenerate_geometry_gives_a_result(n, scale, duplicates, seed):
    """Finite but degenerate data (tiny or huge scales, repeated points) never crashes."""
    rng = np.random.default_rng(seed)
    points3d = rng.normal(size=(n, 3)) * scale
    points2d = rng.uniform(0, 640, size=(n, 2))
    if duplicates:
        points3d[:] = points3d[0]
        points2d[: n // 2] = points2d[0]
    result = solve_pnp(points2d, points3d, K, RansacOptions(seed=seed))
    assert result.inliers.shape == (n,)
    assert np.all(np.isfinite(result.T_world_cam))
