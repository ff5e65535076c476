"""Localization modes: the protocol every mode follows, and the one registry of their names.

A mode is a config (:class:`ModeConfig`: a frozen dataclass that names its mode and builds its
localizer) and a localizer (:class:`LocalizationMode`) that is fed the frames of a stream in
order. Registering a mode is adding its default config to :data:`MODE_CONFIGS`; the CLI
(``--mode``), the node (``mode`` parameter), the demo and the benchmarks take the names from
there and hold only the protocol.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np
import torch
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.map_file import SceneMap
from seqace_ros.pipeline.localization.sequence import SequenceConfig
from seqace_ros.pipeline.localization.single import (
    FrameStatus,
    LocalizationError,
    LocalizationResult,
    LocalizerConfig,
)


class FrameLocalizer(Protocol):
    """Anything that localizes frames fed in order: what evaluation needs (a mode, or a peer
    method of a benchmark)."""

    def localize(self, image_rgb: NDArray[np.uint8], intrinsics: Intrinsics) -> LocalizationResult:
        """Pose of the camera that took ``image_rgb``."""
        ...


class ModeConfig(Protocol):
    """The settings of one localization mode.

    Attributes:
        mode: the mode's name (its key in :data:`MODE_CONFIGS`).
        uses_odometry: the mode's ``localize`` uses ``T_odom_cam`` (callers may skip the
            lookup otherwise).
    """

    mode: ClassVar[str]
    uses_odometry: ClassVar[bool]

    def with_frame(self, frame: LocalizerConfig) -> ModeConfig:
        """These settings with other single-frame stages' settings (patches, RANSAC, minimum
        inliers)."""
        ...

    def build(self, scene_map: SceneMap, device: str | torch.device) -> LocalizationMode:
        """The mode's localizer with these settings."""
        ...


class LocalizationMode(Protocol):
    """A localizer of one mode, fed the frames of one stream in order from one thread.

    Attributes:
        settings: the mode's config; assigning new settings of the same mode takes effect
            from the next frame (the node's run-time parameters).
        status: what the mode did with the last frame (``values()`` are the node's
            diagnostics); reset by :meth:`reset`.
    """

    settings: ModeConfig
    status: FrameStatus

    def localize(
        self, image_rgb: NDArray[np.uint8], intrinsics: Intrinsics, stamp_ns: int | None = None,
        T_odom_cam: NDArray[np.float64] | None = None,
    ) -> LocalizationResult:
        """Pose of the camera that took ``image_rgb`` (H, W, 3 uint8 RGB), the next frame.

        Args:
            image_rgb: the image.
            intrinsics: its pinhole camera.
            stamp_ns: its capture time (nanoseconds), ``None`` when unknown.
            T_odom_cam: (4, 4) camera-to-odometry pose at the capture time, ``None`` when
                unknown (used where ``settings.uses_odometry``).

        Raises:
            EncoderError: on a malformed image.
            LocalizationError: on intrinsics for another image size or a bad ``T_odom_cam``.
        """
        ...

    def reset(self) -> None:
        """Forget the stream: the next frame is localized on its own."""
        ...


#: Default settings of every mode, by name: the one place a mode is registered.
MODE_CONFIGS: dict[str, ModeConfig] = {
    config.mode: config for config in (LocalizerConfig(), SequenceConfig())
}
MODE_NAMES: tuple[str, ...] = tuple(MODE_CONFIGS)


def mode_config(mode: str) -> ModeConfig:
    """The default settings of the named mode.

    Raises:
        LocalizationError: for an unknown mode.
    """
    if mode not in MODE_CONFIGS:
        raise LocalizationError(f"unknown localization mode {mode!r}; choose from {MODE_NAMES}")
    return MODE_CONFIGS[mode]


def create_localizer(
    scene_map: SceneMap, config: ModeConfig, device: str | torch.device,
) -> LocalizationMode:
    """The localizer of ``config``'s mode on ``scene_map``.

    Raises:
        MapFileError: when this installation's encoder weights differ from the map's.
    """
    return config.build(scene_map, device)
