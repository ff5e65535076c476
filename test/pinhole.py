"""Pinhole projection (numpy, no distortion) for building and checking test geometry.

The library projects inside its solvers and losses; tests that make pixels from known points,
or check pixels against them, use these two functions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from seqace_ros.core.geometry import invert_transform, transform_points


def project(points_cam_N3: ArrayLike, K_33: ArrayLike) -> NDArray[np.float64]:
    """(N, 2) pixels of camera-frame points (N, 3) in front of the camera (z > 0, metres)."""
    points = np.asarray(points_cam_N3, dtype=np.float64)
    homogeneous = points @ np.asarray(K_33, dtype=np.float64).T
    return homogeneous[:, :2] / homogeneous[:, 2:]


def project_world(
    T_world_cam: ArrayLike, points_world_N3: ArrayLike, K_33: ArrayLike
) -> NDArray[np.float64]:
    """(N, 2) pixels of world points (N, 3) seen by the camera at pose ``T_world_cam``
    (camera-to-world, 4x4)."""
    return project(transform_points(invert_transform(T_world_cam), points_world_N3), K_33)
