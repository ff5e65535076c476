"""Image-message decoding, calibration files and undistortion used by the bag reader."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from seqace_ros.core.camera import Intrinsics
from seqace_ros.datasets.calibration import (
    CalibrationError,
    CameraCalibration,
    Undistorter,
    read_calibration_file,
)
from seqace_ros.datasets.image_decoding import (
    ImageDecodingError,
    decode_compressed_image,
    decode_raw_image,
)

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def padded(pixels: np.ndarray, pad: int) -> tuple[bytes, int]:
    rows = pixels.reshape(pixels.shape[0], -1)
    step = rows.shape[1] + pad
    out = np.zeros((rows.shape[0], step), dtype=np.uint8)
    out[:, : rows.shape[1]] = rows
    return out.tobytes(), step


@pytest.mark.parametrize(
    ("encoding", "pixels"),
    [
        ("rgb8", RGB),
        ("bgr8", RGB[:, :, ::-1]),
        ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)])),
        ("bgra8", np.dstack([RGB[:, :, ::-1], np.full(RGB.shape[:2], 9, np.uint8)])),
    ],
)
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_decode_bit_exact(encoding: str, pixels: np.ndarray, pad: int) -> None:
    data, step = padded(np.ascontiguousarray(pixels), pad)
    decoded = decode_raw_image(encoding, 5, 7, step, data)
    np.testing.assert_array_equal(decoded, RGB)


def test_mono_encodings() -> None:
    mono = RGB[:, :, 0]
    data, step = padded(mono, 1)
    decoded = decode_raw_image("mono8", 5, 7, step, data)
    np.testing.assert_array_equal(decoded, np.dstack([mono] * 3))
    mono16 = mono.astype(np.uint16) * 100  # max 25500 -> scaled to 255
    for bigendian in (False, True):
        raw = mono16.astype(">u2" if bigendian else "<u2").tobytes()
        decoded16 = decode_raw_image("mono16", 5, 7, 14, raw, is_bigendian=bigendian)
        expected = np.rint(mono16 * (255.0 / mono16.max())).astype(np.uint8)
        np.testing.assert_array_equal(decoded16[:, :, 1], expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("yuv422", 5, 7, 14, bytes(70)), "unsupported image encoding 'yuv422'"),
        (("rgb8", 5, 7, 20, bytes(100)), r"needs step >= 21 bytes, got 20"),
        (("rgb8", 5, 7, 21, bytes(104)), r"needs 105 bytes, got 104"),
        (("mono8", 0, 7, 7, b""), "must be positive"),
    ],
)
def test_inconsistent_raw_images_raise(args: tuple, message: str) -> None:
    with pytest.raises(ImageDecodingError, match=message):
        decode_raw_image(*args)


def test_compressed_png_is_exact_and_jpeg_close() -> None:
    smooth = cv2.resize(RGB, (64, 48), interpolation=cv2.INTER_CUBIC)
    bgr = cv2.cvtColor(smooth, cv2.COLOR_RGB2BGR)
    png = cv2.imencode(".png", bgr)[1].tobytes()
    np.testing.assert_array_equal(decode_compressed_image("png", png), smooth)
    jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    error = np.abs(decode_compressed_image("jpeg", jpeg).astype(int) - smooth.astype(int))
    assert error.mean() < 4.0
    with pytest.raises(ImageDecodingError, match="cannot decode compressed image"):
        decode_compressed_image("jpeg", b"not an image at all")
    with pytest.raises(ImageDecodingError, match="has no data"):
        decode_compressed_image("jpeg", b"")


def test_calibration_file_formats(tmp_path: Path) -> None:
    ros_yaml = tmp_path / "camera.yaml"
    ros_yaml.write_text(
        "image_width: 640\nimage_height: 480\ncamera_name: cam\n"
        "camera_matrix: {rows: 3, cols: 3, data: [520.5, 0, 321.0, 0, 519.0, 239.5, 0, 0, 1]}\n"
        "distortion_model: plumb_bob\n"
        "distortion_coefficients: {rows: 1, cols: 5, data: [0.1, -0.05, 0, 0, 0]}\n"
    )
    calibration = read_calibration_file(ros_yaml)
    assert calibration.intrinsics == Intrinsics(520.5, 519.0, 321.0, 239.5, 640, 480)
    assert calibration.distortion == (0.1, -0.05, 0.0, 0.0, 0.0)
    assert not calibration.is_pinhole
    flat = tmp_path / "flat.json"
    flat.write_text('{"fx": 525, "fy": 525, "cx": 320, "cy": 240, "width": 640, "height": 480}')
    assert read_calibration_file(flat).is_pinhole
    assert read_calibration_file(flat).intrinsics.K[0, 0] == 525.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("fx: 1\n", "missing or invalid field 'fy'"),
        ("- 1\n- 2\n", "must hold a mapping"),
        ("a: [1\n", "not valid YAML"),
        (
            "image_width: 64\nimage_height: 48\n"
            "camera_matrix: {data: [1, 0, 1, 0, 1, 1, 0, 0, 1]}\n"
            "distortion_model: kannala\ndistortion_coefficients: {data: [0.1, 0, 0, 0]}\n",
            "unsupported distortion model 'kannala'",
        ),
        (
            "image_width: 64\nimage_height: 48\n"
            "camera_matrix: {data: [0, 0, 1, 0, 1, 1, 0, 0, 1]}\n",
            "focal lengths must be positive",
        ),
    ],
)
def test_bad_calibration_files_raise(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=message):
        read_calibration_file(path)
    with pytest.raises(CalibrationError, match="does not exist"):
        read_calibration_file(tmp_path / "none.yaml")


def test_undistorter_maps_distorted_points_back_to_pinhole() -> None:
    intrinsics = Intrinsics(100.0, 100.0, 80.0, 60.0, 160, 120)
    D = np.array([-0.2, 0.05, 0.001, -0.001, 0.0])
    undistort = Undistorter(CameraCalibration(intrinsics, "plumb_bob", tuple(D)))
    # A white dot at the pinhole pixel (120, 90), rendered where the distorted camera sees it.
    ray = np.array([[[(120 - 80) / 100.0, (90 - 60) / 100.0, 1.0]]])
    distorted_uv = cv2.projectPoints(ray, np.zeros(3), np.zeros(3), intrinsics.K, D)[0].ravel()
    image = np.zeros((120, 160, 3), np.uint8)
    cv2.circle(image, tuple(round(float(v)) for v in distorted_uv), 2, (255, 255, 255), -1)
    out = undistort(image)
    v, u = np.unravel_index(np.argmax(out[:, :, 0].astype(float)), out.shape[:2])
    assert abs(u - 120) <= 1.5
    assert abs(v - 90) <= 1.5
    pinhole = Undistorter(CameraCalibration(intrinsics))
    assert pinhole(image) is image
    with pytest.raises(CalibrationError, match="image is 10x10"):
        pinhole(np.zeros((10, 10, 3), np.uint8))
