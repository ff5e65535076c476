"""The mapping node as a real process (``python -m seqace_ros.ros.mapping_node``): it maps a real
bag, logs progress and exits 0 with the map and report written; bad input ends it with status 1,
one ``[ERROR]`` line and no map. Plus static checks of its launch file and parameters file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import cv2
import pytest
import yaml
from data_paths import require_redkitchen
from ros_harness import NodeProcess, import_ros_module, wait_for

import_ros_module("rclpy")

from seqace_ros.datasets.bag_writer import FramesBagConfig, write_frames_bag  # noqa: E402
from seqace_ros.datasets.base import PosedFrame  # noqa: E402
from seqace_ros.datasets.folder import FolderDataset  # noqa: E402
from seqace_ros.ros.mapping_node import MAP_WRITTEN_LOG, MAPPING_PARAMETER_SPECS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NODE = "seqace_ros.ros.mapping_node"
T0_NS = 1_700_000_000 * 1_000_000_000
TINY_TRAINING = {"preset": "test", "iterations": 21, "device": "cpu", "progress_period_s": 0.0}


@pytest.fixture(scope="module")
def odometry_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sqlite3 bag of eight dev frames (160x120, JPEG) with nav_msgs/Odometry on /odom."""
    dataset = FolderDataset(require_redkitchen())
    frames: list[PosedFrame] = []
    for k, index in enumerate(range(0, 48, 6)):
        frame = dataset[index]
        frames.append(dataclasses.replace(
            frame, image_rgb=cv2.resize(frame.image_rgb, (160, 120), interpolation=cv2.INTER_AREA),
            intrinsics=frame.intrinsics.resized(160, 120), stamp_ns=T0_NS + k * 200_000_000,
        ))
    path = tmp_path_factory.mktemp("bags") / "odometry"
    return write_frames_bag(path, frames, FramesBagConfig(
        storage="sqlite3", image_topic="/camera/image_raw/compressed", transport="jpeg",
        poses="odometry", pose_topic="/odom"))


def odometry_parameters(bag: Path, map_path: Path) -> dict[str, Any]:
    return {"bag_path": str(bag), "map_path": str(map_path),
            "image_topic": "/camera/image_raw/compressed", "camera_info_topic":
            "/camera/camera_info", "pose_source": "odometry", "pose_topic": "/odom",
            **TINY_TRAINING}


def run_to_exit(start_ros_process: Any, parameters: dict[str, Any], name: str,
                timeout_s: float) -> NodeProcess:
    process = start_ros_process(NODE, parameters, name=name)
    wait_for(lambda: not process.is_running(), timeout_s, f"{name} to exit", poll_s=0.2)
    return process


@pytest.mark.ros
@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize("sequence", [False, True])
def test_node_maps_the_bag_logs_progress_and_exits_0(
    tmp_path: Path, odometry_bag: Path, start_ros_process: Any, sequence: bool
) -> None:
    map_path = tmp_path / "maps" / "kitchen.safetensors"
    map_path.parent.mkdir()
    parameters = {**odometry_parameters(odometry_bag, map_path), "sequence": sequence}
    process = run_to_exit(start_ros_process, parameters, "mapping", timeout_s=900)
    log = process.log_text()
    assert process.returncode == 0, process.describe()
    for line in ("read: 8 of 8 images posed and selected", "encode 8/8", "train 21/21: loss",
                 f"{MAP_WRITTEN_LOG} {map_path}"):
        assert line in log, process.describe()
    assert "reading odometry" in log  # the bag pass's progress bar
    assert "[ERROR]" not in log
    assert sorted(p.name for p in map_path.parent.iterdir()) == [
        "kitchen.loss.png", "kitchen.report.json", "kitchen.safetensors",
        "kitchen.trajectory.png"]
    report = json.loads((map_path.parent / "kitchen.report.json").read_text())
    # The sequence loss needs tracked patches; without it none are linked.
    assert (report["training"]["tracked_patches"] > 0) is sequence


def assert_failed_cleanly(process: NodeProcess, match: str, out_dir: Path) -> None:
    assert process.returncode == 1, process.describe()
    errors = [line for line in process.log_text().splitlines() if "[ERROR]" in line]
    assert len(errors) == 1, process.describe()
    assert "mapping failed: " in errors[0]
    assert match in errors[0], errors[0]
    assert "Traceback" not in process.log_text()
    assert list(out_dir.iterdir()) == []


@pytest.mark.ros
@pytest.mark.real_data
def test_node_bad_input_exits_1_with_one_error_line(
    tmp_path: Path, odometry_bag: Path, start_ros_process: Any
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    map_path = out_dir / "m.safetensors"
    cases = {
        "missing_topic": ({"image_topic": "/color/image"},
                          "image topic /color/image is not in bag"),
        "missing_pose_topic": ({"pose_topic": "/vo"}, "pose topic /vo is not in bag"),
        "no_bag": ({"bag_path": str(tmp_path / "nothing")}, "does not exist"),
        "no_map_path": ({"map_path": ""}, "bag_path and map_path are required"),
        "unwritable": ({"map_path": str(tmp_path / "none" / "m.safetensors")},
                       "output folder"),
        "bad_preset": ({"preset": "fast"}, "unknown mapping preset 'fast'"),
    }
    processes = {
        name: start_ros_process(NODE, {**odometry_parameters(odometry_bag, map_path), **change},
                                name=name)
        for name, (change, _) in cases.items()
    }
    for name, process in processes.items():
        wait_for(lambda p=process: not p.is_running(), 300, f"{name} to exit", poll_s=0.2)
        assert_failed_cleanly(process, cases[name][1], out_dir)
    assert "[ERROR]" in processes["missing_topic"].log_text()
    assert "/camera/image_raw/compressed (sensor_msgs/msg/CompressedImage)" in (
        processes["missing_topic"].log_text())


@pytest.mark.ros
@pytest.mark.real_data
def test_node_truncated_bag(tmp_path: Path, odometry_bag: Path, start_ros_process: Any) -> None:
    cut = tmp_path / "cut"
    cut.mkdir()
    for file in odometry_bag.iterdir():
        data = file.read_bytes()
        (cut / file.name).write_bytes(data[:4096] if file.suffix == ".db3" else data)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    process = run_to_exit(start_ros_process,
                          odometry_parameters(cut, out_dir / "m.safetensors"), "cut", 300)
    assert_failed_cleanly(process, "cannot read bag", out_dir)


# --- static: launch file, parameters file, entry point ------------------------------------------


def test_parameters_file_declares_every_parameter_with_its_type() -> None:
    document = yaml.safe_load((ROOT / "config" / "mapping.yaml").read_text())
    values = document["/**"]["ros__parameters"]
    specs = {spec.name: spec for spec in MAPPING_PARAMETER_SPECS}
    assert set(values) == set(specs)
    for name, value in values.items():
        assert type(value) is type(specs[name].default), name
        assert value == specs[name].default, name  # the file documents the defaults
        assert specs[name].description
