"""Depth images -> 3D world points of colour keypoints (7-Scenes Kinect frames).

7-Scenes depth is not registered to the colour image: the depth camera has its own
intrinsics (``depth-intrinsics.txt``, fx = fy = 585 px) and the colour camera others
(``color-intrinsics.txt``, 525 px), a few centimetres apart. The dataset README says the
poses are the depth camera's and, as in every published result, are to be treated as the
colour camera's. So depth is *registered* to the colour image by lifting every depth pixel
with the depth intrinsics, moving it by ``T_color_depth`` (identity by default: same optical
centre, as that convention implies) and projecting it with the colour intrinsics, keeping
the nearest surface per colour pixel (z-buffer). A colour keypoint's 3D point is then its
registered depth along its colour ray, moved to the world by the frame's ``T_world_cam``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import transform_points


class DepthError(ValueError):
    """A depth image that cannot be used (missing, wrong type or size)."""


@dataclass(frozen=True)
class DepthCalibration:
    """How a depth image relates to its colour image.

    Attributes:
        depth_intrinsics: pinhole intrinsics of the depth image.
        T_color_depth: (4, 4) float64 depth-camera-to-colour-camera transform (metres).
        depth_scale_m: metres per depth unit (7-Scenes: millimetres, 0.001).
        min_depth_m: depths below this are invalid.
        max_depth_m: depths above this are invalid.
    """

    depth_intrinsics: Intrinsics
    T_color_depth: NDArray[np.float64] = field(default_factory=lambda: np.eye(4))
    depth_scale_m: float = 0.001
    min_depth_m: float = 0.2
    max_depth_m: float = 8.0


def read_depth_m(path: str | Path, scale_m: float) -> NDArray[np.float32]:
    """A 16-bit depth PNG as (H, W) float32 metres (0 where the sensor gave no depth).

    Raises:
        DepthError: when the file is missing or not a single-channel 16-bit image.
    """
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise DepthError(f"{path}: cannot read depth image")
    if depth.dtype != np.uint16 or depth.ndim != 2:
        raise DepthError(f"{path}: expected a single-channel uint16 depth image, got "
                         f"{depth.dtype} with shape {depth.shape}")
    return depth.astype(np.float32) * np.float32(scale_m)


def register_depth(
    depth_m_HW: NDArray[np.float32], calibration: DepthCalibration, color: Intrinsics,
) -> NDArray[np.float32]:
    """Depth of the colour image's pixels from the depth camera's image.

    Args:
        depth_m_HW: (H, W) depth-camera depth in metres, 0 = invalid.
        calibration: depth intrinsics, depth-to-colour transform and valid range.
        color: colour-image intrinsics (the output's size).

    Returns:
        (color.height, color.width) float32 depth along the colour camera's z axis in
        metres, 0 where no depth pixel lands; the nearest surface wins.

    Raises:
        DepthError: when ``depth_m_HW`` does not match the depth intrinsics' size.
    """
    K_d = calibration.depth_intrinsics
    if depth_m_HW.shape != (K_d.height, K_d.width):
        raise DepthError(f"depth image is {depth_m_HW.shape[1]}x{depth_m_HW.shape[0]}, the "
                         f"depth intrinsics are for {K_d.width}x{K_d.height}")
    v, u = np.nonzero((depth_m_HW >= calibration.min_depth_m)
                      & (depth_m_HW <= calibration.max_depth_m))
    z = depth_m_HW[v, u].astype(np.float64)
    points_depth_N3 = np.stack([(u - K_d.cx) / K_d.fx * z, (v - K_d.cy) / K_d.fy * z, z], 1)
    points_color_N3 = transform_points(calibration.T_color_depth, points_depth_N3)
    z_c = points_color_N3[:, 2]
    front = z_c > 1e-6
    u_c = np.rint(color.fx * points_color_N3[front, 0] / z_c[front] + color.cx).astype(np.int64)
    v_c = np.rint(color.fy * points_color_N3[front, 1] / z_c[front] + color.cy).astype(np.int64)
    inside = (u_c >= 0) & (u_c < color.width) & (v_c >= 0) & (v_c < color.height)
    flat = v_c[inside] * color.width + u_c[inside]
    registered = np.full(color.width * color.height, np.inf, dtype=np.float64)
    np.minimum.at(registered, flat, z_c[front][inside])
    registered[~np.isfinite(registered)] = 0.0
    return registered.reshape(color.height, color.width).astype(np.float32)


def keypoint_depths(
    keypoints_N2: NDArray[np.floating], depth_m_HW: NDArray[np.float32], window: int = 2,
    max_relative_spread: float = 0.05,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Depth at keypoints from a registered depth image, rejecting depth edges.

    The depth is the median of the valid depths in the ``(2 window + 1)^2`` neighbourhood of
    the keypoint's nearest pixel; a keypoint is invalid when that neighbourhood has no
    valid depth or its depths spread (max - min) over more than ``max_relative_spread`` of
    the median: at a depth discontinuity the keypoint's surface is ambiguous.

    Args:
        keypoints_N2: (N, 2) pixels (u, v).
        depth_m_HW: (H, W) registered depth in metres, 0 = none.
        window: neighbourhood half-size in pixels.
        max_relative_spread: largest accepted (max - min) / median depth.

    Returns:
        (N,) float64 depths in metres (0 where invalid) and the (N,) bool validity mask.
    """
    height, width = depth_m_HW.shape
    depth = np.where(depth_m_HW > 0, depth_m_HW, np.nan)
    padded = np.pad(depth, window, constant_values=np.nan)
    u = np.clip(np.rint(keypoints_N2[:, 0]).astype(np.int64), 0, width - 1)
    v = np.clip(np.rint(keypoints_N2[:, 1]).astype(np.int64), 0, height - 1)
    offsets = np.arange(2 * window + 1)
    patches_NP = padded[(v[:, None, None] + offsets[None, :, None]),
                        (u[:, None, None] + offsets[None, None, :])].reshape(len(u), -1)
    has_depth = ~np.all(np.isnan(patches_NP), axis=1)
    depths_N = np.zeros(len(u))
    spread_N = np.full(len(u), np.inf)
    if has_depth.any():
        valid_patches = patches_NP[has_depth]
        depths_N[has_depth] = np.nanmedian(valid_patches, axis=1)
        spread_N[has_depth] = np.nanmax(valid_patches, axis=1) - np.nanmin(valid_patches, axis=1)
    valid_N = has_depth & (spread_N <= max_relative_spread * np.maximum(depths_N, 1e-9))
    return np.where(valid_N, depths_N, 0.0), valid_N


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
    z = np.asarray(depths_N, np.float64)
    points_cam_N3 = np.stack([(keypoints_N2[:, 0] - color.cx) / color.fx * z,
                              (keypoints_N2[:, 1] - color.cy) / color.fy * z, z], axis=1)
    return transform_points(T_world_cam, points_cam_N3)
