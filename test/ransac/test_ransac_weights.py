"""Per-correspondence weights of the C++ PnP solver: they scale each correspondence's soft
score and least-squares term, so a caller can fuse sources of different precision."""

from __future__ import annotations

import numpy as np
import pytest

from seqace_ros.core.geometry import make_transform, pose_error
from seqace_ros.ransac import RansacOptions, solve_pnp
from seqace_ros.ransac.synthetic import INTRINSICS, PnPProblem, make_pnp_problem, observe


def _two_sources(shift_m: float, bias_px: float = 0.0,
                 seed: int = 0) -> tuple[PnPProblem, PnPProblem]:
    """Two sets of 300 correspondences: the first seen from a random pose, the second from
    that pose moved ``shift_m`` along x, its pixels biased by ``bias_px`` in u."""
    rng = np.random.default_rng(seed)
    first = make_pnp_problem(rng, 300, 0.0, 0.5)
    second = observe(rng, first.T_world_cam @ make_transform(np.eye(3), [shift_m, 0.0, 0.0]),
                     300, 0.0, 0.5)
    biased = second.points2d + np.array([bias_px, 0.0])
    return first, PnPProblem(biased, second.points3d, second.intrinsics, second.T_world_cam,
                             second.is_inlier)


def _solve(first: PnPProblem, second: PnPProblem, w_first: float, w_second: float,
           **options: float) -> np.ndarray:
    weights = np.concatenate([np.full(300, w_first), np.full(300, w_second)])
    result = solve_pnp(np.concatenate([first.points2d, second.points2d]),
                       np.concatenate([first.points3d, second.points3d]), INTRINSICS,
                       RansacOptions(seed=0, **options), weights)
    assert result.success
    return result.T_world_cam


def test_uniform_weights_change_nothing_but_the_score() -> None:
    problem = make_pnp_problem(np.random.default_rng(1), 500, 0.3, 1.0)
    plain = solve_pnp(problem.points2d, problem.points3d, INTRINSICS, RansacOptions(seed=3))
    scaled = solve_pnp(problem.points2d, problem.points3d, INTRINSICS, RansacOptions(seed=3),
                       np.full(500, 2.5))
    np.testing.assert_allclose(scaled.T_world_cam, plain.T_world_cam, atol=1e-9)
    np.testing.assert_array_equal(scaled.inliers, plain.inliers)
    assert scaled.stats.num_inliers == plain.stats.num_inliers
    assert scaled.stats.score == pytest.approx(2.5 * plain.stats.score)


def test_weights_decide_between_two_consistent_poses() -> None:
    """Two equally large sets of correspondences, each exact under its own pose 20 cm from the
    other's: the solve takes the pose of the set weighted three times as much."""
    first, second = _two_sources(shift_m=0.2)
    for w_first, w_second, expected in ((3.0, 1.0, first), (1.0, 3.0, second)):
        moved_m, _ = pose_error(_solve(first, second, w_first, w_second), expected.T_world_cam)
        assert moved_m < 0.005, (w_first, w_second, moved_m)


def _mean_u_residual_px(T_world_cam: np.ndarray, problem: PnPProblem) -> float:
    """Mean signed u reprojection error of ``problem``'s correspondences under the pose."""
    fx, _, cx, _ = INTRINSICS
    cam = (problem.points3d - T_world_cam[:3, 3]) @ T_world_cam[:3, :3]
    return float(np.mean(fx * cam[:, 0] / cam[:, 2] + cx - problem.points2d[:, 0]))


def test_least_squares_splits_a_disagreement_by_weight() -> None:
    """Both sets are seen from one pose but the second's pixels are biased by 3 px in u
    (within the threshold, so every point stays an inlier): the weighted least squares leaves
    each set a share of the disagreement inverse to its weight, 3 * w2 / (w1 + w2) px on the
    first."""
    first, second = _two_sources(shift_m=0.0, bias_px=3.0)
    for w_first in (0.1, 1.0, 10.0):
        residual = _mean_u_residual_px(_solve(first, second, w_first, 1.0), first)
        assert abs(residual) == pytest.approx(3.0 / (w_first + 1.0), abs=0.15), w_first


@pytest.mark.parametrize(("weights", "match"), [
    (np.zeros(50), r"weights must be finite and > 0, got 0.000000 in row 0"),
    (np.r_[np.ones(10), -1.0, np.ones(39)], r"weights must be finite and > 0.* in row 10"),
    (np.r_[np.ones(3), np.nan, np.ones(46)], r"weights must be finite and > 0, got nan in row 3"),
    (np.ones(49), r"weights must have shape \(50,\), got \(49,\)"),
    (np.ones((50, 1)), r"weights must have shape \(50,\), got \(50, 1\)"),
])
def test_bad_weights_raise_value_error(weights: np.ndarray, match: str) -> None:
    problem = make_pnp_problem(np.random.default_rng(0), 50, 0.2, 1.0)
    with pytest.raises(ValueError, match=match):
        solve_pnp(problem.points2d, problem.points3d, problem.intrinsics, None, weights)
