"""Gauss-Newton pose covariance: Jacobian by finite differences, covariance by Monte Carlo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import invert_transform, make_transform, transform_points
from seqace_ros.pipeline.localization.covariance import (
    CovarianceError,
    attached_pose_covariance,
    pose_covariance,
)

INTRINSICS = Intrinsics(fx=525.0, fy=520.0, cx=320.0, cy=240.0, width=640, height=480)


def rotation_exp(w_3: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(w_3, dtype=np.float64).reshape(3, 1))[0]


def rotation_log(R_33: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(R_33, dtype=np.float64))[0].reshape(3)


def make_scene(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A camera pose, map points in front of it, and their exact projections."""
    T_world_cam = make_transform(rotation_exp([0.3, -0.5, 0.2]), [1.0, -0.4, 2.0])
    pixels = rng.uniform([20, 20], [620, 460], size=(n, 2))
    depths = rng.uniform(1.0, 4.0, size=n)
    rays = np.column_stack(
        [(pixels[:, 0] - INTRINSICS.cx) / INTRINSICS.fx,
         (pixels[:, 1] - INTRINSICS.cy) / INTRINSICS.fy, np.ones(n)]
    )
    scene = transform_points(T_world_cam, rays * depths[:, None])
    return T_world_cam, pixels, scene


def project(T_world_cam: np.ndarray, scene_N3: np.ndarray) -> np.ndarray:
    cam = transform_points(invert_transform(T_world_cam), scene_N3)
    return np.column_stack(
        [INTRINSICS.fx * cam[:, 0] / cam[:, 2] + INTRINSICS.cx,
         INTRINSICS.fy * cam[:, 1] / cam[:, 2] + INTRINSICS.cy]
    )


def perturb(T_world_cam: np.ndarray, delta_6: np.ndarray) -> np.ndarray:
    """World-frame perturbation: c + delta_c, exp(delta_theta) R_wc."""
    return make_transform(
        rotation_exp(delta_6[3:]) @ T_world_cam[:3, :3], T_world_cam[:3, 3] + delta_6[:3]
    )


def test_covariance_matches_monte_carlo_of_a_refined_pnp() -> None:
    rng = np.random.default_rng(4)
    T_world_cam, pixels, scene = make_scene(rng, 80)
    sigma_px = 2.0
    T_cam_world = invert_transform(T_world_cam)
    deltas = []
    for _ in range(400):
        noisy = pixels + rng.normal(0.0, sigma_px, size=pixels.shape)
        ok, rvec, tvec = cv2.solvePnP(
            scene, noisy, INTRINSICS.K, None,
            rvec=cv2.Rodrigues(T_cam_world[:3, :3])[0], tvec=T_cam_world[:3, 3].reshape(3, 1),
            useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE,
        )
        assert ok
        T_est = invert_transform(make_transform(cv2.Rodrigues(rvec)[0], tvec.reshape(3)))
        delta_c = T_est[:3, 3] - T_world_cam[:3, 3]
        delta_theta = rotation_log(T_est[:3, :3] @ T_world_cam[:3, :3].T)
        deltas.append(np.concatenate([delta_c, delta_theta]))
    empirical = np.cov(np.asarray(deltas).T)
    # Evaluate at the truth with residuals of the noise level: give the noisy pixels of one draw.
    noisy = pixels + rng.normal(0.0, sigma_px, size=pixels.shape)
    predicted = pose_covariance(T_world_cam, noisy, scene, INTRINSICS, min_sigma_px=0.1)
    predicted_std = np.sqrt(np.diag(predicted))
    empirical_std = np.sqrt(np.diag(empirical))
    np.testing.assert_allclose(predicted_std, empirical_std, rtol=0.2)
    # Correlations (the off-diagonal structure) agree too.
    corr_pred = predicted / np.outer(predicted_std, predicted_std)
    corr_emp = empirical / np.outer(empirical_std, empirical_std)
    np.testing.assert_allclose(corr_pred, corr_emp, atol=0.15)


def test_jacobian_ordering_by_finite_differences() -> None:
    """Each axis of the covariance is the pose direction that finite differences say it is."""
    rng = np.random.default_rng(1)
    T_world_cam, pixels, scene = make_scene(rng, 60)
    covariance = pose_covariance(T_world_cam, pixels, scene, INTRINSICS, min_sigma_px=1.0)
    # With zero residuals, sigma = min_sigma_px = 1 and covariance = (J^T J)^-1: rebuild J by
    # central differences of the projection under world-frame perturbations.
    eps = 1e-6
    columns = []
    for k in range(6):
        step = np.zeros(6)
        step[k] = eps
        columns.append(
            ((project(perturb(T_world_cam, step), scene)
              - project(perturb(T_world_cam, -step), scene)) / (2 * eps)).reshape(-1)
        )
    J = np.column_stack(columns)
    np.testing.assert_allclose(covariance, np.linalg.inv(J.T @ J), rtol=1e-4, atol=1e-12)


def test_covariance_grows_with_residuals_and_shrinks_with_more_points() -> None:
    rng = np.random.default_rng(2)
    T_world_cam, pixels, scene = make_scene(rng, 400)
    small = pose_covariance(T_world_cam, pixels[:40], scene[:40], INTRINSICS)
    large = pose_covariance(T_world_cam, pixels, scene, INTRINSICS)
    noisy = pixels + rng.normal(0.0, 5.0, size=pixels.shape)
    noisier = pose_covariance(T_world_cam, noisy, scene, INTRINSICS)
    assert np.trace(large[:3, :3]) < np.trace(small[:3, :3])
    assert np.trace(noisier[:3, :3]) > 20 * np.trace(large[:3, :3])
    assert np.all(np.linalg.eigvalsh(large) > 0)


@pytest.mark.parametrize(
    ("points2d", "scene", "match"),
    [
        (np.zeros((3, 2)), np.ones((3, 3)), "at least 4 inliers"),
        (np.zeros((5, 2)), np.ones((4, 3)), r"\(N, 2\).*\(N, 3\)"),
        (np.zeros((5, 3)), np.ones((5, 3)), r"\(N, 2\)"),
    ],
)
def test_bad_inputs_raise(points2d: np.ndarray, scene: np.ndarray, match: str) -> None:
    with pytest.raises(CovarianceError, match=match):
        pose_covariance(np.eye(4), points2d, scene, INTRINSICS)


def test_points_behind_the_camera_and_degenerate_sets_raise() -> None:
    behind = np.array([[0, 0, -1.0], [1, 0, 2], [0, 1, 2], [1, 1, 2]])
    with pytest.raises(CovarianceError, match="1 of 4 inliers are behind"):
        pose_covariance(np.eye(4), np.zeros((4, 2)), behind, INTRINSICS)
    same_point = np.tile([[0.0, 0.0, 2.0]], (6, 1))
    with pytest.raises(CovarianceError, match="degenerate"):
        pose_covariance(np.eye(4), np.tile([[320.0, 240.0]], (6, 1)), same_point, INTRINSICS)


def test_attached_body_covariance_matches_sampled_camera_poses() -> None:
    """A base 0.3 m behind and below the camera: sample camera poses from the covariance,
    carry each to the base through the extrinsic, compare the spread with the prediction."""
    rng = np.random.default_rng(5)
    T_world_cam, pixels, scene = make_scene(rng, 60)
    noisy = pixels + rng.normal(0.0, 2.0, size=pixels.shape)
    camera_cov = pose_covariance(T_world_cam, noisy, scene, INTRINSICS)
    T_cam_base = make_transform(rotation_exp([0.1, -1.4, 0.2]), [0.05, 0.25, -0.3])
    T_world_base = T_world_cam @ T_cam_base
    deltas = []
    for delta in rng.multivariate_normal(np.zeros(6), camera_cov, size=4000):
        T_base = perturb(T_world_cam, delta) @ T_cam_base
        deltas.append(np.concatenate([
            T_base[:3, 3] - T_world_base[:3, 3],
            rotation_log(T_base[:3, :3] @ T_world_base[:3, :3].T)]))
    empirical = np.cov(np.asarray(deltas).T)
    predicted = attached_pose_covariance(camera_cov, T_world_cam, T_cam_base)
    scale = np.sqrt(np.outer(np.diag(predicted), np.diag(predicted)))
    np.testing.assert_allclose(predicted / scale, empirical / scale, atol=0.06)
    np.testing.assert_allclose(np.diag(empirical) / np.diag(predicted), 1.0, atol=0.1)
    # The lever arm matters: the base's position spread is not the camera's.
    assert not np.allclose(predicted[:3, :3], camera_cov[:3, :3], rtol=0.1)
    np.testing.assert_allclose(predicted[3:, 3:], camera_cov[3:, 3:])
    np.testing.assert_allclose(attached_pose_covariance(camera_cov, T_world_cam, np.eye(4)),
                               camera_cov)
    with pytest.raises(CovarianceError, match=r"\(6, 6\) covariance"):
        attached_pose_covariance(camera_cov[:3, :3], T_world_cam, T_cam_base)
