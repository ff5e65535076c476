"""Rigid-body geometry and the pose conventions of the whole package.

Conventions (see DESIGN.md):

- A pose is a 4x4 float64 homogeneous matrix named by its direction: ``T_world_cam`` maps
  points from camera coordinates to world coordinates (camera-to-world, the camera's pose
  in the world); ``T_cam_world`` is its inverse.
- Camera axes are OpenCV's: x right, y down, z forward.
- Quaternions are ordered (x, y, z, w), as in ROS messages and TUM trajectory files, and
  are unit-norm with w >= 0 on output.
- Distances are metres, angles degrees unless a name says ``_rad``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]


def orthonormalize(R_33: ArrayLike) -> Array:
    """Nearest rotation matrix (Frobenius norm) to ``R_33``, via SVD.

    7-Scenes pose files carry rotation blocks with singular values of 0.9998-0.99996;
    without this, rotation errors show a spurious degree-level floor.
    """
    U, _, Vt = np.linalg.svd(np.asarray(R_33, dtype=np.float64))
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt))
    return U @ D @ Vt


def make_transform(R_33: ArrayLike, t_3: ArrayLike) -> Array:
    """4x4 homogeneous transform from a rotation (3, 3) and a translation (3,)."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R_33, dtype=np.float64)
    T[:3, 3] = np.asarray(t_3, dtype=np.float64).reshape(3)
    return T


def invert_transform(T_a_b: ArrayLike) -> Array:
    """Inverse of a rigid transform: ``T_b_a`` from ``T_a_b`` (4, 4)."""
    T = np.asarray(T_a_b, dtype=np.float64)
    R_t = T[:3, :3].T
    return make_transform(R_t, -R_t @ T[:3, 3])


def transform_points(T_a_b: ArrayLike, points_b_N3: ArrayLike) -> Array:
    """Apply ``T_a_b`` (4, 4) to points (N, 3) in frame b, giving points (N, 3) in frame a."""
    T = np.asarray(T_a_b, dtype=np.float64)
    P = np.asarray(points_b_N3, dtype=np.float64)
    return P @ T[:3, :3].T + T[:3, 3]


def is_rigid_transform(T: ArrayLike, atol: float = 1e-6) -> bool:
    """True when ``T`` is a finite 4x4 rigid transform (orthonormal, det +1, last row 0 0 0 1)."""
    M = np.asarray(T, dtype=np.float64)
    if M.shape != (4, 4) or not np.all(np.isfinite(M)):
        return False
    R = M[:3, :3]
    return (
        np.allclose(R.T @ R, np.eye(3), atol=atol)
        and abs(np.linalg.det(R) - 1.0) < atol * 10
        and np.allclose(M[3], [0.0, 0.0, 0.0, 1.0], atol=atol)
    )


def quaternion_xyzw_from_rotation(R_33: ArrayLike) -> Array:
    """Unit quaternion (x, y, z, w), w >= 0, of a rotation matrix (3, 3)."""
    R = orthonormalize(R_33)
    trace = np.trace(R)
    if trace > 0.0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s]
    q_xyzw = np.asarray(q, dtype=np.float64)
    q_xyzw /= np.linalg.norm(q_xyzw)
    return -q_xyzw if q_xyzw[3] < 0.0 else q_xyzw


def rotation_from_quaternion_xyzw(q_xyzw: ArrayLike) -> Array:
    """Rotation matrix (3, 3) of a quaternion (x, y, z, w); normalised first.

    Raises:
        ValueError: if the quaternion is not finite or has (near) zero norm.
    """
    q = np.asarray(q_xyzw, dtype=np.float64).reshape(4)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"quaternion (x, y, z, w) must be finite and non-zero, got {q.tolist()}")
    x, y, z, w = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])


def transform_from_translation_quaternion(t_3: ArrayLike, q_xyzw: ArrayLike) -> Array:
    """4x4 transform from a translation (3,) and a quaternion (x, y, z, w)."""
    return make_transform(rotation_from_quaternion_xyzw(q_xyzw), t_3)


def translation_quaternion_from_transform(T: ArrayLike) -> tuple[Array, Array]:
    """Translation (3,) and quaternion (x, y, z, w) of a 4x4 transform."""
    M = np.asarray(T, dtype=np.float64)
    return M[:3, 3].copy(), quaternion_xyzw_from_rotation(M[:3, :3])


def rotation_angle_deg(R_33: ArrayLike) -> float:
    """Rotation angle in degrees of a rotation matrix (3, 3), in [0, 180]."""
    R = np.asarray(R_33, dtype=np.float64)
    cos = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)))


def pose_error(T_world_cam_est: ArrayLike, T_world_cam_gt: ArrayLike) -> tuple[float, float]:
    """Camera-centre error (metres) and rotation error (degrees) of an estimated pose.

    Both poses are camera-to-world. Rotations are orthonormalised first, so a slightly
    non-orthonormal ground truth (7-Scenes) does not fake an error floor.
    """
    est = np.asarray(T_world_cam_est, dtype=np.float64)
    gt = np.asarray(T_world_cam_gt, dtype=np.float64)
    translation_m = float(np.linalg.norm(est[:3, 3] - gt[:3, 3]))
    R_delta = orthonormalize(est[:3, :3]).T @ orthonormalize(gt[:3, :3])
    return translation_m, rotation_angle_deg(R_delta)


def slerp_rotation(R_a: ArrayLike, R_b: ArrayLike, alpha: float) -> Array:
    """Spherical interpolation between two rotations; ``alpha`` 0 gives ``R_a``, 1 ``R_b``."""
    q_a = quaternion_xyzw_from_rotation(R_a)
    q_b = quaternion_xyzw_from_rotation(R_b)
    dot = float(np.dot(q_a, q_b))
    if dot < 0.0:
        q_b, dot = -q_b, -dot
    if dot > 0.9995:
        q = q_a + alpha * (q_b - q_a)
    else:
        theta = np.arccos(dot)
        q = (np.sin((1 - alpha) * theta) * q_a + np.sin(alpha * theta) * q_b) / np.sin(theta)
    return rotation_from_quaternion_xyzw(q)


def interpolate_transform(T_a: ArrayLike, T_b: ArrayLike, alpha: float) -> Array:
    """Interpolate two transforms: translation linearly, rotation by slerp (0 -> ``T_a``)."""
    A = np.asarray(T_a, dtype=np.float64)
    B = np.asarray(T_b, dtype=np.float64)
    t = (1.0 - alpha) * A[:3, 3] + alpha * B[:3, 3]
    return make_transform(slerp_rotation(A[:3, :3], B[:3, :3], alpha), t)
