"""A tiny random-texture scene the fault tests feed to commands: two posed frames written as a
7-Scenes folder and as a bag."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import make_transform
from seqace_ros.datasets.bag_writer import FramesBagConfig, write_frames_bag
from seqace_ros.datasets.base import PosedFrame


def write_two_frame_scene(root: Path, focal_file: bool) -> tuple[Path, Path]:
    """Two 64x48 random frames 10 cm apart, as ``root/folder`` (with ``color-intrinsics.txt``
    when ``focal_file``) and a bag ``root/bag`` (poses on /tf); returns (folder, bag)."""
    folder = root / "folder"
    folder.mkdir()
    if focal_file:
        (folder / "color-intrinsics.txt").write_text("50\n")
    rng = np.random.default_rng(0)
    frames = []
    for i in range(2):
        image_rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        T_world_cam = make_transform(np.eye(3), [0.1 * i, 0.0, 0.0])
        cv2.imwrite(str(folder / f"frame-{i:06d}.color.png"), image_rgb[:, :, ::-1])
        np.savetxt(folder / f"frame-{i:06d}.pose.txt", T_world_cam)
        frames.append(PosedFrame(image_rgb, Intrinsics(50.0, 50.0, 32.0, 24.0, 64, 48),
                                 T_world_cam, 10**9 + i * 10**8, f"f{i}"))
    return folder, write_frames_bag(root / "bag", frames, FramesBagConfig(poses="tf"))
