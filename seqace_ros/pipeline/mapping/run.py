"""The mapping run: train a map on posed frames and write it with its report.

:func:`map_with_report` is the one entry point of every mapping (folders through
:func:`seqace_ros.pipeline.mapping.request.run_request`, bags through
:func:`seqace_ros.pipeline.mapping.bag_mapping.map_bag`); the files it writes are described in
:mod:`seqace_ros.pipeline.mapping.report`. Progress is reported as :class:`MappingProgress`
events, for loggers such as the mapping node.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from seqace_ros.core.map_file import SceneMap
from seqace_ros.core.stop import check_stop
from seqace_ros.datasets.base import PosedFrame, PosedFrameSource
from seqace_ros.pipeline.evaluation import FrameEvaluation, evaluate_frames
from seqace_ros.pipeline.localization.modes import create_localizer, mode_config
from seqace_ros.pipeline.mapping.config import MappingConfig
from seqace_ros.pipeline.mapping.mapper import map_scene
from seqace_ros.pipeline.mapping.report import (
    FrameAccounting,
    LossCurve,
    check_output_path,
    write_map_and_report,
)
from seqace_ros.pipeline.mapping.self_check import SelfCheckRun, self_check_of, split_for_self_check

Stage = Literal["read", "encode", "train", "check", "write"]


@dataclass(frozen=True)
class MappingProgress:
    """One progress event of a mapping run.

    Attributes:
        stage: ``read`` (indexing the source), ``encode`` (frames into the feature buffer),
            ``train`` (optimiser steps), ``check`` (the self-check relocalizing withheld
            frames; its last event's detail is the summary) or ``write`` (map and report).
        done: units done in this stage (frames, steps); 0 at the start of a stage.
        total: units in this stage (0 when unknown).
        detail: a short human-readable note (e.g. the current loss).
    """

    stage: Stage
    done: int
    total: int
    detail: str = ""


ProgressCallback = Callable[[MappingProgress], None]


def training_progress(step: int, total_steps: int, loss: float,
                      valid_fraction: float) -> MappingProgress:
    """The ``train`` event of a recorded step (0-based ``step`` of ``total_steps``)."""
    return MappingProgress("train", step + 1, total_steps,
                           f"loss {loss:.3f}, valid {valid_fraction:.2f}")


class _ObservedFrames:
    """A ``PosedFrameSource`` wrapper that keeps each read frame's pose, reports encoding
    progress on each frame's first read (keyframes read some frames again after training) and
    checks for a stop request before each frame (encoding and tracking read through it)."""

    def __init__(
        self, frames: PosedFrameSource, total: int, on_progress: ProgressCallback | None
    ) -> None:
        self._frames = frames
        self._total = total
        self._on_progress = on_progress
        self.T_world_cam: dict[int, NDArray[np.float64]] = {}

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index: int) -> PosedFrame:
        check_stop()
        frame = self._frames[index]
        first_read = index not in self.T_world_cam
        if frame.T_world_cam is not None:
            self.T_world_cam[index] = frame.T_world_cam
        if self._on_progress is not None and first_read:
            self._on_progress(MappingProgress("encode", len(self.T_world_cam), self._total))
        return frame

    def __iter__(self) -> Iterator[PosedFrame]:
        return (self[index] for index in range(len(self)))


def map_with_report(
    frames: PosedFrameSource,
    indices: Sequence[int],
    config: MappingConfig,
    out_path: str | Path,
    source: Mapping[str, Any],
    accounting: FrameAccounting,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
    started_at: float | None = None,
    read_seconds: float = 0.0,
) -> Path:
    """Train a map on ``frames[indices]``, write it to ``out_path`` and its report beside it.

    With ``config.self_check_every`` = k > 0, every k-th of those frames is withheld from
    training and relocalized by the new map afterwards (the report's ``self_check``, see
    :mod:`~seqace_ros.pipeline.mapping.self_check`).

    Args:
        frames: posed frames (a folder dataset, a bag, ...).
        indices: the frames to map with, in temporal order.
        config: mapping settings.
        out_path: map file to write; the report files go beside it (see
            :class:`~seqace_ros.pipeline.mapping.report.ReportPaths`).
        source: JSON-ready description of where the frames came from (kind, path, topics).
        accounting: frames in the source, used, skipped and why.
        device: torch device (``auto``: CUDA when present).
        progress: tqdm progress bars on stderr.
        on_progress: receives :class:`MappingProgress` events (encode, train, write).
        started_at: ``time.perf_counter()`` at the start of the whole job (reading
            included); defaults to now.
        read_seconds: time spent reading or indexing the source before this call.

    Returns:
        The map path.

    Raises:
        MappingOutputError: the output cannot be written (nothing is left behind, an existing
            map and report are unchanged).
        MappingDataError: no frames, or a frame without a pose.
        StopRequested: a stop signal arrived (checked before each frame read, each training
            step, each self-check frame and the final renames; nothing is written).
    """
    start = time.perf_counter() if started_at is None else started_at
    target = check_output_path(out_path)
    if accounting.used != len(indices):
        raise ValueError(f"accounting says {accounting.used} frames used, got {len(indices)}")
    observed = _ObservedFrames(frames, len(indices), on_progress)
    curve = LossCurve()

    def on_step(step: int, loss: float, valid_fraction: float) -> None:
        curve(step, loss, valid_fraction)
        if on_progress is not None:
            on_progress(training_progress(step, config.iterations, loss, valid_fraction))

    training, withheld = split_for_self_check(indices, config.self_check_every)
    scene_map = map_scene(observed, training, config, device=device, progress=progress,
                          on_step=on_step)
    check = None
    if withheld:
        check = _self_check(scene_map, frames, withheld, config, device, progress, on_progress)
        for index, evaluation in zip(withheld, check.evaluations, strict=True):
            observed.T_world_cam[index] = evaluation.T_world_cam_gt
    if on_progress is not None:
        on_progress(MappingProgress("write", 0, 1, str(target)))
    T_world_cam_N44 = np.stack([observed.T_world_cam[i] for i in indices])
    write_map_and_report(scene_map, config, target, source, accounting, T_world_cam_N44, curve,
                         started_at=start, read_seconds=read_seconds, self_check=check)
    if on_progress is not None:
        on_progress(MappingProgress("write", 1, 1, str(target)))
    return target


def _self_check(
    scene_map: SceneMap, frames: PosedFrameSource, withheld: Sequence[int],
    config: MappingConfig, device: str | torch.device, progress: bool,
    on_progress: ProgressCallback | None,
) -> SelfCheckRun:
    """Relocalize the withheld frames with the new map (single-frame mode)."""
    localizer = create_localizer(scene_map, mode_config("single"), device)
    done = 0

    def on_result(_: FrameEvaluation) -> None:
        nonlocal done
        check_stop()
        done += 1
        if on_progress is not None and done < len(withheld):
            on_progress(MappingProgress("check", done, len(withheld)))

    evaluations = evaluate_frames(localizer, frames, withheld, progress=progress,
                                  on_result=on_result)
    check = self_check_of(evaluations, config.self_check_every)
    if on_progress is not None:
        on_progress(MappingProgress("check", len(withheld), len(withheld), check.summary()))
    return SelfCheckRun(check, tuple(evaluations))
