"""Localization modes by name: the one place ``--mode`` values are registered.

A mode turns a scene map into a :class:`FrameLocalizer` that is fed frames in order (a
sequence mode may keep state between calls). Registering a mode is one line in ``MODES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.map_file import SceneMap
from seqace_ros.pipeline.localization.sequence import SequenceLocalizer
from seqace_ros.pipeline.localization.single import LocalizationResult, Localizer


class FrameLocalizer(Protocol):
    """Anything that localizes frames fed in order (single-frame or sequence mode)."""

    def localize(self, image_rgb: NDArray[np.uint8], intrinsics: Intrinsics) -> LocalizationResult:
        """Pose of the camera that took ``image_rgb``."""
        ...


ModeFactory = Callable[[SceneMap, torch.device], FrameLocalizer]

MODES: dict[str, ModeFactory] = {
    "single": lambda scene_map, device: Localizer(scene_map, device=device),
    "sequence": lambda scene_map, device: SequenceLocalizer(scene_map, device=device),
}


def create_frame_localizer(mode: str, scene_map: SceneMap, device: torch.device) -> FrameLocalizer:
    """The localizer of the named mode.

    Raises:
        ValueError: for an unknown mode.
    """
    if mode not in MODES:
        raise ValueError(f"unknown localization mode {mode!r}; choose from {sorted(MODES)}")
    return MODES[mode](scene_map, device)
