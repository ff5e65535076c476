"""Choose which posed frames to map with: minimum motion between frames and a frame cap.

Temporal order is kept (the sequence loss relies on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.geometry import pose_error


@dataclass(frozen=True)
class FrameSelectionConfig:
    """Frame selection settings.

    Attributes:
        min_translation_m: a frame is kept only if the camera moved at least this far since
            the last kept frame, or turned at least ``min_rotation_deg``; a threshold of 0
            disables its criterion (both 0 keep every frame).
        min_rotation_deg: see ``min_translation_m``.
        max_frames: keep at most this many frames, evenly spaced over the remaining ones
            (``None`` for no cap).
    """

    min_translation_m: float = 0.0
    min_rotation_deg: float = 0.0
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if not (self.min_translation_m >= 0.0 and self.min_rotation_deg >= 0.0):
            raise ValueError(
                "min_translation_m and min_rotation_deg must be >= 0, got "
                f"{self.min_translation_m} and {self.min_rotation_deg}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {self.max_frames}")


@dataclass(frozen=True)
class FrameSelection:
    """Result of :func:`select_frames`.

    Attributes:
        indices: kept indices into the input, increasing.
        skipped_min_motion: frames dropped as near-duplicates of the previous kept frame.
        skipped_max_frames: frames dropped by the cap.
    """

    indices: tuple[int, ...]
    skipped_min_motion: int
    skipped_max_frames: int


def select_frames(
    T_world_cam_N44: Sequence[NDArray[np.float64]] | NDArray[np.float64],
    config: FrameSelectionConfig,
) -> FrameSelection:
    """Indices of the frames to keep, from their poses in temporal order.

    Args:
        T_world_cam_N44: (N, 4, 4) camera-to-world poses, ordered by time.
        config: thresholds and cap.
    """
    kept: list[int] = []
    use_motion = config.min_translation_m > 0.0 or config.min_rotation_deg > 0.0
    for index, T_world_cam in enumerate(T_world_cam_N44):
        if use_motion and kept:
            moved_m, turned_deg = pose_error(T_world_cam, T_world_cam_N44[kept[-1]])
            moved_enough = 0.0 < config.min_translation_m <= moved_m
            turned_enough = 0.0 < config.min_rotation_deg <= turned_deg
            if not (moved_enough or turned_enough):
                continue
        kept.append(index)
    skipped_motion = len(T_world_cam_N44) - len(kept)
    capped = kept
    if config.max_frames is not None and len(kept) > config.max_frames:
        positions = np.round(np.linspace(0, len(kept) - 1, config.max_frames)).astype(int)
        capped = [kept[p] for p in positions]
    return FrameSelection(tuple(capped), skipped_motion, len(kept) - len(capped))
