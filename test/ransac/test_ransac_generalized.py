"""Generalized (multi-frame) robust PnP against known reference poses."""

from __future__ import annotations

import numpy as np
import pytest

from seqace_ros.core.geometry import invert_transform, pose_error
from seqace_ros.ransac import solve_generalized_pnp, solve_pnp
from seqace_ros.ransac.synthetic import make_generalized_problem, make_pnp_problem


@pytest.mark.parametrize(("num_frames", "outlier_ratio"), [(1, 0.5), (2, 0.3), (4, 0.5), (4, 0.7)])
def test_recovers_reference_pose(num_frames: int, outlier_ratio: float):
    rng = np.random.default_rng(num_frames * 10 + int(10 * outlier_ratio))
    for trial in range(3):
        problem = make_generalized_problem(rng, num_frames, 250, outlier_ratio, 1.0)
        result = solve_generalized_pnp(
            problem.points2d, problem.points3d, problem.frame_index, problem.intrinsics_K4,
            problem.T_ref_frame_K44, seed=trial,
        )  # fmt: skip
        assert result.success
        translation_m, rotation_deg = pose_error(result.T_world_ref, problem.T_world_ref)
        assert translation_m < 0.01, translation_m
        assert rotation_deg < 0.1, rotation_deg
        found = np.sum(result.inliers & problem.is_inlier) / np.sum(problem.is_inlier)
        assert found > 0.99


def test_all_frames_constrain_the_pose():
    """Frames seen at an offset: a pose ignoring their transforms would miss their inliers."""
    problem = make_generalized_problem(np.random.default_rng(1), 4, 200, 0.3, 1.0)
    result = solve_generalized_pnp(
        problem.points2d, problem.points3d, problem.frame_index, problem.intrinsics_K4,
        problem.T_ref_frame_K44, seed=0,
    )  # fmt: skip
    for k in range(4):
        in_frame = problem.frame_index == k
        assert result.inliers[in_frame & problem.is_inlier].mean() > 0.99
    wrong = solve_generalized_pnp(
        problem.points2d, problem.points3d, problem.frame_index, problem.intrinsics_K4,
        np.tile(np.eye(4), (4, 1, 1)), seed=0,
    )  # fmt: skip
    assert wrong.num_inliers < 0.6 * result.num_inliers


def test_single_frame_matches_solve_pnp():
    problem = make_pnp_problem(np.random.default_rng(2), 400, 0.5, 1.0)
    single = solve_pnp(problem.points2d, problem.points3d, problem.intrinsics, seed=5)
    general = solve_generalized_pnp(
        problem.points2d, problem.points3d, np.zeros(400, dtype=np.int64),
        np.asarray([problem.intrinsics]), np.eye(4)[None], seed=5,
    )  # fmt: skip
    assert np.allclose(single.T_world_cam, general.T_world_ref, atol=1e-12)
    assert np.array_equal(single.inliers, general.inliers)


def test_reference_frame_need_not_observe_anything():
    """Frame 0 (the reference) has no correspondences; the pose is still the reference's."""
    problem = make_generalized_problem(np.random.default_rng(3), 3, 300, 0.4, 0.5)
    keep = problem.frame_index != 0
    result = solve_generalized_pnp(
        problem.points2d[keep], problem.points3d[keep], problem.frame_index[keep],
        problem.intrinsics_K4, problem.T_ref_frame_K44, seed=0,
    )  # fmt: skip
    assert result.success
    translation_m, rotation_deg = pose_error(result.T_world_ref, problem.T_world_ref)
    assert translation_m < 0.01
    assert rotation_deg < 0.1
    T_world_frame1 = result.T_world_ref @ problem.T_ref_frame_K44[1]
    assert pose_error(T_world_frame1, problem.T_world_ref @ problem.T_ref_frame_K44[1])[0] < 0.01
    assert np.allclose(invert_transform(invert_transform(result.T_world_ref)), result.T_world_ref)


def test_frames_with_fewer_than_three_points_are_scored_not_sampled():
    problem = make_generalized_problem(np.random.default_rng(4), 2, 200, 0.3, 1.0)
    keep = (problem.frame_index == 0) | (np.arange(len(problem.frame_index)) < 202)
    result = solve_generalized_pnp(
        problem.points2d[keep], problem.points3d[keep], problem.frame_index[keep],
        problem.intrinsics_K4, problem.T_ref_frame_K44, seed=0,
    )  # fmt: skip
    assert result.success
    lonely = problem.frame_index[keep] == 1
    assert lonely.sum() == 2
    only_lonely = solve_generalized_pnp(
        problem.points2d[keep][:4], problem.points3d[keep][:4],
        np.array([0, 1, 0, 1]), problem.intrinsics_K4, problem.T_ref_frame_K44, seed=0,
    )  # fmt: skip
    assert not only_lonely.success
    assert only_lonely.num_hypotheses == 0
