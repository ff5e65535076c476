"""``seqace bag-map`` (and the report of ``seqace map``): a real tiny run with progress and the
report files, and bad input ending in one ``seqace: error:`` line, status 2 and no map."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_paths import require_redkitchen

from seqace_ros.cli import main
from seqace_ros.core.keyframe_agreement import measure_depth_agreement
from seqace_ros.core.map_file import load_map
from seqace_ros.datasets.bag_writer import BagWriter, FramesBagConfig, write_frames_bag
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.datasets.trajectory import write_tum_trajectory
from seqace_ros.pipeline.localization.refinement import RefinementConfig

pytestmark = pytest.mark.real_data

T0_NS = 1_700_000_000 * 1_000_000_000
TINY_TRAINING = ["--preset", "test", "--iterations", "21", "--device", "cpu"]


@pytest.fixture(scope="module")
def frames() -> list[PosedFrame]:
    """Eight dev frames (every 6th), 160x120, stamped at 5 Hz."""
    dataset = FolderDataset(require_redkitchen())
    result = []
    for k, index in enumerate(range(0, 48, 6)):
        frame = dataset[index]
        result.append(dataclasses.replace(
            frame, image_rgb=cv2.resize(frame.image_rgb, (160, 120), interpolation=cv2.INTER_AREA),
            intrinsics=frame.intrinsics.resized(160, 120), stamp_ns=T0_NS + k * 200_000_000,
        ))
    return result


@pytest.fixture(scope="module")
def pose_bag(tmp_path_factory: pytest.TempPathFactory, frames: list[PosedFrame]) -> Path:
    """A ROS 1 bag with raw images and PoseStamped of the camera on /camera_pose."""
    path = tmp_path_factory.mktemp("bags") / "poses.bag"
    return write_frames_bag(path, frames, FramesBagConfig(
        storage="ros1", poses="pose", pose_topic="/camera_pose"))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.slow
def test_bag_map_writes_map_and_report_with_progress(
    tmp_path: Path, pose_bag: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kitchen.safetensors"
    status, stdout, stderr = run(
        ["bag-map", str(pose_bag), "--image-topic", "/camera/image_raw", "--pose-source", "pose",
         "--pose-topic", "/camera_pose", "--min-translation", "0.05", "--out", str(out),
         *TINY_TRAINING], capsys)
    assert status == 0, stderr
    assert f"map written to {out}" in stdout
    for stage in ("reading poses.bag", "encoding", "training"):  # tqdm progress on stderr
        assert stage in stderr
    report = json.loads((tmp_path / "kitchen.report.json").read_text())
    frames = report["frames"]
    assert frames["in_source"] == 8
    assert frames["skipped"]["below_min_motion"] > 0
    assert frames["used"] + sum(frames["skipped"].values()) == 8
    assert report["source"]["pose_source"] == "pose"
    assert report["source"]["pose_topic"] == "/camera_pose"
    assert report["source"]["min_translation_m"] == 0.05
    assert report["training"]["iterations"] == 21
    assert (tmp_path / "kitchen.trajectory.png").stat().st_size > 10_000
    assert (tmp_path / "kitchen.loss.png").stat().st_size > 10_000


@pytest.mark.slow
def test_folder_map_writes_the_report_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "folder.safetensors"
    status, stdout, stderr = run(["map", str(require_redkitchen()), "--frames", "0:6",
                                  "--out", str(out), "--quiet", *TINY_TRAINING], capsys)
    assert status == 0, stderr
    assert "report:" in stdout
    report = json.loads((tmp_path / "folder.report.json").read_text())
    assert report["source"]["kind"] == "folder"
    assert report["frames"] == {"in_source": 700, "used": 6,
                                "skipped": {"outside_frame_range": 694},
                                "withheld_for_self_check": 0}
    assert (tmp_path / "folder.trajectory.png").is_file()
    assert (tmp_path / "folder.loss.png").is_file()
    assert report["self_check"] is None  # 6 frames: none withheld (one in 10 is)
    assert report["training"]["depth_patches"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_bag_map_with_a_depth_topic_trains_an_rgbd_map(
    tmp_path: Path, frames: list[PosedFrame], capsys: pytest.CaptureFixture[str],
    encoding: str,
) -> None:
    """Depth at the full 640x480 of the depth camera (585 px, its own optical frame, 2.5 cm
    from the colour camera on /tf_static), colour at 160x120."""
    rgbd = FolderDataset(require_redkitchen(), depth=True)
    with_depth = [dataclasses.replace(frame, depth=rgbd[6 * k].depth)
                  for k, frame in enumerate(frames)]
    bag = write_frames_bag(tmp_path / "rgbd.mcap", with_depth, FramesBagConfig(
        depth_topic="/camera/depth/image_raw", depth_encoding=encoding,
        depth_offset_ns=5_000_000))
    out = tmp_path / "rgbd.safetensors"
    status, _, stderr = run(bag_map_argv(bag, out, "--depth-topic",
                                         "/camera/depth/image_raw"), capsys)
    assert status == 0, stderr
    report = json.loads((tmp_path / "rgbd.report.json").read_text())
    assert report["mapping_config"]["depth"] is True
    assert report["source"]["depth_topic"] == "/camera/depth/image_raw"
    assert report["frames"]["skipped"]["no_depth_within_max_offset"] == 0
    assert np.allclose(report["source"]["T_colour_depth"], rgbd.T_colour_depth)
    assert report["map"]["keyframes"] > 0
    assert report["map"]["keyframe_points"] == "sensor_depth"
    assert report["map"]["keyframe_depth_limit_m"] == measure_depth_agreement(
        load_map(out).keyframes).depth_limit(RefinementConfig().max_point_disagreement_m)
    # The wider colour camera sees past the depth camera's image (about a quarter of the colour
    # image has no depth at all), depth has holes, and at 160x120 a patch's depth
    # neighbourhood spans depth edges more often: a bit over 40 % of the patches get depth here
    # (about 70 % of the patch centres of the full-size frames).
    assert report["training"]["depth_patches"] > 0.3 * report["training"]["buffer_patches"]


def expect_error(argv: list[str], capsys: pytest.CaptureFixture[str], out_dir: Path,
                 match: str) -> str:
    before = set(out_dir.iterdir()) if out_dir.is_dir() else set()
    status, stdout, stderr = run(argv, capsys)
    assert status == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("seqace: error: ")
    assert match in lines[0]
    after = set(out_dir.iterdir()) if out_dir.is_dir() else set()
    assert after == before, f"left behind: {sorted(after - before)}"
    return lines[0]


def bag_map_argv(bag: Path, out: Path, *extra: str) -> list[str]:
    return ["bag-map", str(bag), "--out", str(out), "--quiet", *TINY_TRAINING, *extra]


def test_missing_topic_lists_the_topics(
    tmp_path: Path, pose_bag: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = expect_error(bag_map_argv(pose_bag, tmp_path / "m.safetensors", "--image-topic",
                                     "/color/image", "--pose-source", "pose", "--pose-topic",
                                     "/camera_pose"),
                        capsys, tmp_path, "image topic /color/image is not in bag")
    assert "/camera/image_raw (sensor_msgs/msg/Image)" in line
    assert "/camera_pose (geometry_msgs/msg/PoseStamped)" in line
    expect_error(bag_map_argv(pose_bag, tmp_path / "m.safetensors", "--image-topic",
                              "/camera/image_raw", "--pose-source", "pose", "--pose-topic",
                              "/odom"),
                 capsys, tmp_path, "pose topic /odom is not in bag")


def test_no_pose_overlapping_the_images(
    tmp_path: Path, frames: list[PosedFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    bag = write_frames_bag(tmp_path / "images", frames, FramesBagConfig(poses="none"))
    tum = write_tum_trajectory(tmp_path / "early.txt",
                               np.array([f.stamp_ns - 600 * 10**9 for f in frames]),
                               np.stack([f.T_world_cam for f in frames]))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    expect_error(bag_map_argv(bag, out_dir / "m.safetensors", "--image-topic",
                              "/camera/image_raw", "--pose-source", "tum", "--tum-file",
                              str(tum), "--max-gap", "0.05"),
                 capsys, out_dir, "no pose within 0.05 s of any image")


def test_tf_chain_that_never_connects(
    tmp_path: Path, frames: list[PosedFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    bag = tmp_path / "tf"
    with BagWriter(bag, "mcap") as writer:
        for frame in frames:
            writer.write_image("/cam/image_raw", frame.stamp_ns, frame.image_rgb, "cam_optical")
            writer.write_camera_info("/cam/camera_info", frame.stamp_ns, frame.intrinsics,
                                     "cam_optical")
            writer.write_transforms(frame.stamp_ns, [("map", "odom", np.eye(4))])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    expect_error(bag_map_argv(bag, out_dir / "m.safetensors", "--image-topic", "/cam/image_raw"),
                 capsys, out_dir, "never connects 'map' to camera frame 'cam_optical'")


def test_truncated_bag(
    tmp_path: Path, frames: list[PosedFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    bag = write_frames_bag(tmp_path / "cut", frames, FramesBagConfig(storage="sqlite3"))
    database = next(bag.glob("*.db3"))
    database.write_bytes(database.read_bytes()[:4096])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    expect_error(bag_map_argv(bag, out_dir / "m.safetensors", "--image-topic",
                              "/camera/image_raw"),
                 capsys, out_dir, "cannot read bag")


def test_unwritable_output(
    tmp_path: Path, pose_bag: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topics = ["--image-topic", "/camera/image_raw", "--pose-source", "pose", "--pose-topic",
              "/camera_pose"]
    expect_error(bag_map_argv(pose_bag, tmp_path / "no" / "m.safetensors", *topics), capsys,
                 tmp_path, "output folder")
    (tmp_path / "file").write_text("")
    expect_error(bag_map_argv(pose_bag, tmp_path / "file" / "m.safetensors", *topics), capsys,
                 tmp_path, "is not a folder")
    expect_error(bag_map_argv(pose_bag, tmp_path, *topics), capsys, tmp_path,
                 "is a folder, expected a file path")


def test_inconsistent_options(
    tmp_path: Path, pose_bag: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.safetensors"
    expect_error(bag_map_argv(pose_bag, out, "--image-topic", "/camera/image_raw",
                              "--pose-source", "odometry"),
                 capsys, tmp_path, "pose source 'odometry' needs a topic")
    expect_error(bag_map_argv(pose_bag, out, "--image-topic", "/camera/image_raw",
                              "--max-frames", "0"),
                 capsys, tmp_path, "max_frames must be >= 1")
    expect_error(bag_map_argv(pose_bag, out, "--image-topic", "/camera/image_raw",
                              "--min-rotation", "-1"),
                 capsys, tmp_path, "must be >= 0")

