"""The demo's report: poses received over DDS scored against ground truth.

Metrics and the plot are those of :mod:`seqace_ros.pipeline.evaluation`; this
module only turns received poses into :class:`FrameEvaluation` records (a frame with no pose
back is a failure) and adds what a live stream has on top of an offline evaluation:

- ``mean_latency_ms``, ``latency_p50_ms``, ``latency_p95_ms``: image stamp to pose receipt over
  DDS (decode, encoder, head, RANSAC, publish, transport), over the frames that got a pose;
  ``hz`` is ``1000 / mean_latency_ms`` as in ``seqace eval``, the rate one frame at a time
  would allow;
- ``n_poses``, ``replay_rate_hz`` and ``pose_rate_hz`` (poses received per second of replay);
- ``node_frames_dropped``: frames the node replaced in its latest-frame-wins slot (too slow).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from seqace_ros.core.geometry import pose_error
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.pipeline.evaluation import (
    EvaluationError,
    EvaluationReport,
    FrameEvaluation,
    summarize,
)
from seqace_ros.ros.demo.replay import ReplayResult


def evaluate_replay(frames: Sequence[PosedFrame], result: ReplayResult) -> list[FrameEvaluation]:
    """One evaluation per replayed frame: its received pose (matched by stamp) or a failure.

    ``latency_ms`` of a frame is its stamp-to-receipt latency, NaN when no pose came back.

    Raises:
        EvaluationError: a frame without ground truth, or stamps that do not match the frames.
    """
    if len(frames) != len(result.stamps_ns):
        raise EvaluationError(f"{len(frames)} frames but {len(result.stamps_ns)} stamps")
    evaluations = []
    for frame, stamp_ns in zip(frames, result.stamps_ns, strict=True):
        if frame.T_world_cam is None:
            raise EvaluationError(f"query frame {frame.name} has no ground-truth pose")
        receipt = result.poses.get(stamp_ns)
        if receipt is None:
            translation_m, rotation_deg, latency_ms = math.inf, math.inf, math.nan
        else:
            translation_m, rotation_deg = pose_error(receipt.T_map_cam, frame.T_world_cam)
            latency_ms = receipt.latency_ms
        evaluations.append(FrameEvaluation(
            name=frame.name, stamp_ns=stamp_ns, success=receipt is not None,
            T_world_cam_est=None if receipt is None else receipt.T_map_cam,
            T_world_cam_gt=frame.T_world_cam, translation_m=translation_m,
            rotation_deg=rotation_deg, latency_ms=latency_ms, num_inliers=0,
        ))
    return evaluations


@dataclass(frozen=True)
class StreamReport:
    """The evaluation report of a replay plus the live-stream figures of the module doc.

    Attributes:
        evaluation: the offline report's figures; ``mean_latency_ms`` and ``hz`` are those of
            stamp-to-receipt latency (NaN when no pose came back).
        latency_p50_ms: median stamp-to-receipt latency (NaN when no pose came back).
        latency_p95_ms: its 95th percentile (NaN when no pose came back).
        n_poses: poses received for the replayed frames.
        replay_rate_hz: rate the frames were replayed at.
        pose_rate_hz: poses received per second of replay (NaN for an empty replay).
        node_frames_dropped: the node's latest-frame-wins drops (``None``: not reported).
        node_finished_in_time: the node answered every frame before the replay timed out.
    """

    evaluation: EvaluationReport
    latency_p50_ms: float
    latency_p95_ms: float
    n_poses: int
    replay_rate_hz: float
    pose_rate_hz: float
    node_frames_dropped: int | None
    node_finished_in_time: bool

    def to_dict(self) -> dict[str, Any]:
        """One flat dict: the evaluation keys, then the stream keys (the JSON report)."""
        stream = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "evaluation"}
        return {**self.evaluation.to_dict(), **stream}


def stream_report(evaluations: Sequence[FrameEvaluation], result: ReplayResult, mode: str,
                  map_bytes: int, rate_hz: float) -> StreamReport:
    """The evaluation report with the live-stream figures of the module doc.

    Raises:
        EvaluationError: no evaluations.
    """
    evaluation = summarize(evaluations, mode, map_bytes)
    latencies_ms = np.array([e.latency_ms for e in evaluations if e.success])
    mean_ms = float(latencies_ms.mean()) if latencies_ms.size else math.nan
    percentiles = (np.percentile(latencies_ms, (50, 95)) if latencies_ms.size
                   else (math.nan, math.nan))
    dropped = result.node_counters.get("frames_dropped")
    return StreamReport(
        evaluation=replace(evaluation, mean_latency_ms=mean_ms, hz=1000.0 / mean_ms),
        latency_p50_ms=float(percentiles[0]),
        latency_p95_ms=float(percentiles[1]),
        n_poses=int(latencies_ms.size),
        replay_rate_hz=rate_hz,
        pose_rate_hz=latencies_ms.size / result.seconds if result.seconds > 0 else math.nan,
        node_frames_dropped=None if dropped is None else int(dropped),
        node_finished_in_time=result.complete)


def format_summary(report: StreamReport) -> str:
    """A few lines for the console."""
    evaluation = report.evaluation

    def number(value: float | None, unit: str, digits: int = 1) -> str:
        if value is None or not math.isfinite(value):
            return "n/a"
        return f"{value:.{digits}f}{unit}"

    dropped = report.node_frames_dropped
    return "\n".join([
        f"queries: {evaluation.n_queries} ({evaluation.mode} mode), poses received: "
        f"{report.n_poses}, failed: {evaluation.n_failed}"
        + ("" if dropped is None else f" (dropped by the node: {dropped})"),
        f"recall 5cm/5deg: {evaluation.recall_5cm_5deg:.3f}   2cm/2deg: "
        f"{evaluation.recall_2cm_2deg:.3f}   1cm/1deg: {evaluation.recall_1cm_1deg:.3f}",
        f"median error: {number(evaluation.median_translation_cm, ' cm', 2)} / "
        f"{number(evaluation.median_rotation_deg, ' deg', 2)}",
        f"latency (image stamp -> pose received): p50 {number(report.latency_p50_ms, ' ms')}, "
        f"p95 {number(report.latency_p95_ms, ' ms')}, mean "
        f"{number(evaluation.mean_latency_ms, ' ms')} -> {number(evaluation.hz, ' Hz')}",
        f"stream: {number(report.replay_rate_hz, ' Hz')} in, "
        f"{number(report.pose_rate_hz, ' poses/s')} out; map {evaluation.map_bytes / 1e6:.2f} MB",
    ])
