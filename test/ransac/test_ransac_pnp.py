"""Robust PnP against known poses, with poselib as the reference solver."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from seqace_ros.core.geometry import invert_transform, is_rigid_transform, pose_error
from seqace_ros.ransac import PnPResult, RansacOptions, solve_pnp
from seqace_ros.ransac.synthetic import HEIGHT, WIDTH, PnPProblem, make_pnp_problem

poselib = pytest.importorskip("poselib", reason="poselib (test extra) is the reference solver")


def solve(problem: PnPProblem, **options: float | int | bool | None) -> PnPResult:
    """solve_pnp on the problem's correspondences with ``RansacOptions(**options)``."""
    return solve_pnp(problem.points2d, problem.points3d, problem.intrinsics,
                     RansacOptions(**options))  # fmt: skip


def poselib_pose(problem: PnPProblem, threshold_px: float = 10.0) -> np.ndarray:
    """T_world_cam estimated by poselib.estimate_absolute_pose on the same data."""
    camera = {"model": "PINHOLE", "width": WIDTH, "height": HEIGHT,
              "params": list(problem.intrinsics)}  # fmt: skip
    pose, _ = poselib.estimate_absolute_pose(
        problem.points2d, problem.points3d, camera, {"max_reproj_error": threshold_px}, {}
    )
    T_cam_world = np.eye(4)
    T_cam_world[:3, :3] = pose.R
    T_cam_world[:3, 3] = pose.t
    return invert_transform(T_cam_world)


def errors(T_world_cam_est: np.ndarray, problem: PnPProblem) -> tuple[float, float]:
    """Camera-centre error (cm) and rotation error (degrees)."""
    translation_m, rotation_deg = pose_error(T_world_cam_est, problem.T_world_cam)
    return 100.0 * translation_m, rotation_deg


@pytest.mark.parametrize("noise_px", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("outlier_ratio", [0.0, 0.3, 0.5, 0.7, 0.8])
def test_recovers_known_pose_as_accurately_as_poselib(noise_px: float, outlier_ratio: float):
    rng = np.random.default_rng(int(100 * noise_px + 1000 * outlier_ratio))
    for trial in range(3):
        problem = make_pnp_problem(rng, 1000, outlier_ratio, noise_px)
        result = solve(problem, seed=trial)
        assert result.success
        assert is_rigid_transform(result.T_world_cam)
        ours_cm, ours_deg = errors(result.T_world_cam, problem)
        ref_cm, ref_deg = errors(poselib_pose(problem), problem)
        # Accuracy of the best: within noise of poselib (and tight in absolute terms).
        assert ours_cm <= max(1.5 * ref_cm, 0.2 + 0.5 * noise_px), (ours_cm, ref_cm)
        assert ours_deg <= max(1.5 * ref_deg, 0.02 + 0.05 * noise_px), (ours_deg, ref_deg)
        # Inliers found are the true inliers (a few outliers land within 10 px by chance).
        true_found = np.sum(result.inliers & problem.is_inlier) / np.sum(problem.is_inlier)
        assert true_found > 0.99
        assert np.sum(result.inliers & ~problem.is_inlier) <= 0.02 * len(problem.is_inlier)
        assert result.stats.num_inliers == int(result.inliers.sum())
        assert 0.0 < result.stats.score <= result.stats.num_inliers
        assert result.stats.rmse_px < 10.0
        assert 1 <= result.stats.num_hypotheses <= 64


@pytest.mark.parametrize("num_points", [4, 5, 6, 10, 100])
def test_small_noise_free_problems_are_solved_exactly(num_points: int):
    rng = np.random.default_rng(num_points)
    for trial in range(5):
        problem = make_pnp_problem(rng, num_points, 0.0, 0.0)
        result = solve(problem, seed=trial)
        assert result.success
        cm, deg = errors(result.T_world_cam, problem)
        assert cm < 1e-4, cm
        assert deg < 1e-5, deg
        assert result.inliers.all()
        assert result.stats.rmse_px < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("outlier_ratio", [0.0, 0.5, 0.8])
def test_ten_thousand_correspondences(outlier_ratio: float):
    rng = np.random.default_rng(7)
    problem = make_pnp_problem(rng, 10_000, outlier_ratio, 1.0)
    result = solve(problem, seed=1)
    assert result.success
    cm, deg = errors(result.T_world_cam, problem)
    ref_cm, ref_deg = errors(poselib_pose(problem), problem)
    assert cm <= max(1.5 * ref_cm, 0.2), (cm, ref_cm)
    assert deg <= max(1.5 * ref_deg, 0.02), (deg, ref_deg)


def test_same_seed_gives_identical_results_and_seed_is_reported():
    problem = make_pnp_problem(np.random.default_rng(3), 500, 0.6, 1.0)
    a = solve(problem, seed=42)
    b = solve(problem, seed=42)
    assert np.array_equal(a.T_world_cam, b.T_world_cam)
    assert np.array_equal(a.inliers, b.inliers)
    assert a.stats.num_samples == b.stats.num_samples
    assert a.stats.seed == 42
    c = solve(problem, seed=43)
    assert c.stats.num_samples != a.stats.num_samples or not np.array_equal(
        c.T_world_cam, a.T_world_cam
    )
    drawn = solve(problem)
    again = solve(problem, seed=drawn.stats.seed)
    assert np.array_equal(drawn.T_world_cam, again.T_world_cam)


def test_full_budget_without_early_stop():
    problem = make_pnp_problem(np.random.default_rng(4), 300, 0.3, 1.0)
    early = solve(problem, seed=0)
    full = solve(problem, seed=0, confidence=1.0, max_hypotheses=32)
    assert early.stats.early_stop
    assert early.stats.num_hypotheses < 32
    assert not full.stats.early_stop
    assert full.stats.num_hypotheses == 32
    assert full.success
    assert pose_error(full.T_world_cam, problem.T_world_cam)[1] < 0.1


def test_hard_scoring_also_recovers_the_pose():
    problem = make_pnp_problem(np.random.default_rng(5), 1000, 0.5, 1.0)
    result = solve(problem, seed=0, soft_scoring=False)
    cm, deg = errors(result.T_world_cam, problem)
    assert result.success
    assert cm < 1.0
    assert deg < 0.1


@pytest.mark.parametrize("num_points", [200, 1000, 4000])
def test_all_outliers_fail(num_points: int):
    rng = np.random.default_rng(num_points)
    for trial in range(5):
        problem = make_pnp_problem(rng, num_points, 1.0, 0.0)
        result = solve(problem, seed=trial)
        assert not result.success
        assert not result.inliers.any()
        assert np.array_equal(result.T_world_cam, np.eye(4))


def test_collinear_points_fail():
    rng = np.random.default_rng(8)
    problem = make_pnp_problem(rng, 200, 0.0, 0.0)
    # Keep the observations of points on one 3D line through the camera's view.
    t = rng.uniform(-1.0, 1.0, 200)
    line_world = problem.points3d[0] + np.outer(t, [0.3, -0.2, 0.1])
    T_cam_world = invert_transform(problem.T_world_cam)
    line_cam = line_world @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]
    fx, fy, cx, cy = problem.intrinsics
    pixels = np.stack([fx * line_cam[:, 0] / line_cam[:, 2] + cx,
                       fy * line_cam[:, 1] / line_cam[:, 2] + cy], axis=1)  # fmt: skip
    result = solve_pnp(pixels, line_world, problem.intrinsics, RansacOptions(seed=0))
    assert not result.success
    assert result.stats.num_hypotheses == 0


def test_low_inlier_ratio_still_succeeds():
    """90 % outliers in 1000: 100 inliers are far above chance, so this is a success."""
    problem = make_pnp_problem(np.random.default_rng(12), 1000, 0.9, 1.0)
    result = solve(problem, seed=0, max_hypotheses=256)
    assert result.success
    assert pose_error(result.T_world_cam, problem.T_world_cam)[0] < 0.02


def test_min_inliers_sets_the_success_bar():
    problem = make_pnp_problem(np.random.default_rng(9), 100, 0.5, 1.0)
    ok = solve(problem, seed=0)
    strict = solve(problem, seed=0, min_inliers=90)
    assert ok.success
    assert not strict.success
    by_ratio = solve(problem, seed=0, min_inlier_ratio=0.9)
    assert not by_ratio.success


def test_accepts_float32_and_intrinsics_object():
    from seqace_ros.core.camera import Intrinsics

    problem = make_pnp_problem(np.random.default_rng(10), 300, 0.3, 1.0)
    camera = Intrinsics(*problem.intrinsics, width=WIDTH, height=HEIGHT)
    result = solve_pnp(problem.points2d.astype(np.float32),
                       problem.points3d.astype(np.float32), camera,
                       RansacOptions(seed=0))  # fmt: skip
    assert result.success
    assert result.T_world_cam.dtype == np.float64
    assert result.T_world_cam.shape == (4, 4)
    assert result.inliers.dtype == np.bool_
    assert result.inliers.shape == (300,)
    assert errors(result.T_world_cam, problem)[0] < 2.0


def test_solve_releases_the_gil():
    """Python keeps running in another thread while a long solve is under way."""
    problem = make_pnp_problem(np.random.default_rng(11), 5000, 1.0, 0.0)  # all outliers
    done = threading.Event()

    def run() -> None:
        solve(problem, seed=0, confidence=1.0, max_hypotheses=10**6, max_samples=200_000)
        done.set()

    ticks = 0
    worker = threading.Thread(target=run)
    t0 = time.perf_counter()
    worker.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.0005)
    elapsed_s = time.perf_counter() - t0
    worker.join()
    # With the GIL held for the whole solve this loop could not run during it.
    assert elapsed_s > 0.02, "solve too short to tell"
    assert ticks >= 10
