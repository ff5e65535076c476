"""Localizers compared on the same query frames, interleaved frame by frame.

Each method keeps its own state (a sequence mode sees its frames in order); running them in
turn on every frame lets machine load hit them alike, so their rates stay comparable.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.datasets.base import PosedFrameSource
from seqace_ros.pipeline.evaluation import FrameEvaluation, evaluate_frames, summarize
from seqace_ros.pipeline.localization.modes import FrameLocalizer
from seqace_ros.pipeline.localization.single import LocalizationResult


class StageTimer:
    """A localizer that records the per-stage timings (milliseconds) of every result."""

    def __init__(self, localizer: FrameLocalizer) -> None:
        self.localizer = localizer
        self.timings_ms: dict[str, list[float]] = {}

    def localize(self, image_rgb: NDArray[np.uint8], intrinsics: Intrinsics) -> LocalizationResult:
        result = self.localizer.localize(image_rgb, intrinsics)
        for stage, ms in result.timings_ms.items():
            self.timings_ms.setdefault(stage, []).append(ms)
        return result

    def mean_ms(self) -> dict[str, float]:
        """Mean milliseconds per stage over the frames so far."""
        return {stage: round(float(np.mean(v)), 2) for stage, v in self.timings_ms.items()}


def compare_interleaved(
    localizers: Mapping[str, FrameLocalizer], frames: PosedFrameSource, indices: Sequence[int],
    map_bytes: Mapping[str, int], log_every: int = 0,
) -> dict[str, dict[str, Any]]:
    """Each method's evaluation report (DESIGN.md keys, ``mode`` its name) on the frames
    ``indices``, plus ``stage_ms`` (its mean milliseconds per stage).

    Args:
        localizers: the methods by name.
        frames: the query frames with their ground truth.
        indices: the frames to localize, in order.
        map_bytes: each method's map size (bytes), by name.
        log_every: print ``done/total queries`` to stderr every so many frames (0: never).
    """
    timers = {name: StageTimer(localizer) for name, localizer in localizers.items()}
    evaluations: dict[str, list[FrameEvaluation]] = {name: [] for name in timers}
    for done, index in enumerate(indices, 1):
        for name, timer in timers.items():
            evaluations[name] += evaluate_frames(timer, frames, [index], progress=False)
        if log_every and (done % log_every == 0 or done == len(indices)):
            print(f"{done}/{len(indices)} queries", file=sys.stderr, flush=True)
    return {name: {**summarize(evaluations[name], name, map_bytes[name]).to_dict(),
                   "stage_ms": timers[name].mean_ms()} for name in timers}
