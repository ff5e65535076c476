"""Pinhole camera intrinsics.

Pixel coordinates follow OpenCV: (u, v) with u to the right, v down, origin at the centre
of the top-left pixel. Intrinsics are always the full pinhole (fx, fy, cx, cy), never a
single focal length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: Default cap on the pixels of one image (width x height): images and calibrations that
#: describe more are refused before anything of their size is allocated. 50 megapixels is
#: above any common robot camera (an 8K sensor has 33).
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image of ``width`` x ``height`` pixels (focals in pixels)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"intrinsics must be finite, got fx, fy, cx, cy = {values}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def K(self) -> NDArray[np.float64]:
        """Calibration matrix (3, 3)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def as_tuple(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy), the order the RANSAC solver takes."""
        return (self.fx, self.fy, self.cx, self.cy)

    def backproject(self, pixels_N2: NDArray[np.floating],
                    depths_N: NDArray[np.floating]) -> NDArray[np.float64]:
        """Camera-frame points (N, 3), metres, of the pixels ``pixels_N2`` (N, 2) (u, v) at
        the z-depths ``depths_N`` (N,) in metres: the inverse of the pinhole projection."""
        pixels = np.asarray(pixels_N2, dtype=np.float64)
        z = np.asarray(depths_N, dtype=np.float64)
        return np.stack([(pixels[:, 0] - self.cx) / self.fx * z,
                         (pixels[:, 1] - self.cy) / self.fy * z, z], axis=1)

    def project(self, points_cam_N3: NDArray[np.floating]) -> tuple[NDArray[np.float64],
                                                                    NDArray[np.bool_]]:
        """Pixels (N, 2) (u, v) of camera-frame points ``points_cam_N3`` (N, 3), and (N,)
        whether each lies in front of the camera (z > 1e-6); the pixels of the others are NaN.
        The inverse of :meth:`backproject`."""
        points = np.asarray(points_cam_N3, dtype=np.float64)
        z = points[:, 2]
        in_front_N = z > 1e-6
        safe_z = np.where(in_front_N, z, 1.0)
        pixels_N2 = np.stack([self.fx * points[:, 0] / safe_z + self.cx,
                              self.fy * points[:, 1] / safe_z + self.cy], axis=1)
        pixels_N2[~in_front_N] = np.nan
        return pixels_N2, in_front_N

    def resized(self, width: int, height: int) -> Intrinsics:
        """Intrinsics of the same camera after resizing the image to ``width`` x ``height``.

        Uses the pixel-centre convention: a pixel centre u maps to (u + 0.5) * s - 0.5.
        """
        sx = width / self.width
        sy = height / self.height
        return Intrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
            width=width,
            height=height)
