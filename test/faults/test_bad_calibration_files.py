"""A calibration file that cannot be used (a folder, a binary file, an unreadable file, a field
of the wrong type) given to ``seqace bag-map --calibration`` or to mapping_node's
``calibration_file``: one ``seqace: error:`` line (exit 2) or one ``[ERROR]`` line (exit 1)
naming the file and the reason, no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ros_harness import import_ros_module, wait_for
from two_frame_scene import write_two_frame_scene

from seqace_ros.cli import main

FAST_MAPPING = ("--preset", "test", "--iterations", "5", "--quiet")
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_frame_scene(tmp_path_factory.mktemp("inputs"), focal_file=False)[1]


def _locked(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``path`` exists, but reading it fails with EACCES (chmod does not stop root)."""
    path.write_text("fx: 50\n")
    real_read_text = Path.read_text

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)


CASES = {
    "folder": (lambda path, _: path.mkdir(), "is a folder, expected a YAML file"),
    "binary": (lambda path, _: path.write_bytes(BINARY), "is not UTF-8 text"),
    "unreadable": (_locked, "cannot be read: Permission denied"),
    "text focal": (lambda path, _: path.write_text(
        "fx: wide\nfy: 50\ncx: 32\ncy: 24\nwidth: 64\nheight: 48\n"),
        "missing or invalid field could not convert string to float: 'wide'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bag_map_reports_a_bad_calibration_file_in_one_line(
    tmp_path: Path, bag: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], case: str,
) -> None:
    make, reason = CASES[case]
    calibration = tmp_path / "camera.yaml"
    make(calibration, monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    status = main(["bag-map", str(bag), "--out", str(out / "m.map"), "--calibration",
                   str(calibration), *FAST_MAPPING])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert status == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("seqace: error: ")
    assert f"calibration file {calibration}" in lines[0]
    assert reason in lines[0]
    assert list(out.iterdir()) == []


@pytest.mark.ros
def test_mapping_node_logs_a_binary_calibration_file_in_one_error_line(
    tmp_path: Path, bag: Path, start_ros_process: Any
) -> None:
    import_ros_module("rclpy")
    calibration = tmp_path / "camera.yaml"
    calibration.write_bytes(BINARY)
    out = tmp_path / "out"
    out.mkdir()
    node = start_ros_process("seqace_ros.ros.mapping_node", {
        "bag_path": str(bag), "map_path": str(out / "m.safetensors"),
        "calibration_file": str(calibration), "preset": "test", "iterations": 5,
    }, name="mapping")
    wait_for(lambda: not node.is_running(), 120, "mapping_node to exit", poll_s=0.2)
    errors = [line for line in node.log_text().splitlines() if "[ERROR]" in line]
    assert node.returncode == 1, node.describe()
    assert len(errors) == 1, node.describe()
    assert f"mapping failed: bag {bag}: calibration file {calibration} is not UTF-8 text" \
        in errors[0]
    assert "Traceback" not in node.log_text()
    assert list(out.iterdir()) == []
