"""BagDataset bad input: each case raises BagError with one clear line. Small synthetic bags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import make_transform
from seqace_ros.datasets.bag import BagConfig, BagDataset, BagError
from seqace_ros.datasets.bag_poses import PoseSourceConfig
from seqace_ros.datasets.bag_writer import BagWriter, FramesBagConfig, write_frames_bag
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.datasets.trajectory import write_tum_trajectory

SECOND = 1_000_000_000
INTRINSICS = Intrinsics(20.0, 20.0, 8.0, 6.0, 16, 12)


def frames(n: int = 6) -> list[PosedFrame]:
    rng = np.random.default_rng(3)
    return [
        PosedFrame(
            rng.integers(0, 256, (12, 16, 3), dtype=np.uint8),
            INTRINSICS,
            make_transform(np.eye(3), [0.1 * i, 0.0, 0.0]),
            100 * SECOND + i * SECOND // 10,
            f"f{i}",
        )
        for i in range(n)
    ]


def config(**poses: object) -> BagConfig:
    return BagConfig(
        image_topic="/camera/image_raw",
        poses=PoseSourceConfig(**poses),  # type: ignore[arg-type]
        progress=False,
    )


def open_error(path: Path, bag_config: BagConfig) -> str:
    with pytest.raises(BagError) as caught:
        BagDataset(path, bag_config)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture
def tf_bag(tmp_path: Path) -> Path:
    return write_frames_bag(tmp_path / "tf", frames(), FramesBagConfig(poses="tf"))


def test_missing_bag(tmp_path: Path) -> None:
    assert "does not exist" in open_error(tmp_path / "nope", config())


def test_missing_image_topic_lists_topics(tf_bag: Path) -> None:
    bad = BagConfig(image_topic="/cam/image", progress=False)
    message = open_error(tf_bag, bad)
    assert "image topic /cam/image is not in bag" in message
    assert "/camera/image_raw (sensor_msgs/msg/Image)" in message
    assert "/tf (tf2_msgs/msg/TFMessage)" in message


def test_wrong_type_on_image_topic(tf_bag: Path) -> None:
    message = open_error(tf_bag, BagConfig(image_topic="/tf", progress=False))
    assert "has type tf2_msgs/msg/TFMessage; expected sensor_msgs/msg/Image or" in message


def test_missing_camera_info_and_pose_topics(tf_bag: Path) -> None:
    bad = BagConfig(image_topic="/camera/image_raw", camera_info_topic="/ci", progress=False)
    assert "camera info topic /ci is not in bag" in open_error(tf_bag, bad)
    message = open_error(tf_bag, config(source="odometry", topic="/odom"))
    assert "pose topic /odom is not in bag" in message


def test_tf_source_without_tf_topics(tmp_path: Path) -> None:
    path = write_frames_bag(tmp_path / "b", frames(), FramesBagConfig(poses="none"))
    assert "needs /tf or /tf_static, neither is in bag" in open_error(path, config())


def test_tf_chain_that_never_connects_names_groups(tmp_path: Path) -> None:
    path = tmp_path / "b"
    with BagWriter(path, "mcap") as writer:
        writer.write_transforms(0, [("base_link", "camera_optical", np.eye(4))], static=True)
        for frame in frames():
            writer.write_image(
                "/camera/image_raw", frame.stamp_ns, frame.image_rgb, "camera_optical"
            )
            writer.write_camera_info(
                "/camera/camera_info", frame.stamp_ns, INTRINSICS, "camera_optical"
            )
            writer.write_transforms(frame.stamp_ns, [("map", "odom", np.eye(4))])
    message = open_error(path, config())
    assert "never connects 'map' to camera frame 'camera_optical'" in message
    assert "{base_link, camera_optical}; {map, odom}" in message


def test_no_pose_overlapping_images(tmp_path: Path) -> None:
    path = write_frames_bag(tmp_path / "b", frames(), FramesBagConfig(poses="none"))
    later = frames()
    tum = write_tum_trajectory(
        tmp_path / "t.txt",
        np.array([f.stamp_ns + 50 * SECOND for f in later]),
        np.stack([f.T_world_cam for f in later]),
    )
    message = open_error(path, config(source="tum", tum_file=tum))
    assert "no pose within 0.1 s of any image" in message
    assert "images span 100.000..100.500 s" in message
    assert "map -> camera_optical spans 150.000..150.500 s" in message


@pytest.mark.parametrize("storage", ["mcap", "sqlite3", "ros1"])
def test_truncated_bags(tmp_path: Path, storage: str) -> None:
    name = "b.bag" if storage == "ros1" else "b"
    path = write_frames_bag(
        tmp_path / name,
        frames(40),
        FramesBagConfig(storage=storage, poses="tf"),  # type: ignore[arg-type]
    )
    data_file = (
        path if storage == "ros1" else next(p for p in path.iterdir() if p.suffix != ".yaml")
    )
    data = data_file.read_bytes()
    data_file.write_bytes(data[: len(data) // 2])
    message = open_error(path, config())
    assert "(truncated or corrupt?)" in message


def test_changing_camera_info(tmp_path: Path) -> None:
    path = tmp_path / "b"
    with BagWriter(path, "mcap") as writer:
        for i, frame in enumerate(frames()):
            intrinsics = INTRINSICS if i < 3 else Intrinsics(21.0, 21.0, 8.0, 6.0, 16, 12)
            writer.write_image("/camera/image_raw", frame.stamp_ns, frame.image_rgb, "cam")
            writer.write_camera_info("/camera/camera_info", frame.stamp_ns, intrinsics, "cam")
            writer.write_transforms(frame.stamp_ns, [("map", "cam", frame.T_world_cam)])
    assert "changes during bag" in open_error(path, config())


def test_image_size_differs_from_calibration(tmp_path: Path, tf_bag: Path) -> None:
    calibration = tmp_path / "c.yaml"
    calibration.write_text("fx: 20\nfy: 20\ncx: 16\ncy: 12\nwidth: 32\nheight: 24\n")
    bad = BagConfig(image_topic="/camera/image_raw", calibration_file=calibration, progress=False)
    assert "image is 16x12 but the calibration is for 32x24" in open_error(tf_bag, bad)


def test_odometry_with_several_child_frames(tmp_path: Path) -> None:
    path = tmp_path / "b"
    with BagWriter(path, "sqlite3") as writer:
        for i, frame in enumerate(frames()):
            writer.write_image("/camera/image_raw", frame.stamp_ns, frame.image_rgb, "cam")
            writer.write_camera_info("/camera/camera_info", frame.stamp_ns, INTRINSICS, "cam")
            child = "base_link" if i % 2 else "base_footprint"
            writer.write_odometry("/odom", frame.stamp_ns, "odom", child, frame.T_world_cam)
    message = open_error(path, config(source="odometry", topic="/odom"))
    assert "must name exactly one child_frame_id, got ['base_footprint', 'base_link']" in message


def test_writer_leaves_no_partial_bag(tmp_path: Path) -> None:
    path = tmp_path / "partial"
    bad = frames(3)
    bad[2] = PosedFrame(np.zeros((12, 16), np.uint8), INTRINSICS, None, 10**9, "grey")
    with pytest.raises(ValueError, match=r"image must be \(H, W, 3\) uint8"):
        write_frames_bag(path, bad, FramesBagConfig(storage="mcap"))
    assert not path.exists()


def test_implausible_distortion_is_a_bag_error(tf_bag: Path, tmp_path: Path) -> None:
    calibration = tmp_path / "camera.yaml"
    calibration.write_text(
        "image_width: 16\nimage_height: 12\n"
        "camera_matrix: {rows: 3, cols: 3, data: [20, 0, 8, 0, 20, 6, 0, 0, 1]}\n"
        "distortion_model: plumb_bob\n"
        "distortion_coefficients: {rows: 1, cols: 5, data: [50, 0, 0, 0, 0]}\n"
    )
    bad = BagConfig(image_topic="/camera/image_raw", calibration_file=calibration,
                    poses=PoseSourceConfig(), progress=False)
    message = open_error(tf_bag, bad)
    assert "implausible distortion plumb_bob [50.0, 0.0, 0.0, 0.0, 0.0]" in message
