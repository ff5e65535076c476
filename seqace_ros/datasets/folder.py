"""Posed image folders: the 7-Scenes frame layout and ACE's dataset layout.

7-Scenes layout (one folder)::

    frame-000000.color.png|jpg   RGB image
    frame-000000.pose.txt        4x4 camera-to-world, metres, OpenCV axes
    frame-000000.depth.png       16-bit depth in millimetres, 0 = invalid (read with depth)
    color-intrinsics.txt         3x3 K (else camera-intrinsics.txt, else given intrinsics)
    depth-intrinsics.txt         3x3 K of the depth camera (absent: depth is registered to
                                 the colour image)

ACE layout (one folder with three sub-folders, matched by file stem)::

    rgb/<stem>.png|jpg
    poses/<stem>.txt             4x4 camera-to-world
    calibration/<stem>.txt       a single focal length (principal point at the image centre)
                                 or a 3x3 K
    depth/<stem>.png             16-bit depth in millimetres registered to the colour image
                                 (read with depth; ``<stem>.depth.png`` also accepted)

Pose rotations are orthonormalised (SVD) on loading. Depth is read only when asked for; it
comes with its calibration (:class:`~seqace_ros.core.depth.DepthCalibration`): the depth
intrinsics and the depth-to-colour extrinsic ``T_colour_depth``, given by the caller, or for
a 7-Scenes folder with its own ``depth-intrinsics.txt`` the Kinect v1 layout
(:data:`KINECT_V1_T_COLOUR_DEPTH`), else the identity.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.depth import DepthCalibration, DepthError, DepthImage, read_depth_m
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import make_transform, orthonormalize
from seqace_ros.datasets.base import PosedFrame

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_SEVEN_SCENES_COLOR = re.compile(r"^(frame-\d+)\.color\.(png|jpg|jpeg)$", re.IGNORECASE)

#: Depth-to-colour extrinsic of a 7-Scenes folder whose depth has its own intrinsics
#: (Kinect v1: the colour camera 2.5 cm beside the depth camera on its x axis), chosen with
#: ``bench/depth_registration.py`` (results in bench/results/depth_registration.json).
KINECT_V1_T_COLOUR_DEPTH = make_transform(np.eye(3), [-0.025, 0.0, 0.0])


class DatasetError(SeqaceError, ValueError):
    """A dataset folder that cannot be read: missing, empty, malformed files."""


@dataclass(frozen=True)
class _FrameFiles:
    name: str
    image: Path
    pose: Path | None
    calibration: Path | None
    depth: Path | None = None


def _read_numbers(path: Path, what: str) -> NDArray[np.float64]:
    try:
        values = np.array(path.read_text().split(), dtype=np.float64)
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path}: cannot read {what} ({error})") from error
    return values


def read_pose_file(path: Path) -> NDArray[np.float64]:
    """A 4x4 camera-to-world pose from a text file of 16 numbers, rotation orthonormalised.

    Raises:
        DatasetError: when the file does not hold 16 finite numbers with last row 0 0 0 1.
    """
    values = _read_numbers(path, "pose")
    if values.size != 16:
        raise DatasetError(f"{path}: a pose needs 16 numbers (4x4), found {values.size}")
    T = values.reshape(4, 4)
    if not np.all(np.isfinite(T)):
        raise DatasetError(f"{path}: pose has non-finite values")
    if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise DatasetError(f"{path}: pose last row must be 0 0 0 1, got {T[3].tolist()}")
    return make_transform(orthonormalize(T[:3, :3]), T[:3, 3])


def read_calibration(path: Path, width: int, height: int) -> Intrinsics:
    """Intrinsics from a file holding a 3x3 K or a single focal length (centred principal point).

    Raises:
        DatasetError: for any other content.
    """
    values = _read_numbers(path, "calibration")
    if values.size == 1:
        return Intrinsics(float(values[0]), float(values[0]), width / 2.0, height / 2.0, width,
                          height)
    if values.size == 9:
        K = values.reshape(3, 3)
        return Intrinsics(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), width,
                          height)
    raise DatasetError(
        f"{path}: calibration needs 1 focal or 9 numbers (3x3 K), found {values.size}")


def _check_pinhole(pinhole: tuple[float, float, float, float]) -> None:
    """Reject focal lengths that are not finite and positive, or a principal point that is
    not finite (the checks of :class:`Intrinsics`), before any frame is read.

    Raises:
        DatasetError: naming the values.
    """
    try:
        Intrinsics(*pinhole, width=1, height=1)
    except ValueError as error:
        raise DatasetError(f"bad pinhole intrinsics: {error}") from None


def read_image_rgb(path: Path) -> NDArray[np.uint8]:
    """An (H, W, 3) uint8 RGB image.

    Raises:
        DatasetError: when the file cannot be decoded.
    """
    image_bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image_bgr is None:
        raise DatasetError(f"{path}: cannot decode image")
    return np.ascontiguousarray(image_bgr[:, :, ::-1])


class FolderDataset:
    """Frames of a 7-Scenes or ACE layout folder, sorted by name, loaded lazily.

    Args:
        root: the dataset folder.
        pinhole: (fx, fy, cx, cy) in pixels, used when the folder has no calibration files.
        focal: single focal length (pixels) used when neither calibration files nor
            ``intrinsics`` are given; principal point at the image centre.
        require_poses: raise when a frame has no pose file (mapping and evaluation need them).
        depth: also read each frame's depth image (RGB-D mapping); every frame must have one.
        T_colour_depth: (4, 4) depth-to-colour extrinsic (metres); ``None`` picks the
            folder's default (see the module docstring).

    Raises:
        DatasetError: missing folder, no frames, missing poses, depth or calibration.
    """

    def __init__(
        self, root: str | Path, pinhole: tuple[float, float, float, float] | None = None,
        focal: float | None = None, require_poses: bool = True, depth: bool = False,
        T_colour_depth: NDArray[np.float64] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder {str(self.root)!r} does not exist")
        if pinhole is not None:
            _check_pinhole(pinhole)
        if focal is not None and not (math.isfinite(focal) and focal > 0):
            raise DatasetError(f"focal length must be a finite number > 0, got {focal}")
        self._pinhole = pinhole
        self._focal = focal
        self.depth = depth
        if (self.root / "rgb").is_dir():
            self.layout = "ace"
            self._files = self._scan_ace(require_poses)
        else:
            self.layout = "7scenes"
            self._files = self._scan_seven_scenes(require_poses)
        if not self._files:
            raise DatasetError(
                f"{self.root}: no frames found (expected frame-XXXXXX.color.png|jpg, "
                "or an ACE layout with rgb/, poses/, calibration/)")
        if depth:
            missing = [f.name for f in self._files if f.depth is None]
            if missing:
                raise DatasetError(
                    f"{self.root}: {len(missing)} frames have no depth image (first: "
                    f"{missing[0]}; expected {self._depth_file_hint()})")
        self._depth_intrinsics_file = (self.root / "depth-intrinsics.txt"
                                       if self.layout == "7scenes" else None)
        if self._depth_intrinsics_file is not None and not self._depth_intrinsics_file.is_file():
            self._depth_intrinsics_file = None
        if T_colour_depth is None:
            T_colour_depth = (KINECT_V1_T_COLOUR_DEPTH if self._depth_intrinsics_file is not None
                              else np.eye(4))
        self.T_colour_depth = np.asarray(T_colour_depth, dtype=np.float64)
        self._shared_calibration = self._find_shared_calibration()
        if (self._shared_calibration is None and self._pinhole is None and self._focal is None
                and any(f.calibration is None for f in self._files)):
            raise DatasetError(
                f"{self.root}: no intrinsics (no color-intrinsics.txt, camera-intrinsics.txt "
                "or calibration/ files); pass intrinsics or a focal length")

    def _scan_seven_scenes(self, require_poses: bool) -> list[_FrameFiles]:
        files = []
        for path in sorted(self.root.iterdir()):
            match = _SEVEN_SCENES_COLOR.match(path.name)
            if match is None:
                continue
            pose = self.root / f"{match.group(1)}.pose.txt"
            depth = self.root / f"{match.group(1)}.depth.png"
            files.append(self._frame(match.group(1), path, pose, None, require_poses,
                                     depth if depth.is_file() else None))
        return files

    def _scan_ace(self, require_poses: bool) -> list[_FrameFiles]:
        files = []
        for path in sorted((self.root / "rgb").iterdir()):
            if path.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            stem = path.stem
            pose = self.root / "poses" / f"{stem}.txt"
            calibration = self.root / "calibration" / f"{stem}.txt"
            depth = next((d for d in (self.root / "depth" / f"{stem}.png",
                                      self.root / "depth" / f"{stem}.depth.png") if d.is_file()),
                         None)
            files.append(self._frame(stem, path, pose,
                                     calibration if calibration.is_file() else None,
                                     require_poses, depth))
        return files

    def _depth_file_hint(self) -> str:
        return ("depth/<stem>.png" if self.layout == "ace" else "frame-XXXXXX.depth.png")

    @staticmethod
    def _frame(
        name: str, image: Path, pose: Path, calibration: Path | None, require_poses: bool,
        depth: Path | None,
    ) -> _FrameFiles:
        if require_poses and not pose.is_file():
            raise DatasetError(f"frame {name}: pose file {pose} is missing")
        return _FrameFiles(name, image, pose if pose.is_file() else None, calibration, depth)

    def _find_shared_calibration(self) -> Path | None:
        for name in ("color-intrinsics.txt", "camera-intrinsics.txt"):
            if (self.root / name).is_file():
                return self.root / name
        return None

    def _intrinsics_for(self, files: _FrameFiles, width: int, height: int) -> Intrinsics:
        if files.calibration is not None:
            return read_calibration(files.calibration, width, height)
        if self._shared_calibration is not None:
            return read_calibration(self._shared_calibration, width, height)
        if self._pinhole is not None:
            fx, fy, cx, cy = self._pinhole
            return Intrinsics(fx, fy, cx, cy, width, height)
        if self._focal is not None:
            return Intrinsics(self._focal, self._focal, width / 2.0, height / 2.0, width, height)
        raise DatasetError(f"frame {files.name}: no intrinsics")

    def __len__(self) -> int:
        return len(self._files)

    def __getitem__(self, index: int) -> PosedFrame:
        if not -len(self._files) <= index < len(self._files):
            raise IndexError(f"frame index {index} outside 0..{len(self._files) - 1}")
        index %= len(self._files)
        files = self._files[index]
        image_rgb = read_image_rgb(files.image)
        height, width = image_rgb.shape[:2]
        T_world_cam = read_pose_file(files.pose) if files.pose is not None else None
        intrinsics = self._intrinsics_for(files, width, height)
        return PosedFrame(image_rgb=image_rgb, intrinsics=intrinsics, T_world_cam=T_world_cam,
                          stamp_ns=index, name=files.name,
                          depth=self._depth_image(files, intrinsics) if self.depth else None)

    def _depth_image(self, files: _FrameFiles, colour: Intrinsics) -> DepthImage:
        """The frame's depth with its calibration (depth intrinsics at the depth image's size)."""
        assert files.depth is not None  # checked at construction
        try:
            depth_m = read_depth_m(files.depth)
            height, width = depth_m.shape
            intrinsics = (read_calibration(self._depth_intrinsics_file, width, height)
                          if self._depth_intrinsics_file is not None
                          else colour.resized(width, height))
            return DepthImage(depth_m, DepthCalibration(intrinsics, self.T_colour_depth))
        except DepthError as error:
            raise DatasetError(str(error)) from error

    def __iter__(self) -> Iterator[PosedFrame]:
        for index in range(len(self)):
            yield self[index]

    def pose(self, index: int) -> NDArray[np.float64] | None:
        """Camera-to-world pose (4, 4) of frame ``index`` without decoding its image."""
        files = self._files[index]
        return read_pose_file(files.pose) if files.pose is not None else None
