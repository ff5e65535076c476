"""A synthetic scene as a posed-frame source: layout, trajectory, and frames rendered on demand."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.depth import DepthCalibration, DepthImage, depth_to_metres
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.datasets.synthetic.config import SyntheticSceneConfig
from seqace_ros.datasets.synthetic.render import render_view
from seqace_ros.datasets.synthetic.scene import Scene, generate_scene
from seqace_ros.datasets.synthetic.trajectory import generate_trajectory

# Independent random streams under the config's seed (numpy SeedSequence spawn keys), so
# that e.g. the layout does not change when the number of frames does.
_LAYOUT_STREAM = 0
_TRAJECTORY_STREAM = 1
_NOISE_STREAM = 2
DEPTH_MAX_M = 65.535  # largest depth a uint16 millimetre image holds


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


class SyntheticScene:
    """A synthetic scene (a :class:`~seqace_ros.datasets.base.PosedFrameSource`).

    Frames ``0 .. n_mapping_frames - 1`` are the mapping pass, the rest the query pass.
    Building it generates the layout, textures and trajectory (deterministic per seed);
    frames are rendered on demand, each the same however often or in whatever order.

    Attributes:
        config: the config it was built from.
        scene: the room geometry, materials and textures.
        intrinsics: pinhole camera of every frame.
        T_world_cam_N44: (N, 4, 4) float64 camera-to-world poses, OpenCV camera axes.
    """

    def __init__(self, config: SyntheticSceneConfig) -> None:
        self.config = config
        self.scene: Scene = generate_scene(config, _rng(config.seed, _LAYOUT_STREAM))
        self.T_world_cam_N44 = generate_trajectory(config, self.scene,
                                                   _rng(config.seed, _TRAJECTORY_STREAM))
        self.T_world_cam_N44.flags.writeable = False
        self.intrinsics: Intrinsics = config.intrinsics

    def __len__(self) -> int:
        return self.config.n_frames

    def __getitem__(self, index: int) -> PosedFrame:
        rgb_HW3, depth_mm_HW = self.render_rgbd(index)
        return PosedFrame(
            image_rgb=rgb_HW3,
            intrinsics=self.intrinsics,
            T_world_cam=self.T_world_cam_N44[index].copy(),
            stamp_ns=self.stamp_ns(index),
            name=frame_name(index),
            depth=DepthImage(depth_to_metres(depth_mm_HW), DepthCalibration(self.intrinsics)))

    def __iter__(self) -> Iterator[PosedFrame]:
        return (self[i] for i in range(len(self)))

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"frame index must be an integer, got {type(index).__name__}")
        if not 0 <= index < len(self):
            raise IndexError(f"frame index {index} outside [0, {len(self)})")
        return int(index)

    def stamp_ns(self, index: int) -> int:
        """Time stamp of frame ``index`` in nanoseconds (index / fps, from 0)."""
        return round(self._check_index(index) * 1e9 / self.config.fps)

    def render_rgbd(self, index: int) -> tuple[NDArray[np.uint8], NDArray[np.uint16]]:
        """Colour and depth of frame ``index``.

        Returns:
            ``rgb_HW3``: uint8 RGB with the config's sensor noise, and ``depth_mm_HW``:
            uint16 z-depth in millimetres registered to the colour image, 0 = invalid.

        Raises:
            IndexError: if ``index`` is not a frame of this scene.
        """
        index = self._check_index(index)
        rgb_HW3, depth_HW = render_view(self.scene, self.intrinsics, self.T_world_cam_N44[index])
        if self.config.noise_std > 0.0:
            noise_rng = _rng(self.config.seed, _NOISE_STREAM, index)
            rgb_HW3 = rgb_HW3 + noise_rng.normal(0.0, self.config.noise_std, rgb_HW3.shape)
        rgb_u8 = np.clip(np.rint(rgb_HW3), 0, 255).astype(np.uint8)
        valid = np.isfinite(depth_HW) & (depth_HW > 0.0) & (depth_HW <= DEPTH_MAX_M)
        depth_mm = np.where(valid, np.rint(np.where(valid, depth_HW, 0.0) * 1000.0), 0.0)
        return rgb_u8, depth_mm.astype(np.uint16)


def frame_name(index: int) -> str:
    """7-Scenes frame stem, e.g. ``frame-000042``."""
    return f"frame-{index:06d}"
