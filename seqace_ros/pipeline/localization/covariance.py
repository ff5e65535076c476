"""Pose covariance of a PnP estimate: the solver's precision plus the map's error, calibrated.

Parametrization (the one ROS ``PoseWithCovariance`` uses, REP-103 order): the camera pose
``T_world_cam`` (rotation ``R_wc``, camera centre ``c`` in the world frame) is perturbed in the
world frame:

    c' = c + delta_c,        R_wc' = exp([delta_theta]x) R_wc,

so ``(delta_c, delta_theta)`` = (x, y, z, roll, pitch, yaw) are a translation along and a small
rotation about the fixed world (map) axes, in metres and radians; the covariance is in
metres^2, radians^2 and metres*radians. The error of an estimate against a ground truth in
this parametrization is :func:`pose_error_vector` (the truth as the perturbation of the
estimate).

The covariance has two terms (:func:`calibrated_pose_covariance`):

1. **Solver** (:func:`pose_covariance`): Gauss-Newton on the RANSAC inliers. For an inlier
   with map point ``X`` and camera point ``X_c = R_wc^T (X - c)``, the projection
   ``u = fx X_c/Z_c + cx, v = fy Y_c/Z_c + cy`` has the Jacobians

       d X_c / d delta_c     = -R_wc^T
       d X_c / d delta_theta = R_wc^T [X - c]x

   With ``J`` (2N x 6) stacked over the inliers and the residual variance
   ``sigma^2 = sum(r^2) / (2N - 6)`` (floored at ``min_sigma_px^2``), this term is
   ``sigma^2 (J^T J)^-1``. It treats the inliers as independent, and they are not: a
   scene-coordinate head errs alike on neighbouring patches, so this term alone is far too
   small (``bench/covariance_bench.py`` measures by how much; README, "Covariance").
2. **Map error** (:func:`map_error_covariance`): the scene points an image's inliers regress
   are, as a set, displaced from the truth by a small rigid motion: a translation ``b`` and a
   rotation ``omega`` about their median point ``m``. The pose solved from them inherits it:
   ``delta_c = b + omega x (c - m)``, ``delta_theta = omega``. With ``b ~ N(0, s_t^2 I)`` and
   ``omega ~ N(0, s_r^2 I)`` and ``L = -[c - m]x``:

       Sigma_map = [[s_t^2 I + s_r^2 L L^T,  s_r^2 L],
                    [s_r^2 L^T,              s_r^2 I]]

   The lever ``c - m`` gives the error its shape: the camera swings about the scene it sees
   (a sideways shift paired with a turn back towards it). Unlike the solver term, this one
   does not shrink with more inliers: they all share the misregistration.

``s_t`` and ``s_r`` (:data:`CALIBRATED_MAP_ERROR`) are fitted with :func:`fit_map_error` on
queries that are not the benchmark's evaluation splits (README, "Covariance"). None of this
sees a gross error (a wrong but self-consistent set of inliers): such poses lie outside.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import orthonormalize

#: 95 % quantiles of the chi-square distribution with 3 and 6 degrees of freedom: a 3-DoF or
#: 6-DoF error whose normalized squared error (:func:`normalized_squared_errors`) is at most
#: this lies inside the covariance's 95 % ellipsoid.
CHI2_3_95 = 7.814727903251178
CHI2_6_95 = 12.591587243743977


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


@dataclass(frozen=True)
class MapErrorModel:
    """Standard deviations of the map's rigid misregistration (see the module docstring).

    Attributes:
        translation_std_m: ``s_t``, per axis, metres.
        rotation_std_deg: ``s_r``, per axis, degrees (about the median inlier point).
    """

    translation_std_m: float
    rotation_std_deg: float

    def __post_init__(self) -> None:
        for name in ("translation_std_m", "rotation_std_deg"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise CovarianceError(f"{name} must be finite and >= 0, got {value}")


#: The map error the node publishes by default. Fitted with :func:`fit_map_error` (95 %
#: coverage) on split B of redkitchen_dev (map: frames 0-199 and 400-699, cpu preset, RGB-D,
#: seed 0; queries 200-399 in single and sequence mode), which is not an evaluation split;
#: rounded from the fit in ``bench/results/covariance.json`` (``map_error_fitted``). Checked on
#: the dev split and the synthetic offset scenes (README, "Covariance";
#: ``bench/covariance_bench.py`` fits it again on ``--fit-split``, B by default, and prints it
#: beside these values).
CALIBRATED_MAP_ERROR = MapErrorModel(translation_std_m=0.0282, rotation_std_deg=0.673)


def _map_error_covariances(
    centre_offsets_N3: NDArray[np.float64], model: MapErrorModel
) -> NDArray[np.float64]:
    """``Sigma_map`` (N, 6, 6) for levers ``c - m`` (N, 3)."""
    lever_N33 = -_skew(np.asarray(centre_offsets_N3, dtype=np.float64))  # d delta_c / d omega
    s_t2, s_r2 = model.translation_std_m**2, math.radians(model.rotation_std_deg) ** 2
    covariance = np.zeros((len(lever_N33), 6, 6))
    covariance[:, :3, :3] = s_t2 * np.eye(3) + s_r2 * lever_N33 @ lever_N33.transpose(0, 2, 1)
    covariance[:, :3, 3:] = s_r2 * lever_N33
    covariance[:, 3:, :3] = s_r2 * lever_N33.transpose(0, 2, 1)
    covariance[:, 3:, 3:] = s_r2 * np.eye(3)
    return covariance


def map_error_covariance(
    T_world_cam: NDArray[np.float64], pivot_3: NDArray[np.float64], model: MapErrorModel
) -> NDArray[np.float64]:
    """6x6 covariance of the pose error a rigid misregistration of the map causes.

    Args:
        T_world_cam: (4, 4) camera-to-world pose.
        pivot_3: (3,) the point the misregistration turns about (the median inlier map point),
            map frame, metres.
        model: the misregistration's standard deviations.

    Returns:
        (6, 6) symmetric positive semi-definite covariance, ROS order, world frame.

    Raises:
        CovarianceError: arrays of other shapes.
    """
    T_wc = np.asarray(T_world_cam, dtype=np.float64)
    pivot = np.asarray(pivot_3, dtype=np.float64)
    if T_wc.shape != (4, 4) or pivot.shape != (3,):
        raise CovarianceError(
            f"need a (4, 4) pose and a (3,) pivot, got {T_wc.shape} and {pivot.shape}")
    return _map_error_covariances((T_wc[:3, 3] - pivot)[None], model)[0]


def calibrated_pose_covariance(
    T_world_cam: NDArray[np.float64],
    points2d_N2: NDArray[np.float64],
    scene_points_N3: NDArray[np.float64],
    intrinsics: Intrinsics,
    model: MapErrorModel = CALIBRATED_MAP_ERROR,
) -> NDArray[np.float64]:
    """The published covariance: :func:`pose_covariance` plus :func:`map_error_covariance`
    about the median inlier map point.

    Args: as :func:`pose_covariance`, and ``model``, the map error.

    Returns:
        (6, 6) symmetric positive definite covariance, ROS order (x, y, z, rotation about
        X, Y, Z of the world frame), metres^2 and radians^2.

    Raises:
        CovarianceError: as :func:`pose_covariance`.
    """
    solver = pose_covariance(T_world_cam, points2d_N2, scene_points_N3, intrinsics)
    pivot = np.median(np.asarray(scene_points_N3, dtype=np.float64), axis=0)
    return solver + map_error_covariance(T_world_cam, pivot, model)


def pose_error_vector(
    T_world_cam_est: NDArray[np.float64], T_world_cam_gt: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Error (6,) of an estimate in the covariance's parametrization: the ground truth as the
    world-frame perturbation of the estimate, ``c_gt = c_est + delta_c`` and
    ``R_gt = exp([delta_theta]x) R_est`` (rotations orthonormalised first), ROS order,
    metres and radians.
    """
    est = np.asarray(T_world_cam_est, dtype=np.float64)
    gt = np.asarray(T_world_cam_gt, dtype=np.float64)
    R_delta = orthonormalize(gt[:3, :3]) @ orthonormalize(est[:3, :3]).T
    rotation_vector = cv2.Rodrigues(R_delta)[0].reshape(3)
    return np.concatenate([gt[:3, 3] - est[:3, 3], rotation_vector])


def normalized_squared_errors(
    errors_ND: NDArray[np.float64], covariances_NDD: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Mahalanobis distances squared ``e^T Sigma^-1 e`` (N,) of errors (N, D) under their
    covariances (N, D, D); chi-square with D degrees of freedom when the covariances are right.
    """
    errors = np.asarray(errors_ND, dtype=np.float64)
    solved = np.linalg.solve(np.asarray(covariances_NDD, dtype=np.float64), errors[..., None])
    return np.einsum("nd,nd->n", errors, solved[..., 0])


def _smallest_sufficient(covered: Callable[[float], float], coverage: float, start: float) -> float:
    """The smallest ``s >= 0`` with ``covered(s) >= coverage``, for ``covered`` non-decreasing:
    doubling from ``start``, then bisection to 1e-9 relative."""
    high = start
    for _ in range(64):
        if covered(high) >= coverage:
            break
        high *= 2.0
    else:
        raise CovarianceError(f"no standard deviation reaches {coverage:.0%} coverage")
    low = 0.0
    while high - low > 1e-9 * high:
        middle = 0.5 * (low + high)
        low, high = (low, middle) if covered(middle) >= coverage else (middle, high)
    return high


def fit_map_error(
    errors_N6: NDArray[np.float64],
    solver_covariances_N66: NDArray[np.float64],
    centre_offsets_N3: NDArray[np.float64],
    coverage: float = 0.95,
) -> MapErrorModel:
    """The map error that puts ``coverage`` of the frames inside their 95 % ellipsoids.

    Two quantile matches, each the smallest standard deviation that reaches ``coverage``
    (the fraction inside grows with either): first ``s_r``, on the rotation errors inside the
    3-DoF ellipsoid of the rotation block (``CHI2_3_95``), then ``s_t``, on the 6-DoF errors
    inside the 6-DoF ellipsoid (``CHI2_6_95``) of solver plus map-error covariance.

    Args:
        errors_N6: :func:`pose_error_vector` of N localized frames.
        solver_covariances_N66: their :func:`pose_covariance`.
        centre_offsets_N3: camera centre minus the median inlier map point, per frame.
        coverage: the fraction of frames to put inside, in (0, 1).

    Returns:
        The fitted :class:`MapErrorModel`.

    Raises:
        CovarianceError: mismatched shapes, no frames, or a coverage outside (0, 1).
    """
    errors = np.asarray(errors_N6, dtype=np.float64)
    solver = np.asarray(solver_covariances_N66, dtype=np.float64)
    offsets = np.asarray(centre_offsets_N3, dtype=np.float64)
    n = len(errors)
    if n == 0 or errors.shape != (n, 6) or solver.shape != (n, 6, 6) or offsets.shape != (n, 3):
        raise CovarianceError(
            "need errors (N, 6), solver covariances (N, 6, 6) and centre offsets (N, 3) with "
            f"N > 0, got {errors.shape}, {solver.shape} and {offsets.shape}")
    if not 0.0 < coverage < 1.0:
        raise CovarianceError(f"coverage must be in (0, 1), got {coverage}")

    def rotation_covered(s_r: float) -> float:
        rotation = solver[:, 3:, 3:] + s_r**2 * np.eye(3)
        return float(np.mean(normalized_squared_errors(errors[:, 3:], rotation) <= CHI2_3_95))

    rotation_std = _smallest_sufficient(
        rotation_covered, coverage, float(np.max(np.linalg.norm(errors[:, 3:], axis=1))) + 1e-9)

    def covered(s_t: float) -> float:
        model = MapErrorModel(s_t, math.degrees(rotation_std))
        total = solver + _map_error_covariances(offsets, model)
        return float(np.mean(normalized_squared_errors(errors, total) <= CHI2_6_95))

    translation_std = _smallest_sufficient(
        covered, coverage, float(np.max(np.linalg.norm(errors[:, :3], axis=1))) + 1e-9)
    return MapErrorModel(translation_std, math.degrees(rotation_std))


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
