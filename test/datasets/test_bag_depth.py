"""RGB-D bags: depth images (16UC1 and 32FC1) in their own optical frame, paired with the
colour images by stamp, with their own CameraInfo and a TF extrinsic; written with rosbags."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.depth import DepthCalibration, DepthImage
from seqace_ros.core.geometry import make_transform
from seqace_ros.datasets.bag import BagConfig, BagDataset, BagError
from seqace_ros.datasets.bag_writer import BagWriter, FramesBagConfig, write_frames_bag
from seqace_ros.datasets.base import PosedFrame

COLOUR = Intrinsics(70.0, 70.0, 40.0, 30.0, 80, 60)
DEPTH = Intrinsics(40.0, 40.0, 20.0, 15.0, 40, 30)
T_COLOUR_DEPTH = make_transform(np.eye(3), [-0.025, 0.002, 0.0])
PERIOD_NS = 33_333_333
T0_NS = 1_700_000_000_000_000_000


def rgbd_frames(n: int = 4) -> list[PosedFrame]:
    """Posed frames with noise images and a depth plane (1.5 m) holding a nearer box (1 m)."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        depth_m = np.full((DEPTH.height, DEPTH.width), 1.5, np.float32)
        depth_m[10:20, 15:25] = 1.0
        depth_m[0, :] = 0.0  # invalid row
        depth = DepthImage(depth_m, DepthCalibration(DEPTH, T_COLOUR_DEPTH))
        T_world_cam = make_transform(np.eye(3), [0.05 * i, 0.0, 0.0])
        image = rng.integers(0, 255, (COLOUR.height, COLOUR.width, 3), dtype=np.uint8)
        frames.append(PosedFrame(image, COLOUR, T_world_cam, T0_NS + i * PERIOD_NS, f"f{i}",
                                 depth))
    return frames


DEPTH_BAG = FramesBagConfig(depth_topic="/camera/depth/image_rect_raw",
                            depth_camera_info_topic="/camera/depth/camera_info",
                            depth_offset_ns=4_000_000)
READ_DEPTH = BagConfig(image_topic="/camera/image_raw", progress=False,
                       depth_topic="/camera/depth/image_rect_raw")


@pytest.mark.parametrize(("storage", "encoding"),
                         [("mcap", "16UC1"), ("mcap", "32FC1"), ("ros1", "16UC1")])
def test_depth_is_paired_calibrated_and_registered_like_the_source(
    tmp_path: Path, storage: str, encoding: str,
) -> None:
    frames = rgbd_frames()
    path = write_frames_bag(tmp_path / ("rgbd.bag" if storage == "ros1" else "rgbd.mcap"),
                            frames, replace(DEPTH_BAG, storage=storage, depth_encoding=encoding))
    with BagDataset(path, READ_DEPTH) as dataset:
        assert len(dataset) == len(frames)
        assert dataset.stats["skipped_no_depth"] == 0
        calibration = dataset.depth_calibration
        assert calibration is not None
        assert calibration.depth_intrinsics == DEPTH
        np.testing.assert_allclose(calibration.T_colour_depth, T_COLOUR_DEPTH, atol=1e-12)
        for source, frame in zip(frames, dataset, strict=True):  # streamed
            assert frame.depth is not None
            np.testing.assert_allclose(frame.depth.depth_m, source.depth.depth_m, atol=5e-4)
            np.testing.assert_allclose(frame.depth.registered_to(frame.intrinsics),
                                       source.depth.registered_to(source.intrinsics), atol=5e-4)
        assert dataset[2].depth is not None  # random access reads its depth image too
        np.testing.assert_allclose(dataset[2].depth.depth_m, frames[2].depth.depth_m, atol=5e-4)


def test_images_without_a_depth_image_close_in_time_are_skipped_and_counted(
    tmp_path: Path,
) -> None:
    frames = rgbd_frames()
    path = write_frames_bag(tmp_path / "late.mcap", frames, DEPTH_BAG)  # depth 4 ms late
    with pytest.raises(BagError, match=r"no image on /camera/image_raw has a depth image on "
                                       r"/camera/depth/image_rect_raw within 0.003 s"):
        BagDataset(path, replace(READ_DEPTH, depth_max_offset_s=0.003))
    with BagDataset(path, replace(READ_DEPTH, depth_max_offset_s=0.005)) as dataset:
        assert len(dataset) == len(frames)
    identity = tuple(map(tuple, np.eye(4)))
    half = write_manual_bag(tmp_path / "half.mcap", frames, depth_frames=2)
    with BagDataset(half, replace(READ_DEPTH, T_colour_depth=identity)) as dataset:
        assert len(dataset) == 2
        assert dataset.stats["skipped_no_depth"] == 2
        assert [f.name for f in dataset] == [f"/camera/image_raw@{f.stamp_ns}" for f in frames[:2]]
    with BagDataset(half, replace(READ_DEPTH, depth_topic=None)) as dataset:  # RGB: all four
        assert len(dataset) == 4
        assert dataset.depth_calibration is None
        assert dataset[0].depth is None


def test_an_explicit_extrinsic_overrides_tf(tmp_path: Path) -> None:
    path = write_frames_bag(tmp_path / "rgbd.mcap", rgbd_frames(), DEPTH_BAG)
    T = make_transform(np.eye(3), [0.1, 0.0, 0.0])
    config = replace(READ_DEPTH, T_colour_depth=tuple(map(tuple, T)))
    with BagDataset(path, config) as dataset:
        np.testing.assert_array_equal(dataset.depth_calibration.T_colour_depth, T)


def test_depth_errors_name_what_is_missing(tmp_path: Path) -> None:
    frames = rgbd_frames()
    rgb_only = write_frames_bag(tmp_path / "rgb.mcap", frames, FramesBagConfig())
    with pytest.raises(BagError, match=r"depth image topic /camera/depth/image_rect_raw is not "
                                       r"in bag .*topics: .*/camera/image_raw"):
        BagDataset(rgb_only, READ_DEPTH)
    with pytest.raises(BagError, match=r"no transform from depth frame 'camera_depth_optical' "
                                       r"to camera frame 'camera_optical'.*/tf_static"):
        BagDataset(write_manual_bag(tmp_path / "no_tf.mcap", frames), READ_DEPTH)
    with pytest.raises(BagError, match=r"depth image at .* unsupported depth encoding 'bgr8'"):
        BagDataset(write_manual_bag(tmp_path / "colour.mcap", frames, colour_as_depth=True),
                   replace(READ_DEPTH, T_colour_depth=tuple(map(tuple, np.eye(4)))))


def write_manual_bag(
    path: Path, frames: list[PosedFrame], colour_as_depth: bool = False,
    depth_frames: int | None = None,
) -> Path:
    """Images, poses on /tf, and depth (for the first ``depth_frames`` images, default all) in
    its own frame with no TF to the colour camera."""
    with BagWriter(path) as writer:
        for index, frame in enumerate(frames):
            stamp = frame.stamp_ns
            writer.write_image("/camera/image_raw", stamp, frame.image_rgb, "camera_optical")
            writer.write_camera_info("/camera/camera_info", stamp, COLOUR, "camera_optical")
            writer.write_transforms(stamp, [("map", "camera_optical", frame.T_world_cam)])
            if depth_frames is not None and index >= depth_frames:
                continue
            if colour_as_depth:
                writer.write_image("/camera/depth/image_rect_raw", stamp,
                                   np.zeros((DEPTH.height, DEPTH.width, 3), np.uint8),
                                   "camera_depth_optical")
            else:
                writer.write_depth_image("/camera/depth/image_rect_raw", stamp,
                                         frame.depth.depth_m, "camera_depth_optical")
            writer.write_camera_info("/camera/depth/camera_info", stamp, DEPTH,
                                     "camera_depth_optical")
    return path
