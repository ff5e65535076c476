"""Undistortion: remap a distorted camera's images to the pinhole camera with the same ``K``.

A calibration whose distortion cannot describe a real lens over its image is refused before
the remap tables are built (:func:`check_distortion`): on a grid of
:data:`CHECK_GRID` points over the undistorted image, at least :data:`MIN_INSIDE_FRACTION`
must come from inside the raw image (k1 = 50 on a 640x480 camera: about 10 %, every other
undistorted pixel black), and where neighbouring grid points both come from inside it, the
source must not fold back (its coordinates increase along every row and column; k1 = -3
mirrors the outer image inwards).
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.calibration import CalibrationError, CameraCalibration

#: Grid (columns, rows) of undistorted pixels whose sources :func:`check_distortion` checks.
CHECK_GRID = (33, 25)
#: Least fraction of that grid that must come from inside the raw image.
MIN_INSIDE_FRACTION = 0.5


def distorted_pixels(
    calibration: CameraCalibration, pinhole_uv_N2: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Where the distorted camera sees what the pinhole camera (same ``K``) sees at each pixel.

    Args:
        calibration: the distorted camera.
        pinhole_uv_N2: (N, 2) pixels (u, v) of the pinhole camera.

    Returns:
        (N, 2) pixels (u, v) of the raw, distorted image (OpenCV's projection of the model).
    """
    intr = calibration.intrinsics
    K = intr.K
    D = np.asarray(calibration.distortion, dtype=np.float64)
    uv = np.asarray(pinhole_uv_N2, dtype=np.float64).reshape(-1, 2)
    rays_N3 = np.column_stack(
        [(uv[:, 0] - intr.cx) / intr.fx, (uv[:, 1] - intr.cy) / intr.fy, np.ones(len(uv))]
    )
    if calibration.distortion_model == "equidistant":
        projected, _ = cv2.fisheye.projectPoints(rays_N3[:, None, :], np.zeros(3), np.zeros(3),
                                                 K, D)
    else:
        projected, _ = cv2.projectPoints(rays_N3, np.zeros(3), np.zeros(3), K, D)
    return projected.reshape(-1, 2)


def check_distortion(calibration: CameraCalibration) -> None:
    """Raise unless the distortion is plausible over the image (see the module docstring).

    Raises:
        CalibrationError: non-finite sources, too few sources inside the raw image, or a fold.
    """
    if calibration.is_pinhole:
        return
    intr = calibration.intrinsics
    columns, rows = CHECK_GRID
    u, v = np.meshgrid(np.linspace(0, intr.width - 1, columns),
                       np.linspace(0, intr.height - 1, rows))
    source_uv = distorted_pixels(calibration, np.column_stack([u.ravel(), v.ravel()]))
    su = source_uv[:, 0].reshape(rows, columns)
    sv = source_uv[:, 1].reshape(rows, columns)
    what = f"distortion {calibration.distortion_model} {list(calibration.distortion)}"
    if not (np.all(np.isfinite(su)) and np.all(np.isfinite(sv))):
        raise CalibrationError(f"implausible {what}: it sends image points to infinity")
    inside = (su >= 0) & (su <= intr.width - 1) & (sv >= 0) & (sv <= intr.height - 1)
    if inside.mean() < MIN_INSIDE_FRACTION:
        raise CalibrationError(
            f"implausible {what}: only {100 * inside.mean():.0f} % of the undistorted "
            f"{intr.width}x{intr.height} image would come from inside the raw image "
            f"(at least {100 * MIN_INSIDE_FRACTION:.0f} % required)"
        )
    along_rows = (np.diff(su, axis=1) <= 0) & inside[:, 1:] & inside[:, :-1]
    along_columns = (np.diff(sv, axis=0) <= 0) & inside[1:, :] & inside[:-1, :]
    if along_rows.any() or along_columns.any():
        raise CalibrationError(
            f"implausible {what}: it folds the image back on itself (the raw image would "
            "appear mirrored in the undistorted one)"
        )


class Undistorter:
    """Remaps images of a distorted camera to the pinhole camera with the same ``K``.

    The remap tables are computed once; calling it on an ideal pinhole calibration returns
    the input unchanged.

    Raises:
        CalibrationError: an implausible distortion (:func:`check_distortion`), or tables
            OpenCV cannot build.
    """

    def __init__(self, calibration: CameraCalibration) -> None:
        self.calibration = calibration
        self._maps: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None
        if calibration.is_pinhole:
            return
        check_distortion(calibration)
        intr = calibration.intrinsics
        K = intr.K
        D = np.asarray(calibration.distortion, dtype=np.float64)
        size = (intr.width, intr.height)
        try:
            if calibration.distortion_model == "equidistant":
                maps = cv2.fisheye.initUndistortRectifyMap(K, D, np.eye(3), K, size,
                                                           cv2.CV_32FC1)
            else:
                maps = cv2.initUndistortRectifyMap(K, D, np.eye(3), K, size, cv2.CV_32FC1)
        except cv2.error as error:
            raise CalibrationError(
                f"cannot build undistortion tables for {intr.width}x{intr.height} images: "
                f"{error}"
            ) from error
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
