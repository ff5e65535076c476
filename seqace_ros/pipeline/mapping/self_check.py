"""The map self-check: how well a new map relocalizes mapping frames it was not trained on.

Every ``every``-th mapping frame is withheld from training; after training the single-frame
localizer relocalizes the withheld frames against their (mapping) poses. That tells a user,
before the robot uses the map, how good it is near the mapping trajectory and where it is
weak: the report gives recall, median errors and the longest stretches of consecutive
withheld frames that failed (5 cm / 5 deg). It says nothing about places the mapping run
never saw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from seqace_ros.pipeline.evaluation import FrameEvaluation, summarize

#: A withheld frame passes when both errors are under these (the 5 cm / 5 deg recall).
PASS_TRANSLATION_M = 0.05
PASS_ROTATION_DEG = 5.0


def split_for_self_check(
    indices: Sequence[int], every: int,
) -> tuple[list[int], list[int]]:
    """Mapping indices to train on and to withhold (every ``every``-th, from the
    ``every``-th on; 0 withholds none).

    Raises:
        ValueError: ``every`` is 1 (nothing left to train on) or negative.
    """
    if every == 0:
        return list(indices), []
    if every < 2:
        raise ValueError(f"self_check_every must be 0 (off) or >= 2, got {every}")
    withheld = [index for position, index in enumerate(indices) if position % every == every - 1]
    kept = [index for position, index in enumerate(indices) if position % every != every - 1]
    return kept, withheld


def passes(evaluation: FrameEvaluation) -> bool:
    """Within 5 cm and 5 degrees of the mapping pose."""
    return (evaluation.translation_m < PASS_TRANSLATION_M
            and evaluation.rotation_deg < PASS_ROTATION_DEG)


@dataclass(frozen=True)
class WeakStretch:
    """Consecutive withheld frames that all failed the 5 cm / 5 deg check.

    Attributes:
        first: name of the first frame.
        last: name of the last frame.
        frames: how many withheld frames (each ``every`` mapping frames apart).
        median_translation_cm: their median camera-centre error (inf when most had no pose).
    """

    first: str
    last: str
    frames: int
    median_translation_cm: float


@dataclass(frozen=True)
class SelfCheck:
    """The self-check of one map (the ``self_check`` object of the mapping report).

    Attributes:
        every: one mapping frame in ``every`` was withheld from training.
        n_frames: withheld frames relocalized.
        recall_5cm_5deg: fraction of them within 5 cm and 5 degrees.
        recall_2cm_2deg: fraction within 2 cm and 2 degrees.
        median_translation_cm: median camera-centre error.
        median_rotation_deg: median rotation error.
        n_failed: withheld frames with no pose at all.
        weakest: the longest failing stretches, longest first (at most three).
    """

    every: int
    n_frames: int
    recall_5cm_5deg: float
    recall_2cm_2deg: float
    median_translation_cm: float
    median_rotation_deg: float
    n_failed: int
    weakest: tuple[WeakStretch, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (write with ``core.json_io``: infinities become null)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelfCheck:
        """Inverse of :meth:`to_dict` (a null median, written for an infinity, reads back as
        infinity)."""
        def number(value: float | None) -> float:
            return math.inf if value is None else float(value)

        weakest = tuple(WeakStretch(w["first"], w["last"], w["frames"],
                                    number(w["median_translation_cm"])) for w in data["weakest"])
        return cls(**{**data, "median_translation_cm": number(data["median_translation_cm"]),
                      "median_rotation_deg": number(data["median_rotation_deg"]),
                      "weakest": weakest})

    def summary(self) -> str:
        """One line for logs."""
        line = (f"self-check on {self.n_frames} withheld frames (1 in {self.every}): "
                f"{100 * self.recall_5cm_5deg:.0f} % within 5 cm / 5 deg, "
                f"{100 * self.recall_2cm_2deg:.0f} % within 2 cm / 2 deg, median "
                f"{self.median_translation_cm:.1f} cm / {self.median_rotation_deg:.2f} deg")
        if self.weakest:
            worst = self.weakest[0]
            line += f"; weakest: {worst.first} .. {worst.last} ({worst.frames} frames)"
        return line


def weak_stretches(
    evaluations: Sequence[FrameEvaluation], max_count: int = 3,
) -> tuple[WeakStretch, ...]:
    """The longest runs of consecutive failing evaluations, longest first."""
    runs: list[list[FrameEvaluation]] = []
    current: list[FrameEvaluation] = []
    for evaluation in evaluations:
        if passes(evaluation):
            current = []
            continue
        if not current:
            runs.append(current)
        current.append(evaluation)
    runs.sort(key=len, reverse=True)
    return tuple(
        WeakStretch(run[0].name, run[-1].name, len(run),
                    float(np.median([100.0 * e.translation_m for e in run])))
        for run in runs[:max_count])


def self_check_of(evaluations: Sequence[FrameEvaluation], every: int) -> SelfCheck:
    """The self-check summary of the withheld frames' evaluations (in temporal order).

    Raises:
        EvaluationError: no evaluations.
    """
    report = summarize(evaluations, mode="single", map_bytes=0)
    return SelfCheck(
        every=every,
        n_frames=report.n_queries,
        recall_5cm_5deg=report.recall_5cm_5deg,
        recall_2cm_2deg=report.recall_2cm_2deg,
        median_translation_cm=report.median_translation_cm,
        median_rotation_deg=report.median_rotation_deg,
        n_failed=report.n_failed,
        weakest=weak_stretches(evaluations))


@dataclass(frozen=True)
class SelfCheckRun:
    """A self-check with the per-frame outcomes it summarizes (for the trajectory plot).

    Attributes:
        summary: the report's ``self_check``.
        evaluations: the withheld frames' evaluations, in temporal order.
    """

    summary: SelfCheck
    evaluations: tuple[FrameEvaluation, ...]
