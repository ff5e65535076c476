"""Pose covariance of a PnP estimate from its inlier correspondences (Gauss-Newton).

The camera pose ``T_world_cam`` (rotation ``R_wc``, camera centre ``c`` in the world frame) is
perturbed in the world frame:

    c' = c + delta_c,        R_wc' = exp([delta_theta]x) R_wc,

so ``(delta_c, delta_theta)`` are a translation along and a rotation about the fixed world
(map) axes: the ordering and frame of ROS ``PoseWithCovariance`` (x, y, z, rotation about X,
Y, Z of the header frame). For an inlier with map point ``X`` and camera point
``X_c = R_wc^T (X - c)``, the projection ``u = fx X_c/Z_c + cx, v = fy Y_c/Z_c + cy`` has the
Jacobians

    d X_c / d delta_c     = -R_wc^T
    d X_c / d delta_theta = R_wc^T [X - c]x

With ``J`` (2N x 6) stacked over the inliers and the residual variance
``sigma^2 = sum(r^2) / (2N - 6)`` (floored at ``min_sigma_px^2``), the covariance is the
inverse of the Gauss-Newton information matrix: ``Sigma = sigma^2 (J^T J)^-1`` (metres^2,
radians^2 and metres*radians). It describes the solver's precision given these inliers; it
does not see a gross error such as a wrong-but-consistent set of inliers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.errors import SeqaceError


class CovarianceError(SeqaceError, ValueError):
    """Inputs from which no pose covariance can be computed (shapes, too few points)."""


def _skew(v_N3: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cross-product matrices (N, 3, 3) of vectors (N, 3)."""
    x, y, z = v_N3[:, 0], v_N3[:, 1], v_N3[:, 2]
    zero = np.zeros_like(x)
    return np.stack(
        [np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)],
        axis=1)


def pose_covariance(
    T_world_cam: NDArray[np.float64],
    points2d_N2: NDArray[np.float64],
    scene_points_N3: NDArray[np.float64],
    intrinsics: Intrinsics,
    min_sigma_px: float = 0.5,
) -> NDArray[np.float64]:
    """6x6 covariance of the camera pose in the world frame, ROS order (x, y, z, rx, ry, rz).

    Args:
        T_world_cam: (4, 4) camera-to-world pose (OpenCV camera axes) estimated from the points.
        points2d_N2: (N, 2) inlier pixel coordinates (u, v) in the image ``intrinsics`` describe.
        scene_points_N3: (N, 3) the matching map-frame points, metres.
        intrinsics: pinhole intrinsics of the image.
        min_sigma_px: lower bound of the reprojection noise standard deviation, pixels (pixel
            quantisation; keeps an exact fit from claiming zero uncertainty).

    Returns:
        (6, 6) symmetric positive semi-definite float64 covariance: metres^2 for position,
        radians^2 for rotation about the world axes.

    Raises:
        CovarianceError: mismatched shapes, fewer than 4 points, points behind the camera, or a
            degenerate configuration (rank-deficient information matrix).
    """
    points2d = np.asarray(points2d_N2, dtype=np.float64)
    scene = np.asarray(scene_points_N3, dtype=np.float64)
    if points2d.ndim != 2 or points2d.shape[1] != 2 or scene.shape != (len(points2d), 3):
        raise CovarianceError(
            f"need points2d (N, 2) and scene points (N, 3), got {points2d.shape} and {scene.shape}")
    n = len(points2d)
    if n < 4:
        raise CovarianceError(f"need at least 4 inliers for a pose covariance, got {n}")
    if min_sigma_px <= 0:
        raise CovarianceError(f"min_sigma_px must be positive, got {min_sigma_px}")
    R_wc = np.asarray(T_world_cam, dtype=np.float64)[:3, :3]
    centre = np.asarray(T_world_cam, dtype=np.float64)[:3, 3]
    offsets_N3 = scene - centre
    cam_N3 = offsets_N3 @ R_wc  # rows are R_wc^T (X - c)
    depth = cam_N3[:, 2]
    if np.any(depth <= 0):
        raise CovarianceError(f"{int(np.sum(depth <= 0))} of {n} inliers are behind the camera")
    fx, fy, cx, cy = intrinsics.as_tuple
    x, y = cam_N3[:, 0], cam_N3[:, 1]
    residuals_N2 = np.stack([fx * x / depth + cx, fy * y / depth + cy], -1) - points2d
    # d(u, v)/d X_c: (N, 2, 3)
    d_proj = np.zeros((n, 2, 3))
    d_proj[:, 0, 0] = fx / depth
    d_proj[:, 0, 2] = -fx * x / depth**2
    d_proj[:, 1, 1] = fy / depth
    d_proj[:, 1, 2] = -fy * y / depth**2
    R_cw = R_wc.T
    d_centre = d_proj @ (-R_cw)  # (N, 2, 3)
    d_rotation = d_proj @ (R_cw @ _skew(offsets_N3))  # (N, 2, 3)
    J = np.concatenate([d_centre, d_rotation], axis=2).reshape(2 * n, 6)
    information = J.T @ J
    dof = max(2 * n - 6, 1)
    sigma2 = max(float(np.sum(residuals_N2**2)) / dof, min_sigma_px**2)
    eigenvalues = np.linalg.eigvalsh(information)
    if eigenvalues[0] <= eigenvalues[-1] * 1e-12:
        raise CovarianceError(
            f"degenerate inlier configuration: information matrix eigenvalues {eigenvalues}")
    covariance = sigma2 * np.linalg.inv(information)
    return 0.5 * (covariance + covariance.T)


def attached_pose_covariance(
    covariance_66: NDArray[np.float64],
    T_world_cam: NDArray[np.float64],
    T_cam_body: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Covariance of the pose of a body rigidly attached to the camera (e.g. a robot base).

    Same perturbation model as :func:`pose_covariance`: the body's origin
    ``b = c + R_wc t_cb`` moves by ``delta_c + delta_theta x (R_wc t_cb)``, and its orientation
    turns by the same ``delta_theta`` about the world axes. So ``Sigma_body = J Sigma J^T`` with
    ``J = [[I, -[R_wc t_cb]x], [0, I]]``.

    Args:
        covariance_66: (6, 6) camera pose covariance, ROS order, world frame.
        T_world_cam: (4, 4) camera-to-world pose.
        T_cam_body: (4, 4) body-to-camera transform (the body's pose in the camera frame).

    Returns:
        (6, 6) symmetric covariance of the body's pose, ROS order, world frame.

    Raises:
        CovarianceError: arrays of other shapes.
    """
    covariance = np.asarray(covariance_66, dtype=np.float64)
    T_wc = np.asarray(T_world_cam, dtype=np.float64)
    T_cb = np.asarray(T_cam_body, dtype=np.float64)
    if covariance.shape != (6, 6) or T_wc.shape != (4, 4) or T_cb.shape != (4, 4):
        raise CovarianceError(
            f"need a (6, 6) covariance and two (4, 4) transforms, got {covariance.shape}, "
            f"{T_wc.shape} and {T_cb.shape}")
    lever_world = T_wc[:3, :3] @ T_cb[:3, 3]
    J = np.eye(6)
    J[:3, 3:] = -_skew(lever_world[None])[0]
    body = J @ covariance @ J.T
    return 0.5 * (body + body.T)
