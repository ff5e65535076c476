"""Undistortion: remap a distorted camera's images to the pinhole camera with the same ``K``."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.calibration import CalibrationError, CameraCalibration


class Undistorter:
    """Remaps images of a distorted camera to the pinhole camera with the same ``K``.

    The remap tables are computed once; calling it on an ideal pinhole calibration returns
    the input unchanged.
    """

    def __init__(self, calibration: CameraCalibration) -> None:
        self.calibration = calibration
        self._maps: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None
        if calibration.is_pinhole:
            return
        intr = calibration.intrinsics
        K = intr.K
        D = np.asarray(calibration.distortion, dtype=np.float64)
        size = (intr.width, intr.height)
        if calibration.distortion_model == "equidistant":
            maps = cv2.fisheye.initUndistortRectifyMap(K, D, np.eye(3), K, size, cv2.CV_32FC1)
        else:
            maps = cv2.initUndistortRectifyMap(K, D, np.eye(3), K, size, cv2.CV_32FC1)
        self._maps = (maps[0], maps[1])

    def __call__(self, image_rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Undistorted (H, W, 3) uint8 image (bilinear), or the input for a pinhole camera.

        Raises:
            CalibrationError: if the image size differs from the calibration's.
        """
        intr = self.calibration.intrinsics
        if image_rgb.shape[:2] != (intr.height, intr.width):
            raise CalibrationError(
                f"image is {image_rgb.shape[1]}x{image_rgb.shape[0]} but the calibration is for "
                f"{intr.width}x{intr.height}")
        if self._maps is None:
            return image_rgb
        return cv2.remap(image_rgb, self._maps[0], self._maps[1], cv2.INTER_LINEAR)
