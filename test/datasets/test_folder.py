"""Folder datasets: 7-Scenes and ACE layouts, intrinsics sources, orthonormalised poses, errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from data_paths import require_redkitchen

from seqace_ros.core.geometry import is_rigid_transform
from seqace_ros.datasets.base import parse_frame_range
from seqace_ros.datasets.folder import KINECT_V1_T_COLOUR_DEPTH, DatasetError, FolderDataset

POSE = np.array([[0.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 1.0, 3.0],
                 [0.0, 0.0, 0.0, 1.0]])


def write_image(path: Path, width: int = 64, height: int = 48) -> None:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[..., 2] = 255  # red in RGB (cv2 writes BGR)
    cv2.imwrite(str(path), image)


def seven_scenes_folder(root: Path, n: int = 3, intrinsics: bool = True) -> Path:
    root.mkdir()
    for i in range(n):
        write_image(root / f"frame-{i:06d}.color.png")
        T = POSE.copy()
        T[:3, :3] *= 0.9999  # slightly off, like 7-Scenes
        T[0, 3] += i
        np.savetxt(root / f"frame-{i:06d}.pose.txt", T)
    if intrinsics:
        (root / "camera-intrinsics.txt").write_text("50 0 32\n0 51 24\n0 0 1\n")
    return root


def test_seven_scenes_layout(tmp_path: Path) -> None:
    dataset = FolderDataset(seven_scenes_folder(tmp_path / "d"))
    assert dataset.layout == "7scenes"
    assert len(dataset) == 3
    frame = dataset[2]
    assert frame.name == "frame-000002"
    assert frame.image_rgb.shape == (48, 64, 3)
    assert frame.image_rgb[0, 0].tolist() == [255, 0, 0]  # RGB order
    assert frame.intrinsics.as_tuple == (50.0, 51.0, 32.0, 24.0)
    assert (frame.intrinsics.width, frame.intrinsics.height) == (64, 48)
    assert frame.T_world_cam is not None
    assert is_rigid_transform(frame.T_world_cam)  # orthonormalised
    np.testing.assert_allclose(frame.T_world_cam[:3, 3], [3.0, 2.0, 3.0])
    assert frame.stamp_ns == 2
    assert [f.name for f in dataset] == ["frame-000000", "frame-000001", "frame-000002"]


def test_color_intrinsics_take_precedence(tmp_path: Path) -> None:
    root = seven_scenes_folder(tmp_path / "d")
    (root / "color-intrinsics.txt").write_text("40 0 30\n0 40 20\n0 0 1\n")
    assert FolderDataset(root)[0].intrinsics.fx == 40.0


def test_intrinsics_from_arguments(tmp_path: Path) -> None:
    root = seven_scenes_folder(tmp_path / "d", intrinsics=False)
    with pytest.raises(DatasetError, match="no intrinsics"):
        FolderDataset(root)
    assert FolderDataset(root, pinhole=(60.0, 61.0, 30.0, 20.0))[0].intrinsics.as_tuple == (
        60.0, 61.0, 30.0, 20.0)
    assert FolderDataset(root, focal=70.0)[0].intrinsics.as_tuple == (70.0, 70.0, 32.0, 24.0)


def test_ace_layout_with_focal_and_matrix_calibration(tmp_path: Path) -> None:
    root = tmp_path / "ace"
    for sub in ("rgb", "poses", "calibration"):
        (root / sub).mkdir(parents=True)
    for i, calibration in enumerate(["525.0\n", "500 0 30\n0 501 20\n0 0 1\n"]):
        write_image(root / "rgb" / f"seq1-{i}.jpg")
        np.savetxt(root / "poses" / f"seq1-{i}.txt", POSE)
        (root / "calibration" / f"seq1-{i}.txt").write_text(calibration)
    dataset = FolderDataset(root)
    assert dataset.layout == "ace"
    assert dataset[0].intrinsics.as_tuple == (525.0, 525.0, 32.0, 24.0)
    assert dataset[1].intrinsics.as_tuple == (500.0, 501.0, 30.0, 20.0)
    np.testing.assert_allclose(dataset[1].T_world_cam, POSE)


def test_missing_pose(tmp_path: Path) -> None:
    root = seven_scenes_folder(tmp_path / "d")
    (root / "frame-000001.pose.txt").unlink()
    with pytest.raises(DatasetError, match=r"frame-000001.*missing"):
        FolderDataset(root)
    dataset = FolderDataset(root, require_poses=False)
    assert dataset[1].T_world_cam is None
    assert dataset[0].T_world_cam is not None


@pytest.mark.parametrize(
    ("content", "match"),
    [("1 2 3", "16 numbers"), ("a b c", "cannot read"),
     ("1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 2", "last row"),
     ("1 0 0 nan 0 1 0 0 0 0 1 0 0 0 0 1", "non-finite")],
)
def test_bad_pose_files(tmp_path: Path, content: str, match: str) -> None:
    root = seven_scenes_folder(tmp_path / "d")
    (root / "frame-000000.pose.txt").write_text(content)
    with pytest.raises(DatasetError, match=match):
        FolderDataset(root)[0]


def test_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        FolderDataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no frames"):
        FolderDataset(tmp_path / "empty")
    root = seven_scenes_folder(tmp_path / "d")
    (root / "frame-000000.color.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="cannot decode"):
        FolderDataset(root)[0]
    with pytest.raises(IndexError):
        FolderDataset(root)[3]


def test_frame_ranges() -> None:
    assert list(parse_frame_range("2:5", 10)) == [2, 3, 4]
    assert list(parse_frame_range(":", 3)) == [0, 1, 2]
    assert list(parse_frame_range("0:2,7:", 10)) == [0, 1, 7, 8, 9]
    for bad in ("5", "a:b", "5:2", "0:11", "0:2,", "0:5,4:6"):
        with pytest.raises(ValueError, match="frame range"):
            parse_frame_range(bad, 10)


@pytest.mark.real_data
def test_redkitchen_dev() -> None:
    dataset = FolderDataset(require_redkitchen())
    assert len(dataset) == 700
    frame = dataset[500]
    assert frame.image_rgb.shape == (480, 640, 3)
    assert frame.intrinsics.as_tuple == (525.0, 525.0, 320.0, 240.0)  # colour, not depth
    assert frame.T_world_cam is not None
    assert is_rigid_transform(frame.T_world_cam)


def test_depth_is_read_with_its_own_calibration_when_asked(tmp_path: Path) -> None:
    root = seven_scenes_folder(tmp_path / "d")
    for i in range(3):
        cv2.imwrite(str(root / f"frame-{i:06d}.depth.png"), np.full((24, 32), 1500, np.uint16))
    assert FolderDataset(root)[0].depth is None  # RGB unless asked
    frame = FolderDataset(root, depth=True)[1]
    assert frame.depth is not None
    assert frame.depth.depth_m.shape == (24, 32)
    assert frame.depth.depth_m[0, 0] == pytest.approx(1.5)
    # no depth-intrinsics.txt: registered to the colour camera (same camera, half size)
    assert frame.depth.calibration.depth_intrinsics == frame.intrinsics.resized(32, 24)
    np.testing.assert_array_equal(frame.depth.calibration.T_colour_depth, np.eye(4))
    # its own intrinsics: the Kinect v1 extrinsic, unless one is given
    (root / "depth-intrinsics.txt").write_text("30 0 16\n0 30 12\n0 0 1\n")
    calibration = FolderDataset(root, depth=True)[0].depth.calibration
    assert calibration.depth_intrinsics.as_tuple == (30.0, 30.0, 16.0, 12.0)
    np.testing.assert_array_equal(calibration.T_colour_depth, KINECT_V1_T_COLOUR_DEPTH)
    T_colour_depth = np.eye(4)
    T_colour_depth[1, 3] = 0.01
    calibration = FolderDataset(root, depth=True, T_colour_depth=T_colour_depth)[0].depth
    np.testing.assert_array_equal(calibration.calibration.T_colour_depth, T_colour_depth)


def test_depth_files_missing_or_malformed_are_named(tmp_path: Path) -> None:
    root = seven_scenes_folder(tmp_path / "d")
    cv2.imwrite(str(root / "frame-000000.depth.png"), np.full((24, 32), 1500, np.uint16))
    with pytest.raises(DatasetError, match=r"2 frames have no depth image \(first: frame-000001"):
        FolderDataset(root, depth=True)
    FolderDataset(root)  # RGB mapping does not need them
    for i in (1, 2):
        cv2.imwrite(str(root / f"frame-{i:06d}.depth.png"), np.zeros((24, 32), np.uint8))
    with pytest.raises(DatasetError, match="uint16"):
        FolderDataset(root, depth=True)[1]


def test_ace_layout_depth_folder(tmp_path: Path) -> None:
    root = tmp_path / "ace"
    for sub in ("rgb", "poses", "calibration", "depth"):
        (root / sub).mkdir(parents=True)
    write_image(root / "rgb" / "a.png")
    np.savetxt(root / "poses" / "a.txt", POSE)
    (root / "calibration" / "a.txt").write_text("50\n")
    cv2.imwrite(str(root / "depth" / "a.depth.png"), np.full((48, 64), 800, np.uint16))
    frame = FolderDataset(root, depth=True)[0]
    assert frame.depth is not None
    assert frame.depth.calibration.is_registered_to(frame.intrinsics)
    assert frame.depth.registered_to(frame.intrinsics)[10, 10] == pytest.approx(0.8)
