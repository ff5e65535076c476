"""The sequence mode's local map: reprojection errors, inlier selection, rolling buffer, cap."""

from __future__ import annotations

import numpy as np
from pinhole import project

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import make_transform, transform_points
from seqace_ros.pipeline.localization.local_map import (
    LocalMap,
    reprojection_errors_px,
    update_local_map,
)

INTRINSICS = Intrinsics(500.0, 480.0, 320.0, 240.0, 640, 480)


def _rotation_z(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


T_WORLD_CAM = make_transform(_rotation_z(20.0), [0.3, -0.2, 1.0])


def _points(n: int, birth: int, seed: int) -> LocalMap:
    """n scene points in front of the camera and their exact pixels."""
    rng = np.random.default_rng(seed)
    points_cam = np.column_stack([rng.uniform(-1, 1, n), rng.uniform(-0.8, 0.8, n),
                                  rng.uniform(1.0, 4.0, n)])
    pixels = project(points_cam, INTRINSICS.K)
    scene = transform_points(T_WORLD_CAM, points_cam)
    return LocalMap(pixels, scene, np.full(n, birth, dtype=np.int64))


def test_reprojection_errors() -> None:
    points = _points(20, 0, seed=1)
    errors = reprojection_errors_px(T_WORLD_CAM, INTRINSICS, points.points2d_M2,
                                    points.scene_points_M3)
    np.testing.assert_allclose(errors, 0.0, atol=1e-9)
    moved = points.points2d_M2 + np.array([3.0, 4.0])
    errors = reprojection_errors_px(T_WORLD_CAM, INTRINSICS, moved, points.scene_points_M3)
    np.testing.assert_allclose(errors, 5.0, atol=1e-9)
    behind = transform_points(T_WORLD_CAM, np.array([[0.0, 0.0, -2.0], [0.0, 0.0, 0.0]]))
    errors = reprojection_errors_px(T_WORLD_CAM, INTRINSICS, np.full((2, 2), 320.0), behind)
    assert np.isinf(errors).all()


def test_update_keeps_inliers_of_the_pose_and_drops_old_points() -> None:
    current = _points(30, birth=10, seed=2)
    carried = _points(40, birth=8, seed=3)
    expired = _points(5, birth=5, seed=4)  # born 5 frames before frame 10: out of a 5-buffer
    wrong = LocalMap(carried.points2d_M2[:10] + 25.0, carried.scene_points_M3[:10],
                     np.full(10, 9, dtype=np.int64))
    old = LocalMap(*(np.concatenate([a, b, c]) for a, b, c in zip(
        (carried.points2d_M2, carried.scene_points_M3, carried.birth_M),
        (expired.points2d_M2, expired.scene_points_M3, expired.birth_M),
        (wrong.points2d_M2, wrong.scene_points_M3, wrong.birth_M), strict=True)))
    updated = update_local_map(old, current, T_WORLD_CAM, INTRINSICS, threshold_px=10.0,
                               frame_index=10, buffer_length=5, max_points=1000)
    assert len(updated) == 30 + 40
    assert (updated.birth_M == 10).sum() == 30
    assert (updated.birth_M == 8).sum() == 40
    errors = reprojection_errors_px(T_WORLD_CAM, INTRINSICS, updated.points2d_M2,
                                    updated.scene_points_M3)
    assert errors.max() < 1e-6


def test_update_cap_keeps_newest_points() -> None:
    current = _points(30, birth=4, seed=5)
    carried = _points(40, birth=3, seed=6)
    updated = update_local_map(carried, current, T_WORLD_CAM, INTRINSICS, 10.0, frame_index=4,
                               buffer_length=5, max_points=50)
    assert len(updated) == 50
    assert (updated.birth_M == 4).sum() == 30


def test_a_wrong_pose_empties_the_map() -> None:
    current = _points(30, birth=0, seed=7)
    T_wrong = T_WORLD_CAM @ make_transform(np.eye(3), [0.5, 0.0, 0.0])
    updated = update_local_map(LocalMap.empty(), current, T_wrong, INTRINSICS, 10.0, 0, 5, 100)
    assert len(updated) == 0


def test_select_moves_points() -> None:
    points = _points(6, birth=2, seed=8)
    moved = points.points2d_M2 + 1.0
    keep = np.array([True, False, True, False, False, True])
    selected = points.select(keep, moved)
    np.testing.assert_allclose(selected.points2d_M2, moved[keep])
    np.testing.assert_allclose(selected.scene_points_M3, points.scene_points_M3[keep])
    assert len(LocalMap.empty()) == 0
