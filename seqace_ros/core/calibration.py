"""Camera calibration (pinhole intrinsics plus lens distortion) from ``CameraInfo`` fields or files.

The one place where ``CameraInfo`` conventions (distortion models, region of interest,
binning) become library types, so a bag and the live node read a camera the same way. The
pipeline works on pinhole images: :class:`seqace_ros.core.undistortion.Undistorter` remaps
the images of a distorted calibration.

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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.errors import SeqaceError

# distortion model -> number of coefficients OpenCV takes for it
DISTORTION_MODELS: dict[str, tuple[int, ...]] = {
    "plumb_bob": (5,),
    "rational_polynomial": (8,),
    "equidistant": (4,),
}


class CalibrationError(SeqaceError, ValueError):
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
    roi_xywh: tuple[int, int, int, int] = (0, 0, 0, 0),
    binning_xy: tuple[int, int] = (0, 0),
) -> CameraCalibration:
    """Validated calibration of the images that go with ``CameraInfo``-style fields.

    ``width``, ``height`` and ``K_9`` describe the full sensor; a region of interest crops
    it and binning then shrinks it, so the images are ``roi width / binning x`` by
    ``roi height / binning y`` pixels. The principal point moves by the ROI offset; binning
    scales with the pixel-centre convention of :meth:`Intrinsics.resized`. Distortion
    coefficients act on normalised coordinates and stay as they are.

    Args:
        width: sensor width in pixels.
        height: sensor height in pixels.
        K_9: row-major 3x3 camera matrix of the sensor (9 values).
        distortion_model: ROS distortion model name (empty means pinhole).
        distortion: distortion coefficients.
        origin: where the fields came from (a file or topic), for error messages.
        roi_xywh: region of interest (x offset, y offset, width, height) in sensor pixels;
            a zero width and height mean the full sensor.
        binning_xy: binning factors (x, y); 0 and 1 mean none.

    Raises:
        CalibrationError: wrong K size, zero or negative focals or size, an unsupported
            distortion model, a coefficient count the model does not take, a ROI outside
            the sensor, or a size the binning does not divide.
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
    return CameraCalibration(
        _crop_and_bin(intrinsics, roi_xywh, binning_xy, origin), model, coefficients
    )


def _crop_and_bin(
    sensor: Intrinsics,
    roi_xywh: tuple[int, int, int, int],
    binning_xy: tuple[int, int],
    origin: str,
) -> Intrinsics:
    """Intrinsics of the ``sensor`` images cropped to ``roi_xywh``, then binned by ``binning_xy``.

    Raises:
        CalibrationError: a ROI that is empty in one direction or leaves the sensor, or a
            size the binning does not divide.
    """
    x_offset, y_offset, roi_width, roi_height = (int(v) for v in roi_xywh)
    image = sensor
    if roi_width or roi_height:
        if (
            roi_width == 0
            or roi_height == 0
            or x_offset + roi_width > sensor.width
            or y_offset + roi_height > sensor.height
        ):
            raise CalibrationError(
                f"{origin}: roi {roi_width}x{roi_height}+{x_offset}+{y_offset} is "
                f"empty or outside the {sensor.width}x{sensor.height} sensor"
            )
        cx, cy = sensor.cx - x_offset, sensor.cy - y_offset
        image = replace(sensor, cx=cx, cy=cy, width=roi_width, height=roi_height)
    binning_x, binning_y = (max(int(b), 1) for b in binning_xy)
    if binning_x == 1 and binning_y == 1:
        return image
    if image.width % binning_x or image.height % binning_y:
        raise CalibrationError(
            f"{origin}: binning {binning_x}x{binning_y} does not divide the "
            f"{image.width}x{image.height} image"
        )
    return image.resized(image.width // binning_x, image.height // binning_y)


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
