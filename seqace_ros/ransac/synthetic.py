"""Synthetic PnP problems with known poses, for the solver's tests and benchmarks.

A 640x480 pinhole camera (fx = fy = 500 px) looks at points 1-5 m in front of it; pixel
observations get Gaussian noise and a chosen fraction of them is replaced by uniformly
random pixels (outliers, their 3D points kept). Poses are camera-to-world, OpenCV axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.geometry import make_transform, rotation_from_quaternion_xyzw

WIDTH, HEIGHT = 640, 480
INTRINSICS = (500.0, 500.0, 319.5, 239.5)  # fx, fy, cx, cy (pixels)


@dataclass(frozen=True)
class PnPProblem:
    """Correspondences of one camera with their ground truth.

    Attributes:
        points2d: (N, 2) noisy pixels, outliers included.
        points3d: (N, 3) world points, metres.
        intrinsics: (fx, fy, cx, cy), pixels.
        T_world_cam: (4, 4) true camera-to-world pose.
        is_inlier: (N,) bool, False where the pixel was replaced by a random one.
    """

    points2d: NDArray[np.float64]
    points3d: NDArray[np.float64]
    intrinsics: tuple[float, float, float, float]
    T_world_cam: NDArray[np.float64]
    is_inlier: NDArray[np.bool_]


def random_rotation(rng: np.random.Generator) -> NDArray[np.float64]:
    """Uniformly random rotation matrix (3, 3)."""
    return rotation_from_quaternion_xyzw(rng.normal(size=4))


def observe(
    rng: np.random.Generator,
    T_world_cam: NDArray[np.float64],
    num_points: int,
    outlier_ratio: float,
    noise_px: float,
    intrinsics: tuple[float, float, float, float] = INTRINSICS,
) -> PnPProblem:
    """Correspondences seen by a camera at ``T_world_cam``; exactly
    ``round(outlier_ratio * num_points)`` of them are outliers."""
    fx, fy, cx, cy = intrinsics
    u = rng.uniform(-0.5, WIDTH - 0.5, num_points)
    v = rng.uniform(-0.5, HEIGHT - 0.5, num_points)
    depth = rng.uniform(1.0, 5.0, num_points)
    points_cam_N3 = np.stack([(u - cx) / fx * depth, (v - cy) / fy * depth, depth], axis=1)
    points3d = points_cam_N3 @ T_world_cam[:3, :3].T + T_world_cam[:3, 3]
    points2d = np.stack([u, v], axis=1) + rng.normal(scale=noise_px, size=(num_points, 2))
    is_inlier = np.ones(num_points, dtype=bool)
    outliers = rng.permutation(num_points)[: round(outlier_ratio * num_points)]
    is_inlier[outliers] = False
    points2d[outliers] = np.stack(
        [
            rng.uniform(-0.5, WIDTH - 0.5, len(outliers)),
            rng.uniform(-0.5, HEIGHT - 0.5, len(outliers)),
        ],
        axis=1)
    return PnPProblem(points2d, points3d, intrinsics, T_world_cam, is_inlier)


def make_pnp_problem(
    rng: np.random.Generator, num_points: int, outlier_ratio: float, noise_px: float
) -> PnPProblem:
    """A camera at a random pose (centre within 2 m of the origin) and its correspondences."""
    T_world_cam = make_transform(random_rotation(rng), rng.uniform(-2.0, 2.0, 3))
    return observe(rng, T_world_cam, num_points, outlier_ratio, noise_px)
