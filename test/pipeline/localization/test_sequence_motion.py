"""Relative motion from tracked points: the regression error shared by both frames cancels."""

from __future__ import annotations

import numpy as np
from pinhole import project, project_world

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import make_transform, pose_error, transform_points
from seqace_ros.pipeline.localization.motion import relative_motion
from seqace_ros.ransac import RansacOptions, solve_pnp

INTRINSICS = Intrinsics(525.0, 525.0, 320.0, 240.0, 640, 480)


def _solve(points2d_N2: np.ndarray, scene_points_N3: np.ndarray, intrinsics: Intrinsics):
    result = solve_pnp(points2d_N2, scene_points_N3, intrinsics,
                       RansacOptions(threshold_px=10.0, seed=0))
    return (result.T_world_cam if result.success else None), result.inliers


def _rotation_y(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def test_shared_scene_coordinate_errors_cancel_in_the_relative_motion() -> None:
    rng = np.random.default_rng(0)
    T_world_previous = make_transform(_rotation_y(10.0), [0.2, -0.1, 0.3])
    T_previous_current = make_transform(_rotation_y(1.5), [0.02, 0.005, 0.01])
    T_world_current = T_world_previous @ T_previous_current
    points_cam = np.column_stack([rng.uniform(-1.2, 1.2, 600), rng.uniform(-0.9, 0.9, 600),
                                  rng.uniform(1.5, 3.5, 600)])
    points_world = transform_points(T_world_previous, points_cam)
    noise = 0.1
    pixels_previous = (project_world(T_world_previous, points_world, INTRINSICS.K)
                       + rng.normal(0, noise, (600, 2)))
    pixels_current = (project_world(T_world_current, points_world, INTRINSICS.K)
                      + rng.normal(0, noise, (600, 2)))
    # regressed scene coordinates: a smooth (region-wide) error plus per-point noise, 2-3 cm
    regressed = (points_world + 0.02 * np.sin(3.0 * points_world[:, ::-1])
                 + rng.normal(0, 0.01, points_world.shape))
    T_estimate = relative_motion(_solve, pixels_previous, pixels_current, regressed, INTRINSICS,
                                 min_inliers=50)
    assert T_estimate is not None
    relative_m, relative_deg = pose_error(T_estimate, T_previous_current)
    # each frame alone is off by the regression error ...
    absolute_m, absolute_deg = pose_error(_solve(pixels_current, regressed, INTRINSICS)[0],
                                          T_world_current)
    assert absolute_m > 0.005
    # ... but the motion between them is several times more precise
    assert relative_m < absolute_m / 3
    assert relative_deg < absolute_deg / 2


def test_too_few_points_give_none() -> None:
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(-1, 1, 20), rng.uniform(-1, 1, 20),
                              rng.uniform(2, 3, 20)])
    pixels = project(points, INTRINSICS.K)
    assert relative_motion(_solve, pixels, pixels, points, INTRINSICS, min_inliers=30) is None
    T_same = relative_motion(_solve, pixels, pixels, points, INTRINSICS, min_inliers=10)
    assert T_same is not None
    np.testing.assert_allclose(T_same, np.eye(4), atol=1e-6)
    # pixels unrelated to the points: no pose explains them
    noise = rng.uniform([0, 0], [640, 480], (20, 2))
    assert relative_motion(_solve, noise, pixels, points, INTRINSICS, min_inliers=10) is None
