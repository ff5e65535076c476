"""Depth images: decoding to metres, registration into the colour camera, depth at pixels.

A depth camera and a colour camera are two cameras (Kinect v1 and most RGB-D sensors): their
intrinsics differ and a few centimetres separate them. A depth image is *registered* to the
colour image by lifting every depth pixel with the depth intrinsics, moving it by
``T_colour_depth`` into the colour camera and projecting it with the colour intrinsics,
keeping the nearest surface per colour pixel (z-buffer). Depth that is already registered
(equal intrinsics, identity extrinsic) passes through unchanged.

Conventions (DESIGN.md): 16UC1 images hold millimetres, 32FC1 images metres; 0 or non-finite
is invalid. In this module depth is float32 metres along the camera's z axis, 0 = invalid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import transform_points


class DepthError(SeqaceError, ValueError):
    """A depth image or depth calibration that cannot be used (missing, wrong type or size)."""


@dataclass(frozen=True)
class DepthCalibration:
    """How a depth image relates to its colour image.

    Attributes:
        depth_intrinsics: pinhole intrinsics of the depth image (its own size).
        T_colour_depth: (4, 4) float64 depth-camera-to-colour-camera transform (metres,
            OpenCV axes): a point in the depth camera's frame, moved into the colour camera's.
        min_depth_m: depths below this are invalid.
        max_depth_m: depths above this are invalid.
    """

    depth_intrinsics: Intrinsics
    T_colour_depth: NDArray[np.float64] = field(default_factory=lambda: np.eye(4))
    min_depth_m: float = 0.2
    max_depth_m: float = 8.0

    def __post_init__(self) -> None:
        T = np.asarray(self.T_colour_depth, dtype=np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise DepthError(f"T_colour_depth must be a finite 4x4 matrix, got shape {T.shape}")
        if not np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-6) or not np.allclose(
                T[3], [0.0, 0.0, 0.0, 1.0]):
            raise DepthError("T_colour_depth must be a rigid transform (rotation, translation)")
        if not 0.0 < self.min_depth_m < self.max_depth_m:
            raise DepthError(f"need 0 < min_depth_m < max_depth_m, got {self.min_depth_m}, "
                             f"{self.max_depth_m}")

    def is_registered_to(self, colour: Intrinsics) -> bool:
        """Whether depth pixel (u, v) already is colour pixel (u, v) (no warp needed)."""
        return self.depth_intrinsics == colour and np.array_equal(self.T_colour_depth, np.eye(4))


@dataclass(frozen=True)
class DepthImage:
    """A depth image with its calibration.

    Attributes:
        depth_m: (H, W) float32 z-depth of the depth camera in metres, 0 = invalid.
        calibration: its intrinsics (size H x W), extrinsic to the colour camera, valid range.
    """

    depth_m: NDArray[np.float32]
    calibration: DepthCalibration

    def __post_init__(self) -> None:
        K = self.calibration.depth_intrinsics
        if self.depth_m.shape != (K.height, K.width):
            raise DepthError(f"depth image is {self.depth_m.shape[1]}x{self.depth_m.shape[0]}, "
                             f"its intrinsics are for {K.width}x{K.height}")

    def registered_to(self, colour: Intrinsics) -> NDArray[np.float32]:
        """(colour.height, colour.width) float32 colour-camera z-depth in metres, 0 = none."""
        return register_depth(self.depth_m, self.calibration, colour)


def depth_to_metres(depth: NDArray[np.generic]) -> NDArray[np.float32]:
    """(H, W) float32 metres, 0 where invalid, from a 16UC1 (mm) or 32FC1 (m) depth image.

    Raises:
        DepthError: for another shape or dtype.
    """
    if depth.ndim != 2:
        raise DepthError(f"a depth image must be single-channel (H, W), got shape {depth.shape}")
    if depth.dtype == np.uint16:
        return depth.astype(np.float32) * np.float32(0.001)
    if depth.dtype in (np.float32, np.float64):
        metres = depth.astype(np.float32)
        metres[~np.isfinite(metres) | (metres < 0.0)] = 0.0
        return metres
    raise DepthError(f"depth must be uint16 millimetres or float metres, got {depth.dtype}")


def read_depth_m(path: str | Path) -> NDArray[np.float32]:
    """A 16-bit depth PNG (millimetres) as (H, W) float32 metres, 0 = invalid.

    Raises:
        DepthError: when the file is missing or not a single-channel 16-bit image.
    """
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise DepthError(f"{path}: cannot read depth image")
    if depth.dtype != np.uint16 or depth.ndim != 2:
        raise DepthError(f"{path}: expected a single-channel uint16 depth image, got "
                         f"{depth.dtype} with shape {depth.shape}")
    return depth_to_metres(depth)


def register_depth(
    depth_m_HW: NDArray[np.float32], calibration: DepthCalibration, colour: Intrinsics,
) -> NDArray[np.float32]:
    """Depth of the colour image's pixels from the depth camera's image.

    Args:
        depth_m_HW: (H, W) depth-camera depth in metres, 0 = invalid.
        calibration: depth intrinsics, depth-to-colour transform and valid range.
        colour: colour-image intrinsics (the output's size).

    Returns:
        (colour.height, colour.width) float32 depth along the colour camera's z axis in
        metres, 0 where no depth pixel lands; the nearest surface wins. Depths outside the
        calibration's valid range are dropped.

    Raises:
        DepthError: when ``depth_m_HW`` does not match the depth intrinsics' size.
    """
    K_d = calibration.depth_intrinsics
    if depth_m_HW.shape != (K_d.height, K_d.width):
        raise DepthError(f"depth image is {depth_m_HW.shape[1]}x{depth_m_HW.shape[0]}, the "
                         f"depth intrinsics are for {K_d.width}x{K_d.height}")
    in_range = (depth_m_HW >= calibration.min_depth_m) & (depth_m_HW <= calibration.max_depth_m)
    if calibration.is_registered_to(colour):
        return np.where(in_range, depth_m_HW, 0.0).astype(np.float32)
    v, u = np.nonzero(in_range)
    points_depth_N3 = K_d.backproject(np.stack([u, v], axis=1), depth_m_HW[v, u])
    points_colour_N3 = transform_points(calibration.T_colour_depth, points_depth_N3)
    pixels_N2, front = colour.project(points_colour_N3)
    u_c, v_c = np.rint(pixels_N2[front]).astype(np.int64).T
    inside = (u_c >= 0) & (u_c < colour.width) & (v_c >= 0) & (v_c < colour.height)
    flat = v_c[inside] * colour.width + u_c[inside]
    registered = np.full(colour.width * colour.height, np.inf, dtype=np.float64)
    np.minimum.at(registered, flat, points_colour_N3[front, 2][inside])
    registered[~np.isfinite(registered)] = 0.0
    return registered.reshape(colour.height, colour.width).astype(np.float32)


def depths_at(
    pixels_N2: NDArray[np.floating], depth_m_HW: NDArray[np.float32], window: int = 2,
    max_relative_spread: float = 0.05,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Depth at pixels from a registered depth image, rejecting depth edges.

    The depth is the median of the valid depths in the ``(2 window + 1)^2`` neighbourhood of
    the pixel's nearest pixel; a pixel is invalid when that neighbourhood has no valid depth
    or its depths spread (max - min) over more than ``max_relative_spread`` of the median: at
    a depth discontinuity the surface a pixel (or an 8x8 patch) sees is ambiguous.

    Args:
        pixels_N2: (N, 2) pixels (u, v).
        depth_m_HW: (H, W) registered depth in metres, 0 = none.
        window: neighbourhood half-size in pixels.
        max_relative_spread: largest accepted (max - min) / median depth.

    Returns:
        (N,) float64 depths in metres (0 where invalid) and the (N,) bool validity mask.
    """
    height, width = depth_m_HW.shape
    depth = np.where(depth_m_HW > 0, depth_m_HW, np.nan)
    padded = np.pad(depth, window, constant_values=np.nan)
    u = np.clip(np.rint(pixels_N2[:, 0]).astype(np.int64), 0, width - 1)
    v = np.clip(np.rint(pixels_N2[:, 1]).astype(np.int64), 0, height - 1)
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
