"""Conventions of seqace_ros.core.geometry: quaternions (x, y, z, w), inverses, pose errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from data_paths import require_redkitchen

from seqace_ros.core.geometry import (
    interpolate_transform,
    invert_transform,
    is_rigid_transform,
    make_transform,
    orthonormalize,
    pose_error,
    quaternion_xyzw_from_rotation,
    rotation_from_quaternion_xyzw,
    transform_from_translation_quaternion,
    transform_points,
    translation_quaternion_from_transform,
)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return rotation_from_quaternion_xyzw(q / np.linalg.norm(q))


def rot_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_quaternion_order_is_xyzw() -> None:
    # 90 deg about z: q = (0, 0, sin 45, cos 45) in (x, y, z, w)
    q = quaternion_xyzw_from_rotation(rot_z(90.0))
    np.testing.assert_allclose(q, [0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-12)
    np.testing.assert_allclose(rotation_from_quaternion_xyzw([0, 0, 0, 1]), np.eye(3))


def test_quaternion_round_trip_and_w_non_negative() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        R = random_rotation(rng)
        q = quaternion_xyzw_from_rotation(R)
        assert q[3] >= 0.0
        assert np.linalg.norm(q) == pytest.approx(1.0)
        np.testing.assert_allclose(rotation_from_quaternion_xyzw(q), R, atol=1e-10)


def test_quaternion_near_180_degrees() -> None:
    R = rotation_from_quaternion_xyzw([1.0, 1e-9, 0.0, 0.0])  # 180 deg about x
    np.testing.assert_allclose(rotation_from_quaternion_xyzw(
        quaternion_xyzw_from_rotation(R)), R, atol=1e-9)


def test_zero_quaternion_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-zero"):
        rotation_from_quaternion_xyzw([0.0, 0.0, 0.0, 0.0])


def test_translation_quaternion_round_trip() -> None:
    rng = np.random.default_rng(1)
    T = make_transform(random_rotation(rng), rng.normal(size=3))
    t, q = translation_quaternion_from_transform(T)
    np.testing.assert_allclose(transform_from_translation_quaternion(t, q), T, atol=1e-12)


def test_inverse_composes_to_identity_and_moves_points_back() -> None:
    rng = np.random.default_rng(2)
    T_world_cam = make_transform(random_rotation(rng), rng.normal(size=3))
    T_cam_world = invert_transform(T_world_cam)
    np.testing.assert_allclose(T_world_cam @ T_cam_world, np.eye(4), atol=1e-12)
    points_cam = rng.normal(size=(10, 3))
    points_world = transform_points(T_world_cam, points_cam)
    np.testing.assert_allclose(transform_points(T_cam_world, points_world), points_cam,
                               atol=1e-12)
    # camera-to-world: the camera centre (origin of the camera frame) is the translation
    np.testing.assert_allclose(transform_points(T_world_cam, np.zeros((1, 3)))[0],
                               T_world_cam[:3, 3])


def test_pose_error_known_rotation_and_translation() -> None:
    T_gt = make_transform(rot_z(10.0), [1.0, 2.0, 3.0])
    T_est = make_transform(rot_z(10.0) @ rot_z(3.0), [1.0, 2.0, 3.04])
    translation_m, rotation_deg = pose_error(T_est, T_gt)
    assert translation_m == pytest.approx(0.04)
    assert rotation_deg == pytest.approx(3.0)
    assert pose_error(T_gt, T_gt) == pytest.approx((0.0, 0.0), abs=1e-6)


def test_orthonormalize_real_7scenes_pose_removes_error_floor() -> None:
    data = require_redkitchen()
    T_raw = np.loadtxt(data / "frame-000000.pose.txt")
    singular_values = np.linalg.svd(T_raw[:3, :3], compute_uv=False)
    assert not np.allclose(singular_values, 1.0, atol=1e-5)  # the file is slightly off
    R = orthonormalize(T_raw[:3, :3])
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    assert np.abs(R - T_raw[:3, :3]).max() < 1e-3  # nearest rotation: a small change
    # the naive formula on the raw matrix against itself reports a spurious error
    naive = math.degrees(math.acos(min(1.0, (np.trace(T_raw[:3, :3].T @ T_raw[:3, :3]) - 1) / 2)))
    assert naive > 0.5
    assert pose_error(T_raw, T_raw)[1] < 1e-5
    assert is_rigid_transform(make_transform(R, T_raw[:3, 3]))


def test_orthonormalize_flips_reflections_to_rotations() -> None:
    R = orthonormalize(np.diag([1.0, 1.0, -1.0]))
    assert np.linalg.det(R) == pytest.approx(1.0)


def test_interpolate_transform_halfway() -> None:
    T_a = make_transform(np.eye(3), [0.0, 0.0, 0.0])
    T_b = make_transform(rot_z(40.0), [2.0, 0.0, 0.0])
    T_mid = interpolate_transform(T_a, T_b, 0.5)
    np.testing.assert_allclose(T_mid[:3, 3], [1.0, 0.0, 0.0])
    assert pose_error(T_mid, make_transform(rot_z(20.0), [1.0, 0.0, 0.0]))[1] < 1e-6
