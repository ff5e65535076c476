"""Colour keypoints at known depths -> 3D world points.

The depth of a colour keypoint comes from the depth image registered to the colour camera
(:mod:`seqace_ros.core.depth`); its 3D point is that depth along its colour ray, moved to the
world by the frame's ``T_world_cam``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import transform_points


def lift_keypoints(
    keypoints_N2: NDArray[np.floating], depths_N: NDArray[np.floating], color: Intrinsics,
    T_world_cam: NDArray[np.float64],
) -> NDArray[np.float64]:
    """3D world points of colour keypoints at known depths.

    Args:
        keypoints_N2: (N, 2) colour-image pixels (u, v).
        depths_N: (N,) depth along the camera z axis in metres.
        color: colour intrinsics.
        T_world_cam: (4, 4) camera-to-world pose of the colour camera.

    Returns:
        (N, 3) float64 world points in metres.
    """
    return transform_points(T_world_cam, color.backproject(keypoints_N2, depths_N))
