"""Pose covariance: the Gauss-Newton term (Jacobian by finite differences, covariance by Monte
Carlo), the map-error term (Monte Carlo over misregistered maps solved by PnP), the error
parametrization, and the calibration fit."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import invert_transform, make_transform, transform_points
from seqace_ros.pipeline.localization.covariance import (
    CALIBRATED_MAP_ERROR,
    CHI2_3_95,
    CHI2_6_95,
    CovarianceError,
    MapErrorModel,
    attached_pose_covariance,
    calibrated_pose_covariance,
    fit_map_error,
    map_error_covariance,
    normalized_squared_errors,
    pose_covariance,
    pose_error_vector,
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


# --- error parametrization, map error, calibration ------------------------------------------


def solve_pnp(scene_N3: np.ndarray, pixels_N2: np.ndarray, T_world_cam_guess: np.ndarray
              ) -> np.ndarray:
    """Camera-to-world pose OpenCV's iterative PnP solves from 2D-3D correspondences."""
    T_cam_world = invert_transform(T_world_cam_guess)
    ok, rvec, tvec = cv2.solvePnP(
        scene_N3, pixels_N2, INTRINSICS.K, None,
        rvec=cv2.Rodrigues(T_cam_world[:3, :3])[0], tvec=T_cam_world[:3, 3].reshape(3, 1),
        useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE,
    )
    assert ok
    return invert_transform(make_transform(cv2.Rodrigues(rvec)[0], tvec.reshape(3)))


def test_error_vector_is_the_perturbation_the_covariance_describes() -> None:
    """The ground truth is the estimate perturbed by the error vector, in the convention the
    Jacobian test checks the covariance against (``perturb``); rotations orthonormalised."""
    rng = np.random.default_rng(7)
    T_est = make_transform(rotation_exp([0.3, -0.5, 0.2]), [1.0, -0.4, 2.0])
    for _ in range(20):
        delta = np.concatenate([rng.normal(0, 0.2, 3), rng.normal(0, 0.3, 3)])
        np.testing.assert_allclose(pose_error_vector(T_est, perturb(T_est, delta)), delta,
                                   atol=1e-9)
    delta = np.array([0.01, -0.02, 0.03, 0.004, -0.005, 0.006])
    sloppy = perturb(T_est, delta)
    sloppy[:3, :3] *= 0.9998  # a 7-Scenes-like rotation block
    np.testing.assert_allclose(pose_error_vector(T_est, sloppy), delta, atol=1e-9)
    # A pure camera-centre error along map x and a pure turn about map z.
    shifted = T_est.copy()
    shifted[0, 3] += 0.05
    np.testing.assert_allclose(pose_error_vector(T_est, shifted), [0.05, 0, 0, 0, 0, 0],
                               atol=1e-12)
    turned = make_transform(rotation_exp([0, 0, 0.1]) @ T_est[:3, :3], T_est[:3, 3])
    np.testing.assert_allclose(pose_error_vector(T_est, turned), [0, 0, 0, 0, 0, 0.1],
                               atol=1e-12)


def test_map_error_covariance_matches_poses_solved_from_misregistered_maps() -> None:
    """Move the map points rigidly (translation b, rotation omega about their median point)
    by draws of the model, solve PnP from the true pixels, compare the spread of the pose
    errors with the prediction."""
    rng = np.random.default_rng(8)
    T_world_cam, pixels, scene = make_scene(rng, 60)
    pivot = np.median(scene, axis=0)
    model = MapErrorModel(translation_std_m=0.03, rotation_std_deg=0.6)
    errors = []
    for _ in range(1500):
        b = rng.normal(0.0, model.translation_std_m, 3)
        omega = rng.normal(0.0, np.radians(model.rotation_std_deg), 3)
        moved = pivot + (scene - pivot) @ rotation_exp(omega).T + b
        errors.append(pose_error_vector(solve_pnp(moved, pixels, T_world_cam), T_world_cam))
    empirical = np.cov(np.asarray(errors).T)
    predicted = map_error_covariance(T_world_cam, pivot, model)
    scale = np.sqrt(np.outer(np.diag(predicted), np.diag(predicted)))
    np.testing.assert_allclose(empirical / scale, predicted / scale, atol=0.07)
    np.testing.assert_allclose(np.diag(empirical) / np.diag(predicted), 1.0, atol=0.1)
    # The lever arm correlates position and rotation: a camera 2-4 m from the points swings.
    assert np.max(np.abs(predicted[:3, 3:] / scale[:3, 3:])) > 0.5


def test_calibrated_covariance_is_the_solver_term_plus_the_map_error() -> None:
    rng = np.random.default_rng(9)
    T_world_cam, pixels, scene = make_scene(rng, 80)
    noisy = pixels + rng.normal(0.0, 2.0, size=pixels.shape)
    solver = pose_covariance(T_world_cam, noisy, scene, INTRINSICS)
    calibrated = calibrated_pose_covariance(T_world_cam, noisy, scene, INTRINSICS)
    np.testing.assert_allclose(
        calibrated,
        solver + map_error_covariance(T_world_cam, np.median(scene, axis=0),
                                      CALIBRATED_MAP_ERROR))
    np.testing.assert_allclose(
        calibrated_pose_covariance(T_world_cam, noisy, scene, INTRINSICS, MapErrorModel(0, 0)),
        solver)
    assert np.all(np.linalg.eigvalsh(calibrated) > 0)
    np.testing.assert_allclose(calibrated, calibrated.T)
    # The map error dominates: centimetres, not the solver's millimetres.
    assert np.sqrt(calibrated[0, 0]) > CALIBRATED_MAP_ERROR.translation_std_m
    assert np.sqrt(solver[0, 0]) < 0.1 * CALIBRATED_MAP_ERROR.translation_std_m


def test_samples_from_the_covariance_fill_its_95_percent_ellipsoid() -> None:
    rng = np.random.default_rng(10)
    T_world_cam, pixels, scene = make_scene(rng, 80)
    covariance = calibrated_pose_covariance(
        T_world_cam, pixels + rng.normal(0.0, 2.0, size=pixels.shape), scene, INTRINSICS)
    samples = rng.multivariate_normal(np.zeros(6), covariance, size=40000)
    d2 = normalized_squared_errors(samples, np.broadcast_to(covariance, (len(samples), 6, 6)))
    np.testing.assert_allclose(d2[:5], [s @ np.linalg.inv(covariance) @ s for s in samples[:5]])
    assert abs(np.mean(d2 <= CHI2_6_95) - 0.95) < 0.005
    assert abs(np.mean(d2) - 6.0) < 0.1
    rotation = normalized_squared_errors(
        samples[:, 3:], np.broadcast_to(covariance[3:, 3:], (len(samples), 3, 3)))
    assert abs(np.mean(rotation <= CHI2_3_95) - 0.95) < 0.005


def simulate_frames(rng: np.random.Generator, n: int, model: MapErrorModel
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames with random levers (1-4 m) and small solver covariances, and errors drawn from
    solver plus map error."""
    directions = rng.normal(size=(n, 3))
    offsets = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    offsets *= rng.uniform(1.0, 4.0, size=(n, 1))
    factors = rng.normal(0.0, 2e-3, size=(n, 6, 6))
    solver = factors @ factors.transpose(0, 2, 1) + 1e-8 * np.eye(6)
    errors = np.array([
        rng.multivariate_normal(np.zeros(6), s + map_error_covariance(
            make_transform(np.eye(3), o), np.zeros(3), model))
        for s, o in zip(solver, offsets, strict=True)])
    return errors, solver, offsets


def test_fit_recovers_the_map_error_and_covers_new_frames() -> None:
    rng = np.random.default_rng(11)
    truth = MapErrorModel(translation_std_m=0.03, rotation_std_deg=0.6)
    fitted = fit_map_error(*simulate_frames(rng, 3000, truth))
    assert fitted.translation_std_m == pytest.approx(truth.translation_std_m, rel=0.1)
    assert fitted.rotation_std_deg == pytest.approx(truth.rotation_std_deg, rel=0.1)
    errors, solver, offsets = simulate_frames(rng, 3000, truth)
    covariances = solver + np.array([
        map_error_covariance(make_transform(np.eye(3), o), np.zeros(3), fitted) for o in offsets])
    assert abs(np.mean(normalized_squared_errors(errors, covariances) <= CHI2_6_95) - 0.95) < 0.015
    # Quantile matching: exactly the asked-for fraction of the fitting frames is inside.
    errors, solver, offsets = simulate_frames(rng, 200, truth)
    fitted = fit_map_error(errors, solver, offsets, coverage=0.9)
    covariances = solver + np.array([
        map_error_covariance(make_transform(np.eye(3), o), np.zeros(3), fitted) for o in offsets])
    assert np.mean(normalized_squared_errors(errors, covariances) <= CHI2_6_95) == 0.9


def test_map_error_inputs_are_checked() -> None:
    with pytest.raises(CovarianceError, match="translation_std_m must be finite and >= 0"):
        MapErrorModel(translation_std_m=-0.01, rotation_std_deg=0.5)
    with pytest.raises(CovarianceError, match="rotation_std_deg must be finite"):
        MapErrorModel(translation_std_m=0.01, rotation_std_deg=float("nan"))
    with pytest.raises(CovarianceError, match=r"\(4, 4\) pose and a \(3,\) pivot"):
        map_error_covariance(np.eye(4), np.zeros(2), CALIBRATED_MAP_ERROR)
    with pytest.raises(CovarianceError, match=r"errors \(N, 6\)"):
        fit_map_error(np.zeros((5, 6)), np.zeros((5, 6, 6)), np.zeros((4, 3)))
    with pytest.raises(CovarianceError, match="N > 0"):
        fit_map_error(np.zeros((0, 6)), np.zeros((0, 6, 6)), np.zeros((0, 3)))
    with pytest.raises(CovarianceError, match=r"coverage must be in \(0, 1\)"):
        fit_map_error(np.zeros((5, 6)), np.tile(np.eye(6), (5, 1, 1)), np.ones((5, 3)), 1.0)
