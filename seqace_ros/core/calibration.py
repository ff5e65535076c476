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

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml
from numpy.typing import NDArray

from seqace_ros.core.camera import DEFAULT_MAX_IMAGE_PIXELS, Intrinsics
from seqace_ros.core.errors import SeqaceError

# distortion model -> numbers of coefficients OpenCV takes for it (rational_polynomial: k1-k6
# with p1, p2; plus the thin-prism s1-s4; plus the sensor tilt tau_x, tau_y)
DISTORTION_MODELS: dict[str, tuple[int, ...]] = {
    "plumb_bob": (5,),
    "rational_polynomial": (8, 12, 14),
    "equidistant": (4,),
}
#: Tolerance on the fixed entries of K (skew, bottom row) and of P, relative to fx.
_MATRIX_TOLERANCE = 1e-9


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
    P_12: tuple[float, ...] | list[float] | NDArray[np.float64] | None = None,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> CameraCalibration:
    """Validated calibration of the images that go with ``CameraInfo``-style fields.

    ``width``, ``height`` and ``K_9`` describe the full sensor; a region of interest crops
    it and binning then shrinks it, so the images are ``roi width / binning x`` by
    ``roi height / binning y`` pixels. The principal point moves by the ROI offset; binning
    scales with the pixel-centre convention of :meth:`Intrinsics.resized`. Distortion
    coefficients act on normalised coordinates and stay as they are.

    With ``P_12`` the images are *rectified* (``image_rect`` of image_proc, as
    image_geometry treats them): their intrinsics are ``P``'s (fx', fy', cx', cy'), binning
    applies, and there is no distortion left to remove (``K`` and ``D`` describe the raw
    camera and are not used). ``P``'s fourth column (a stereo baseline) does not change
    the projection in the image's own optical frame and is ignored.

    Args:
        width: sensor width in pixels.
        height: sensor height in pixels.
        K_9: row-major 3x3 camera matrix of the sensor (9 values): ``[fx, 0, cx, 0, fy, cy,
            0, 0, 1]``; skew and a bottom row other than ``0, 0, 1`` are refused.
        distortion_model: ROS distortion model name (empty means pinhole).
        distortion: distortion coefficients (finite).
        origin: where the fields came from (a file or topic), for error messages.
        roi_xywh: region of interest (x offset, y offset, width, height) in sensor pixels;
            a zero width and height mean the full sensor.
        binning_xy: binning factors (x, y); 0 and 1 mean none.
        P_12: row-major 3x4 projection matrix of rectified images, or ``None`` for raw images.
        max_pixels: most pixels (width x height) the images may have.

    Raises:
        CalibrationError: wrong K size, a non-finite entry, skew or a bottom row of K (or P)
            that is not ``0, 0, 1``, zero or negative focals or size, an unsupported
            distortion model, a coefficient count the model does not take, non-finite
            coefficients, a ROI outside the sensor (or any ROI on rectified images), a size
            the binning does not divide, or images of more than ``max_pixels`` pixels.
    """
    K = _checked_camera_matrix(K_9, 9, "camera matrix K", origin)
    if P_12 is not None:
        P = _checked_camera_matrix(P_12, 12, "projection matrix P", origin)
        if any(roi_xywh[2:]):
            raise CalibrationError(
                f"{origin}: a region of interest on rectified images is not supported "
                f"(roi {roi_xywh})"
            )
        return _calibration(width, height, P[:3, :3], "plumb_bob", (), origin, roi_xywh,
                            binning_xy, max_pixels)
    coefficients = tuple(float(c) for c in np.asarray(distortion, dtype=np.float64).reshape(-1))
    if not all(math.isfinite(c) for c in coefficients):
        raise CalibrationError(
            f"{origin}: distortion coefficients must be finite, got {list(coefficients)}"
        )
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
    return _calibration(width, height, K, model, coefficients, origin, roi_xywh, binning_xy,
                        max_pixels)


def _checked_camera_matrix(
    values: tuple[float, ...] | list[float] | NDArray[np.float64], size: int, name: str,
    origin: str,
) -> NDArray[np.float64]:
    """(3, size // 3) matrix of row-major ``values``: finite, no skew, bottom row ``0 0 1 (0)``.

    Raises:
        CalibrationError: another number of values, a non-finite entry, skew, or another
            bottom row (a matrix scaled by its last entry, or written column-major).
    """
    matrix = np.asarray(values, dtype=np.float64).reshape(-1)
    if matrix.size != size:
        raise CalibrationError(f"{origin}: {name} needs {size} values, got {matrix.size}")
    if not np.all(np.isfinite(matrix)):
        raise CalibrationError(
            f"{origin}: intrinsics must be finite, got {name} = {matrix.tolist()}"
        )
    matrix = matrix.reshape(3, -1)
    if not matrix.any():
        raise CalibrationError(
            f"{origin}: {name} is all zero, an uncalibrated camera (focal lengths must be "
            "positive)"
        )
    tolerance = _MATRIX_TOLERANCE * max(abs(matrix[0, 0]), 1.0)
    if abs(matrix[0, 1]) > tolerance:
        raise CalibrationError(
            f"{origin}: {name} has skew {matrix[0, 1]} (entry [0, 1]); only zero-skew "
            "cameras are supported: calibrate without skew"
        )
    expected_bottom = [0.0, 0.0, 1.0, 0.0][: matrix.shape[1]]
    if abs(matrix[1, 0]) > tolerance or np.any(np.abs(matrix[2] - expected_bottom) > tolerance):
        raise CalibrationError(
            f"{origin}: {name} must be row-major [fx, 0, cx, 0, fy, cy, 0, 0, 1] (P: with a "
            f"fourth column), got {matrix.reshape(-1).tolist()}"
        )
    return matrix


def _calibration(
    width: int, height: int, K_33: NDArray[np.float64], model: str,
    coefficients: tuple[float, ...], origin: str, roi_xywh: tuple[int, int, int, int],
    binning_xy: tuple[int, int], max_pixels: int,
) -> CameraCalibration:
    """The calibration of the sensor images cropped and binned, their size capped.

    Raises:
        CalibrationError: invalid intrinsics, ROI or binning, or more than ``max_pixels``.
    """
    try:
        intrinsics = Intrinsics(
            fx=float(K_33[0, 0]),
            fy=float(K_33[1, 1]),
            cx=float(K_33[0, 2]),
            cy=float(K_33[1, 2]),
            width=int(width),
            height=int(height),
        )
    except ValueError as error:
        raise CalibrationError(f"{origin}: {error}") from None
    image = _crop_and_bin(intrinsics, roi_xywh, binning_xy, origin)
    if image.width * image.height > max_pixels:
        raise CalibrationError(
            f"{origin}: images of {image.width}x{image.height} = {image.width * image.height} "
            f"pixels are more than the {max_pixels} allowed (max_image_pixels)"
        )
    return CameraCalibration(image, model, coefficients)


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
        CalibrationError: a missing file, a folder, a file that cannot be read (permissions,
            an I/O error) or is not UTF-8 text (a binary file), unparsable YAML/JSON, or
            missing/invalid fields; the message names the file and the reason.
    """
    file = Path(path)
    if file.is_dir():
        raise CalibrationError(f"calibration file {file} is a folder, expected a YAML file")
    if not file.exists():
        raise CalibrationError(f"calibration file {file} does not exist")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise CalibrationError(
            f"calibration file {file} is not UTF-8 text (byte {error.start}: "
            f"{error.reason}); expected a camera-info YAML file"
        ) from None
    except OSError as error:
        raise CalibrationError(
            f"calibration file {file} cannot be read: {error.strerror or error}"
        ) from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as error:
        reason = " ".join(str(error).split())
        raise CalibrationError(
            f"calibration file {file} is not valid YAML/JSON: {reason}") from None
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
    except CalibrationError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        # KeyError: a missing field; the others: a field of the wrong type (a string where a
        # number belongs, a number where a list belongs, an infinite size).
        raise CalibrationError(
            f"calibration file {file}: missing or invalid field {error}; expected ROS "
            "camera-info YAML (image_width, image_height, camera_matrix, ...) or "
            "fx, fy, cx, cy, width, height"
        ) from None
