"""Calibration from CameraInfo fields (ROI, binning) and from calibration files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seqace_ros.core.calibration import (
    CalibrationError,
    calibration_from_fields,
    read_calibration_file,
)
from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.errors import SeqaceError

SENSOR = Intrinsics(fx=525.0, fy=526.0, cx=319.5, cy=239.5, width=640, height=480)


def image_intrinsics(
    roi_xywh: tuple[int, int, int, int] = (0, 0, 0, 0), binning_xy: tuple[int, int] = (0, 0)
) -> Intrinsics:
    """Intrinsics of the images of ``SENSOR`` cropped to ``roi_xywh`` and binned."""
    fx, fy, cx, cy = SENSOR.as_tuple
    return calibration_from_fields(
        width=SENSOR.width,
        height=SENSOR.height,
        K_9=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
        distortion_model="plumb_bob",
        distortion=[0.0] * 5,
        origin="ci",
        roi_xywh=roi_xywh,
        binning_xy=binning_xy,
    ).intrinsics


def test_no_roi_and_binning_zero_or_one_keep_the_sensor() -> None:
    assert image_intrinsics() == SENSOR
    assert image_intrinsics(binning_xy=(1, 1)) == SENSOR


def test_binning_and_roi_rescale_intrinsics() -> None:
    binned = image_intrinsics(binning_xy=(2, 2))
    assert (binned.width, binned.height) == (320, 240)
    assert binned.fx == pytest.approx(262.5)
    assert binned.cx == pytest.approx((319.5 + 0.5) / 2 - 0.5)

    cropped = image_intrinsics(roi_xywh=(100, 40, 320, 240))
    assert (cropped.width, cropped.height) == (320, 240)
    assert (cropped.cx, cropped.cy, cropped.fx) == (219.5, 199.5, 525.0)

    both = image_intrinsics(roi_xywh=(100, 40, 320, 240), binning_xy=(2, 4))
    assert both == cropped.resized(160, 60)


@pytest.mark.parametrize(
    ("roi_xywh", "binning_xy", "message"),
    [
        (
            (400, 40, 320, 240),
            (0, 0),
            r"ci: roi 320x240\+400\+40 is empty or outside the 640x480 sensor",
        ),
        ((0, 0, 320, 0), (0, 0), "is empty or outside"),
        ((0, 0, 0, 0), (7, 0), "ci: binning 7x1 does not divide the 640x480 image"),
        ((0, 0, 320, 240), (1, 7), "binning 1x7 does not divide the 320x240 image"),
    ],
)
def test_bad_roi_or_binning_raises(
    roi_xywh: tuple[int, int, int, int], binning_xy: tuple[int, int], message: str
) -> None:
    with pytest.raises(CalibrationError, match=message):
        image_intrinsics(roi_xywh, binning_xy)


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


def _unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file whose read fails with EACCES (chmod 000 does not stop root, so the read is
    patched)."""
    path = tmp_path / "locked.yaml"
    path.write_text("fx: 1\n")
    real_read_text = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    return path


def _folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "camera.yaml").mkdir()
    return tmp_path / "camera.yaml"


def _binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "camera.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    return tmp_path / "camera.yaml"


def _latin1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "camera.yaml").write_bytes("camera_name: caméra\n".encode("latin-1"))
    return tmp_path / "camera.yaml"


def _text_focal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "camera.yaml").write_text("fx: wide\nfy: 1\ncx: 1\ncy: 1\nwidth: 8\nheight: 8\n")
    return tmp_path / "camera.yaml"


def _infinite_width(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "camera.yaml").write_text(
        "image_width: .inf\nimage_height: 48\ncamera_matrix: {data: [1, 0, 1, 0, 1, 1, 0, 0, 1]}\n")
    return tmp_path / "camera.yaml"


@pytest.mark.parametrize(("make", "reason"), [
    (_unreadable, "cannot be read: Permission denied"),
    (_folder, "is a folder, expected a YAML file"),
    (_binary, r"is not UTF-8 text \(byte 0: invalid start byte\)"),
    (_latin1, r"is not UTF-8 text \(byte 16: invalid continuation byte\)"),
    (_text_focal, "missing or invalid field could not convert string to float: 'wide'"),
    (_infinite_width, "missing or invalid field cannot convert float infinity to integer"),
])
def test_unreadable_calibration_files_raise_a_calibration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Any, reason: str
) -> None:
    """OS and decoding errors, and fields of the wrong type, become a CalibrationError (a
    SeqaceError, so every front end reports it in one line) naming the file and the reason."""
    path = make(tmp_path, monkeypatch)
    with pytest.raises(CalibrationError, match=reason) as raised:
        read_calibration_file(path)
    message = str(raised.value)
    assert message.startswith(f"calibration file {path}")
    assert "\n" not in message
    assert isinstance(raised.value, SeqaceError)
