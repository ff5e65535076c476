"""Camera calibration with lens distortion, calibration files, and undistortion to pinhole.

The pipeline works on pinhole images. A calibration with non-zero distortion (from a
``CameraInfo`` topic or a file) is applied by remapping each image to the undistorted pinhole
camera with the same ``K`` (:class:`Undistorter`).

Calibration files use the ROS ``camera_calibration_parsers`` YAML layout::

    image_width: 640
    image_height: 480
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, p1, p2, k3]}

or the flat form ``{fx, fy, cx, cy, width, height}`` (YAML or JSON) for pinhole cameras.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics

# distortion model -> number of coefficients OpenCV takes for it
DISTORTION_MODELS: dict[str, tuple[int, ...]] = {
    "plumb_bob": (5,),
    "rational_polynomial": (8,),
    "equidistant": (4,),
}


class CalibrationError(ValueError):
    """A calibration file or message is missing, malformed or uses an unsupported model."""


@dataclass(frozen=True)
class CameraCalibration:
    """Pinhole intrinsics plus lens distortion (ROS ``CameraInfo`` conventions).

    Attributes:
        intrinsics: fx, fy, cx, cy in pixels and the image size.
        distortion_model: ``plumb_bob``, ``rational_polynomial`` or ``equidistant``.
        distortion: the model's coefficients (all zero or empty for an ideal pinhole).
    """

    intrinsics: Intrinsics
    distortion_model: str = "plumb_bob"
    distortion: tuple[float, ...] = ()

    @property
    def is_pinhole(self) -> bool:
        """True when there is no distortion to remove."""
        return not any(self.distortion)


def calibration_from_fields(
    width: int,
    height: int,
    K_9: tuple[float, ...] | list[float] | NDArray[np.float64],
    distortion_model: str,
    distortion: tuple[float, ...] | list[float] | NDArray[np.float64],
    origin: str,
) -> CameraCalibration:
    """Validated calibration from ``CameraInfo``-style fields.

    Args:
        width: image width in pixels.
        height: image height in pixels.
        K_9: row-major 3x3 camera matrix (9 values).
        distortion_model: ROS distortion model name (empty means pinhole).
        distortion: distortion coefficients.
        origin: where the fields came from (a file or topic), for error messages.

    Raises:
        CalibrationError: wrong K size, zero or negative focals or size, an unsupported
            distortion model, or a coefficient count the model does not take.
    """
    K = np.asarray(K_9, dtype=np.float64).reshape(-1)
    if K.size != 9:
        raise CalibrationError(f"{origin}: camera matrix needs 9 values, got {K.size}")
    coefficients = tuple(float(c) for c in np.asarray(distortion, dtype=np.float64).reshape(-1))
    model = distortion_model or "plumb_bob"
    if any(coefficients):
        if model not in DISTORTION_MODELS:
            raise CalibrationError(
                f"{origin}: unsupported distortion model {model!r}; "
                f"supported: {', '.join(DISTORTION_MODELS)}"
            )
        if len(coefficients) not in DISTORTION_MODELS[model]:
            raise CalibrationError(
                f"{origin}: distortion model {model!r} takes {DISTORTION_MODELS[model]} "
                f"coefficients, got {len(coefficients)}"
            )
    try:
        intrinsics = Intrinsics(
            fx=float(K[0]),
            fy=float(K[4]),
            cx=float(K[2]),
            cy=float(K[5]),
            width=int(width),
            height=int(height),
        )
    except ValueError as error:
        raise CalibrationError(f"{origin}: {error}") from None
    return CameraCalibration(intrinsics, model, coefficients)


def read_calibration_file(path: str | Path) -> CameraCalibration:
    """Read a ROS camera-info YAML file or a flat ``{fx, fy, cx, cy, width, height}`` file.

    Raises:
        CalibrationError: missing file, unparsable YAML/JSON, or missing/invalid fields.
    """
    file = Path(path)
    if not file.is_file():
        raise CalibrationError(f"calibration file {file} does not exist")
    try:
        content = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise CalibrationError(f"calibration file {file} is not valid YAML/JSON: {error}") from None
    if not isinstance(content, Mapping):
        raise CalibrationError(
            f"calibration file {file} must hold a mapping, got {type(content).__name__}"
        )
    try:
        if "camera_matrix" in content:
            distortion = content.get("distortion_coefficients") or {"data": []}
            return calibration_from_fields(
                width=content["image_width"],
                height=content["image_height"],
                K_9=content["camera_matrix"]["data"],
                distortion_model=content.get("distortion_model", "plumb_bob"),
                distortion=distortion["data"],
                origin=str(file),
            )
        fx, fy, cx, cy = (float(content[k]) for k in ("fx", "fy", "cx", "cy"))
        return calibration_from_fields(
            width=content["width"],
            height=content["height"],
            K_9=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
            distortion_model="plumb_bob",
            distortion=[],
            origin=str(file),
        )
    except (KeyError, TypeError) as error:
        raise CalibrationError(
            f"calibration file {file}: missing or invalid field {error}; expected ROS "
            "camera-info YAML (image_width, image_height, camera_matrix, ...) or "
            "fx, fy, cx, cy, width, height"
        ) from None


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
                f"{intr.width}x{intr.height}"
            )
        if self._maps is None:
            return image_rgb
        return cv2.remap(image_rgb, self._maps[0], self._maps[1], cv2.INTER_LINEAR)
