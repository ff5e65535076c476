"""BagDataset on real bags written with rosbags from the shared redkitchen dev frames.

Four bag forms (issue 7): rosbag2 mcap with raw bgr8 images and a TF chain at other rates,
rosbag2 sqlite3 with JPEG images and Odometry, ROS 1 with raw images and PoseStamped, and an
image-only bag with a TUM file. The reader must recover the ground-truth poses, intrinsics
and images.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_paths import redkitchen_dir
from tf_chain_bag import FRAME_PERIOD_NS, T0_NS, T_BASE_CAM_ROWS, write_tf_chain_bag

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import (
    make_transform,
    orthonormalize,
    pose_error,
)
from seqace_ros.datasets.bag import BagConfig, BagDataset
from seqace_ros.datasets.bag_poses import PoseSourceConfig
from seqace_ros.datasets.bag_writer import FramesBagConfig, write_frames_bag
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.datasets.frame_selection import FrameSelectionConfig
from seqace_ros.datasets.trajectory import write_tum_trajectory

DATA_DIR = redkitchen_dir()
N_FRAMES = 30
STEP = 2  # every other dev frame: more motion between frames
WIDTH, HEIGHT = 160, 120
pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(not DATA_DIR.is_dir(), reason=f"dev data not found at {DATA_DIR}"),
]


@pytest.fixture(scope="module")
def dev_frames() -> list[PosedFrame]:
    return load_dev_frames()


def load_dev_frames() -> list[PosedFrame]:
    """Dev frames 0, 2, ..., 58, downscaled to 160x120, stamped at 30 Hz."""
    intrinsics = Intrinsics(525.0, 525.0, 320.0, 240.0, 640, 480).resized(WIDTH, HEIGHT)
    frames = []
    for i in range(N_FRAMES):
        stem = DATA_DIR / f"frame-{i * STEP:06d}"
        bgr = cv2.imread(str(stem.with_suffix(".color.jpg")))
        rgb = cv2.cvtColor(cv2.resize(bgr, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA), 4)
        T = np.loadtxt(stem.with_suffix(".pose.txt"))
        T_world_cam = make_transform(orthonormalize(T[:3, :3]), T[:3, 3])
        stamp = T0_NS + i * FRAME_PERIOD_NS
        frames.append(PosedFrame(rgb, intrinsics, T_world_cam, stamp, stem.name))
    return frames


def assert_poses_exact(dataset: BagDataset, frames: list[PosedFrame]) -> None:
    for frame, expected in zip(dataset, frames, strict=True):
        assert frame.stamp_ns == expected.stamp_ns
        meters, degrees = pose_error(frame.T_world_cam, expected.T_world_cam)
        assert meters < 1e-6, frame.name
        assert degrees < 1e-4, frame.name


def test_mcap_raw_images_with_tf_chain(tmp_path: Path, dev_frames: list[PosedFrame]) -> None:
    path = tmp_path / "tf_chain"
    write_tf_chain_bag(path, dev_frames, np.stack([f.T_world_cam for f in dev_frames]))
    config = BagConfig(image_topic="/camera/image_raw", progress=False)
    with BagDataset(path, config) as dataset:
        assert len(dataset) == N_FRAMES
        assert dataset.camera_frame == "camera_optical"
        assert dataset.calibration.intrinsics == dev_frames[0].intrinsics
        errors = []
        for frame, expected in zip(dataset, dev_frames, strict=True):
            np.testing.assert_array_equal(frame.image_rgb, expected.image_rgb)  # bit-exact
            assert frame.intrinsics == expected.intrinsics
            errors.append(pose_error(frame.T_world_cam, expected.T_world_cam))
        # TF samples come from the same continuous trajectory at other rates; the only error
        # is re-interpolating a piecewise trajectory across its knots (measured: max 3.4 mm /
        # 0.18 deg, median 0.3 mm / 0.03 deg; it shrinks with the TF rate: 0.5 mm at 450 Hz).
        max_m, max_deg = np.max(errors, axis=0)
        median_m, median_deg = np.median(errors, axis=0)
        assert max_m < 5e-3
        assert max_deg < 0.25
        assert median_m < 5e-4
        assert median_deg < 0.05
        # Random access returns the same frame as streaming.
        np.testing.assert_array_equal(dataset[7].image_rgb, dev_frames[7].image_rgb)
        np.testing.assert_allclose(dataset[-1].T_world_cam, list(dataset)[-1].T_world_cam)
        assert dataset.stats["used"] == N_FRAMES


def test_sqlite_jpeg_images_with_odometry(tmp_path: Path, dev_frames: list[PosedFrame]) -> None:
    path = tmp_path / "odometry"
    write_frames_bag(
        path,
        dev_frames,
        FramesBagConfig(
            storage="sqlite3",
            image_topic="/camera/image_raw/compressed",
            transport="jpeg",
            jpeg_quality=95,
            poses="odometry",
            pose_topic="/odom",
            body_frame="base_link",
            T_body_cam=T_BASE_CAM_ROWS,
        ),
    )
    poses = PoseSourceConfig(source="odometry", topic="/odom", max_gap_s=0.0)
    config = BagConfig(image_topic="/camera/image_raw/compressed", poses=poses, progress=False)
    with BagDataset(path, config) as dataset:
        assert dataset.stats["pose_source"] == "odometry"
        assert_poses_exact(dataset, dev_frames)
        assert dataset.calibration.intrinsics == dev_frames[0].intrinsics
        for frame, expected in zip(dataset, dev_frames, strict=True):
            error = np.abs(frame.image_rgb.astype(int) - expected.image_rgb.astype(int))
            assert error.mean() < 3.0, frame.name


def test_ros1_raw_images_with_pose_stamped(tmp_path: Path, dev_frames: list[PosedFrame]) -> None:
    path = tmp_path / "poses.bag"
    write_frames_bag(
        path,
        dev_frames,
        FramesBagConfig(storage="ros1", encoding="rgb8", poses="pose", pose_topic="/camera_pose"),
    )
    poses = PoseSourceConfig(source="pose", topic="/camera_pose")
    config = BagConfig(image_topic="/camera/image_raw", poses=poses, progress=False)
    with BagDataset(path, config) as dataset:
        assert_poses_exact(dataset, dev_frames)
        for frame, expected in zip(dataset, dev_frames, strict=True):
            np.testing.assert_array_equal(frame.image_rgb, expected.image_rgb)


def test_image_only_bag_with_tum_file(tmp_path: Path, dev_frames: list[PosedFrame]) -> None:
    path = tmp_path / "images_only"
    write_frames_bag(path, dev_frames, FramesBagConfig(storage="mcap", poses="none"))
    tum = write_tum_trajectory(
        tmp_path / "trajectory.txt",
        np.array([f.stamp_ns for f in dev_frames]),
        np.stack([f.T_world_cam for f in dev_frames]),
    )
    poses = PoseSourceConfig(source="tum", tum_file=tum, max_gap_s=0.0)
    config = BagConfig(image_topic="/camera/image_raw", poses=poses, progress=False)
    with BagDataset(path, config) as dataset:
        assert_poses_exact(dataset, dev_frames)


def test_calibration_file_overrides_camera_info(
    tmp_path: Path, dev_frames: list[PosedFrame]
) -> None:
    path = tmp_path / "bag"
    write_frames_bag(path, dev_frames[:5], FramesBagConfig())
    calibration = tmp_path / "camera.yaml"
    calibration.write_text("fx: 130.0\nfy: 131.0\ncx: 80.5\ncy: 59.5\nwidth: 160\nheight: 120\n")
    config = BagConfig(
        image_topic="/camera/image_raw", calibration_file=calibration, progress=False
    )
    with BagDataset(path, config) as dataset:
        assert dataset[0].intrinsics == Intrinsics(130.0, 131.0, 80.5, 59.5, 160, 120)


def test_selection_counts_no_pose_motion_and_cap(
    tmp_path: Path, dev_frames: list[PosedFrame]
) -> None:
    path = tmp_path / "images_only"
    write_frames_bag(path, dev_frames, FramesBagConfig(poses="none"))
    # Poses only for frames 5..29: frames 0..4 have no pose within the gap.
    tum = write_tum_trajectory(
        tmp_path / "t.txt",
        np.array([f.stamp_ns for f in dev_frames[5:]]),
        np.stack([f.T_world_cam for f in dev_frames[5:]]),
    )
    poses = PoseSourceConfig(source="tum", tum_file=tum, max_gap_s=0.01)
    selection = FrameSelectionConfig(min_translation_m=0.02, max_frames=8)
    config = BagConfig(
        image_topic="/camera/image_raw", poses=poses, selection=selection, progress=False
    )
    with BagDataset(path, config) as dataset:
        stats = dataset.stats
        assert stats["images_in_bag"] == N_FRAMES
        assert stats["skipped_no_pose"] == 5
        assert stats["skipped_min_motion"] > 0
        assert stats["used"] == len(dataset) <= 8
        assert (
            stats["used"]
            + stats["skipped_no_pose"]
            + stats["skipped_min_motion"]
            + stats["skipped_max_frames"]
            == N_FRAMES
        )
        stamps = [frame.stamp_ns for frame in dataset]
        assert stamps == sorted(stamps)
        assert stamps[0] == dev_frames[5].stamp_ns
        centres = [frame.T_world_cam[:3, 3] for frame in dataset]
        gaps = [np.linalg.norm(b - a) for a, b in itertools.pairwise(centres)]
        assert min(gaps) >= 0.02
