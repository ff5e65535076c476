"""The demo's report: poses received over DDS scored against ground truth.

Metrics, the JSON writer and the plot are those of :mod:`seqace_ros.pipeline.evaluation`; this
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
from typing import Any

import numpy as np

from seqace_ros.core.geometry import pose_error
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.pipeline.evaluation import EvaluationError, FrameEvaluation, summarize
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


def stream_report(evaluations: Sequence[FrameEvaluation], result: ReplayResult, mode: str,
                  map_bytes: int, rate_hz: float) -> dict[str, Any]:
    """The evaluation report (DESIGN.md keys) with the live-stream figures of the module doc.

    Raises:
        EvaluationError: no evaluations.
    """
    report = summarize(evaluations, mode, map_bytes)
    latencies_ms = np.array([e.latency_ms for e in evaluations if e.success])
    if latencies_ms.size:
        mean_ms = float(latencies_ms.mean())
        report["mean_latency_ms"] = mean_ms
        report["hz"] = 1000.0 / mean_ms
        report["latency_p50_ms"] = float(np.percentile(latencies_ms, 50))
        report["latency_p95_ms"] = float(np.percentile(latencies_ms, 95))
    else:
        for key in ("mean_latency_ms", "hz", "latency_p50_ms", "latency_p95_ms"):
            report[key] = math.nan
    report["n_poses"] = int(latencies_ms.size)
    report["replay_rate_hz"] = rate_hz
    report["pose_rate_hz"] = (latencies_ms.size / result.seconds if result.seconds > 0
                              else math.nan)
    dropped = result.node_counters.get("frames_dropped")
    report["node_frames_dropped"] = None if dropped is None else int(dropped)
    report["node_finished_in_time"] = result.complete
    return report


def format_summary(report: dict[str, Any]) -> str:
    """A few lines for the console."""

    def number(key: str, unit: str, digits: int = 1) -> str:
        value = report.get(key)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "n/a"
        return f"{value:.{digits}f}{unit}"

    dropped = report.get("node_frames_dropped")
    return "\n".join([
        f"queries: {report['n_queries']} ({report['mode']} mode), poses received: "
        f"{report['n_poses']}, failed: {report['n_failed']}"
        + ("" if dropped is None else f" (dropped by the node: {dropped})"),
        f"recall 5cm/5deg: {report['recall_5cm_5deg']:.3f}   2cm/2deg: "
        f"{report['recall_2cm_2deg']:.3f}   1cm/1deg: {report['recall_1cm_1deg']:.3f}",
        f"median error: {number('median_translation_cm', ' cm', 2)} / "
        f"{number('median_rotation_deg', ' deg', 2)}",
        f"latency (image stamp -> pose received): p50 {number('latency_p50_ms', ' ms')}, "
        f"p95 {number('latency_p95_ms', ' ms')}, mean {number('mean_latency_ms', ' ms')} "
        f"-> {number('hz', ' Hz')}",
        f"stream: {number('replay_rate_hz', ' Hz')} in, {number('pose_rate_hz', ' poses/s')} "
        f"out; map {report['map_bytes'] / 1e6:.2f} MB",
    ])
