"""The solver on real scene geometry: Kinect depth points of redkitchen_dev frames.

World points come from real depth maps (depth intrinsics, ground-truth poses), so their
layout is the scene's (walls, counters, clutter); pixels get 1 px noise and half of them
are replaced by random pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from data_paths import require_redkitchen

from seqace_ros.core.geometry import orthonormalize, pose_error
from seqace_ros.ransac import RansacOptions, solve_pnp

pytestmark = pytest.mark.real_data

DEPTH_INTRINSICS = (585.0, 585.0, 320.0, 240.0)
FRAMES = (0, 40, 80, 120)


def load_frame(root: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth T_world_cam (orthonormalised) and depth in metres (H, W), 0 = invalid."""
    T_world_cam = np.loadtxt(root / f"frame-{index:06d}.pose.txt")
    T_world_cam[:3, :3] = orthonormalize(T_world_cam[:3, :3])
    depth_mm = cv2.imread(str(root / f"frame-{index:06d}.depth.png"), cv2.IMREAD_UNCHANGED)
    return T_world_cam, depth_mm.astype(np.float64) / 1000.0


def correspondences(
    rng: np.random.Generator, T_world_cam: np.ndarray, depth_m: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """n pixels with valid depth -> (noisy pixels with 50 % outliers, world points)."""
    v, u = np.nonzero(depth_m > 0.3)
    pick = rng.choice(len(u), n, replace=False)
    u, v, d = u[pick].astype(float), v[pick].astype(float), depth_m[v[pick], u[pick]]
    fx, fy, cx, cy = DEPTH_INTRINSICS
    points_cam = np.stack([(u - cx) / fx * d, (v - cy) / fy * d, d], axis=1)
    points_world = points_cam @ T_world_cam[:3, :3].T + T_world_cam[:3, 3]
    pixels = np.stack([u, v], axis=1) + rng.normal(scale=1.0, size=(n, 2))
    outliers = rng.permutation(n)[: n // 2]
    pixels[outliers] = rng.uniform([0, 0], [640, 480], size=(len(outliers), 2))
    return pixels, points_world


def test_pnp_on_real_depth_geometry():
    root = require_redkitchen()
    rng = np.random.default_rng(0)
    frames = [load_frame(root, i) for i in FRAMES]
    data = [correspondences(rng, T, depth, 500) for T, depth in frames]
    for (T_world_cam, _), (pixels, points) in zip(frames, data, strict=True):
        result = solve_pnp(pixels, points, DEPTH_INTRINSICS, RansacOptions(seed=0))
        assert result.success
        translation_m, rotation_deg = pose_error(result.T_world_cam, T_world_cam)
        assert translation_m < 0.01
        assert rotation_deg < 0.1
