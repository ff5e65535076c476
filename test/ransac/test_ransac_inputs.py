"""Bad input never crashes: typed errors naming the problem, plus a hypothesis fuzz test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seqace_ros.ransac import solve_generalized_pnp, solve_pnp
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
        solve_pnp(problem.points2d, problem.points3d, problem.intrinsics, **{option: value})


@pytest.mark.parametrize("intrinsics", [np.ones((1, 4)), ("a", 1, 1, 1), None])
def test_malformed_intrinsics_raise_value_error(problem, intrinsics):
    with pytest.raises((ValueError, TypeError), match=r"intrinsics|float|could not convert"):
        solve_pnp(problem.points2d, problem.points3d, intrinsics)


def test_unknown_or_mistyped_options_are_rejected(problem):
    with pytest.raises(TypeError, match="threshold"):
        solve_pnp(problem.points2d, problem.points3d, problem.intrinsics, threshold=5.0)
    with pytest.raises(TypeError):
        solve_pnp(problem.points2d, problem.points3d, problem.intrinsics, max_hypotheses="64")
    with pytest.raises(TypeError, match="seed must be an int"):
        solve_pnp(problem.points2d, problem.points3d, problem.intrinsics, seed=1.5)


def test_generalized_input_errors(problem):
    p2, p3 = problem.points2d, problem.points3d
    n = len(p2)
    frames = np.zeros(n, dtype=np.int64)
    K1 = np.array([K])
    T1 = np.eye(4)[None]
    with pytest.raises(ValueError, match=r"frame_index\[3\] = 1 is outside \[0, 1\)"):
        solve_generalized_pnp(p2, p3, np.where(np.arange(n) == 3, 1, 0), K1, T1)
    with pytest.raises(ValueError, match=r"frame_index must have an integer dtype"):
        solve_generalized_pnp(p2, p3, frames.astype(float), K1, T1)
    with pytest.raises(ValueError, match=rf"frame_index must have shape \({n},\)"):
        solve_generalized_pnp(p2, p3, frames[:-1], K1, T1)
    with pytest.raises(ValueError, match=r"one T_ref_frame_K44 matrix per frame"):
        solve_generalized_pnp(p2, p3, frames, K1, np.tile(np.eye(4), (2, 1, 1)))
    not_rigid = np.eye(4)[None].copy()
    not_rigid[0, 0, 0] = 2.0
    with pytest.raises(ValueError, match=r"T_ref_frame_K44\[0\] is not a rigid transform"):
        solve_generalized_pnp(p2, p3, frames, K1, not_rigid)
    with pytest.raises(ValueError, match=r"intrinsics_K4\[0\]: focal lengths must be > 0"):
        solve_generalized_pnp(p2, p3, frames, np.array([[500.0, 0.0, 1.0, 1.0]]), T1)
    with pytest.raises(ValueError, match=r"per frame \(K >= 1\)"):
        solve_generalized_pnp(p2, p3, frames, np.zeros((0, 4)), np.zeros((0, 4, 4)))


def test_private_extension_rechecks_shapes():
    from seqace_ros.ransac import RansacOptions, _ransac

    with pytest.raises(ValueError, match=r"points3d must have shape \(N, 3\), got \(4, 2\)"):
        _ransac.solve_pnp(np.zeros((5, 2)), np.zeros((4, 2)), K, RansacOptions())
    with pytest.raises(ValueError, match="need at least 4 correspondences, got 2"):
        _ransac.solve_pnp(np.zeros((2, 2)), np.zeros((2, 3)), K, RansacOptions())
    with pytest.raises(ValueError, match="points2d has a non-finite value at row 1"):
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
        result = solve_pnp(points2d, points3d, intrinsics, threshold_px=threshold_px, seed=seed)
    except ValueError:
        return
    n = len(points2d)
    assert isinstance(result.success, bool)
    assert result.T_world_cam.shape == (4, 4)
    assert np.all(np.isfinite(result.T_world_cam))
    assert result.inliers.shape == (n,)
    assert 0 <= result.num_inliers <= n


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
    result = solve_pnp(points2d, points3d, K, seed=seed)
    assert result.inliers.shape == (n,)
    assert np.all(np.isfinite(result.T_world_cam))


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(4, 40),
    n_frames=st.integers(1, 4),
    data=st.data(),
)
def test_fuzz_generalized_never_crashes(n, n_frames, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    points2d = rng.uniform(-100, 700, size=(n, 2))
    points3d = rng.normal(size=(n, 3)) * data.draw(st.sampled_from([1e-3, 1.0, 1e3]))
    frame_index = data.draw(hnp.arrays(np.int64, n, elements=st.integers(-1, n_frames)))
    intrinsics = data.draw(hnp.arrays(np.float64, (n_frames, 4), elements=_values))
    T = np.tile(np.eye(4), (n_frames, 1, 1))
    T[:, :3, 3] = rng.normal(size=(n_frames, 3))
    if data.draw(st.booleans()):
        T[0, 0, 1] = data.draw(_values)  # maybe not rigid (or not finite)
    try:
        result = solve_generalized_pnp(points2d, points3d, frame_index, intrinsics, T, seed=0)
    except ValueError:
        return
    assert result.inliers.shape == (n,)
    assert np.all(np.isfinite(result.T_world_ref))
