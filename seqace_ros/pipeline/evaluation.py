"""Evaluation of relocalization against ground truth: per-frame errors, the report, the plot.

The report is an :class:`EvaluationReport`; its fields are the JSON keys (DESIGN.md's
:data:`DESIGN_REPORT_KEYS` plus ``n_failed``). A frame counts toward a recall when both its
camera-centre and rotation errors are under the thresholds; failed frames count as failures
(infinite error), never skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from seqace_ros.core.atomic_io import atomic_write_bytes
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import pose_error
from seqace_ros.core.json_io import write_json
from seqace_ros.datasets.base import PosedFrameSource
from seqace_ros.pipeline.localization.modes import FrameLocalizer

RECALL_THRESHOLDS = ((0.05, 5.0, "recall_5cm_5deg"), (0.02, 2.0, "recall_2cm_2deg"),
                     (0.01, 1.0, "recall_1cm_1deg"))


class EvaluationError(SeqaceError, ValueError):
    """Evaluation input that cannot be scored (no frames, frames without ground truth)."""


@dataclass(frozen=True)
class FrameEvaluation:
    """One query frame's outcome.

    Attributes:
        name: frame name.
        stamp_ns: frame stamp.
        success: the localizer returned a pose.
        T_world_cam_est: (4, 4) estimate or ``None`` on failure.
        T_world_cam_gt: (4, 4) ground truth.
        translation_m: camera-centre error (inf on failure).
        rotation_deg: rotation error (inf on failure).
        latency_ms: encoder + head + RANSAC time.
        num_inliers: RANSAC inliers.
    """

    name: str
    stamp_ns: int
    success: bool
    T_world_cam_est: NDArray[np.float64] | None
    T_world_cam_gt: NDArray[np.float64]
    translation_m: float
    rotation_deg: float
    latency_ms: float
    num_inliers: int


def evaluate_frames(
    localizer: FrameLocalizer, frames: PosedFrameSource, indices: Sequence[int],
    progress: bool = True, on_result: Callable[[FrameEvaluation], None] | None = None,
) -> list[FrameEvaluation]:
    """Localize the frames ``indices`` in order and compare with their ground truth.

    Raises:
        EvaluationError: no frames, or a frame without ground truth.
    """
    if len(indices) == 0:
        raise EvaluationError("evaluation needs at least one query frame, got none")
    evaluations = []
    for index in tqdm(indices, desc="localizing", unit="img", disable=not progress,
                      dynamic_ncols=True):
        frame = frames[index]
        if frame.T_world_cam is None:
            raise EvaluationError(f"query frame {frame.name} has no ground-truth pose")
        result = localizer.localize(frame.image_rgb, frame.intrinsics)
        if result.success and result.T_world_cam is not None:
            translation_m, rotation_deg = pose_error(result.T_world_cam, frame.T_world_cam)
        else:
            translation_m, rotation_deg = math.inf, math.inf
        evaluation = FrameEvaluation(
            name=frame.name, stamp_ns=frame.stamp_ns, success=result.success,
            T_world_cam_est=result.T_world_cam, T_world_cam_gt=frame.T_world_cam,
            translation_m=translation_m, rotation_deg=rotation_deg,
            latency_ms=float(result.timings_ms["total"]), num_inliers=result.num_inliers)
        evaluations.append(evaluation)
        if on_result is not None:
            on_result(evaluation)
    return evaluations


@dataclass(frozen=True)
class EvaluationReport:
    """The evaluation report; its field names are the JSON keys, in order.

    Attributes:
        n_queries: query frames scored.
        recall_5cm_5deg: fraction (0..1) of queries within 5 cm and 5 degrees.
        recall_2cm_2deg: fraction within 2 cm and 2 degrees.
        recall_1cm_1deg: fraction within 1 cm and 1 degree.
        median_translation_cm: median camera-centre error (inf when most frames failed).
        median_rotation_deg: median rotation error (inf when most frames failed).
        mean_latency_ms: mean per-frame latency.
        hz: ``1000 / mean_latency_ms``, the rate one frame at a time allows.
        mode: localization mode name.
        map_bytes: size of the map file.
        n_failed: queries with no pose (not a DESIGN.md key).
    """

    n_queries: int
    recall_5cm_5deg: float
    recall_2cm_2deg: float
    recall_1cm_1deg: float
    median_translation_cm: float
    median_rotation_deg: float
    mean_latency_ms: float
    hz: float
    mode: str
    map_bytes: int
    n_failed: int

    def to_dict(self) -> dict[str, Any]:
        """The report as a dict, keys in field order (write it with ``core.json_io``)."""
        return asdict(self)


#: The report keys DESIGN.md fixes: every :class:`EvaluationReport` field but ``n_failed``.
DESIGN_REPORT_KEYS: frozenset[str] = frozenset(
    f.name for f in fields(EvaluationReport) if f.name != "n_failed")


def summarize(
    evaluations: Sequence[FrameEvaluation], mode: str, map_bytes: int
) -> EvaluationReport:
    """The evaluation report of per-frame outcomes.

    Raises:
        EvaluationError: when ``evaluations`` is empty.
    """
    if not evaluations:
        raise EvaluationError("cannot summarize an empty evaluation")
    translation_m = np.array([e.translation_m for e in evaluations])
    rotation_deg = np.array([e.rotation_deg for e in evaluations])
    latency_ms = float(np.mean([e.latency_ms for e in evaluations]))
    recalls = {key: float(np.mean((translation_m < max_m) & (rotation_deg < max_deg)))
               for max_m, max_deg, key in RECALL_THRESHOLDS}
    return EvaluationReport(
        n_queries=len(evaluations),
        **recalls,
        median_translation_cm=float(np.median(translation_m) * 100.0),
        median_rotation_deg=float(np.median(rotation_deg)),
        mean_latency_ms=latency_ms,
        hz=1000.0 / latency_ms if latency_ms > 0 else math.inf,
        mode=mode,
        map_bytes=int(map_bytes),
        n_failed=int(sum(not e.success for e in evaluations)))


def write_report(report: EvaluationReport, path: str | Path) -> Path:
    """Write the report as JSON atomically (non-finite numbers as ``null``); returns the path."""
    return write_json(path, report.to_dict())


def _top_view_axes(points_N3: NDArray[np.float64]) -> NDArray[np.float64]:
    """Two orthonormal axes (2, 3) spanning the plane of largest spread (PCA)."""
    centred = points_N3 - points_N3.mean(axis=0)
    _, _, Vt = np.linalg.svd(centred, full_matrices=False)
    return Vt[:2]


def plot_evaluation(
    evaluations: Sequence[FrameEvaluation], path: str | Path, title: str = ""
) -> Path:
    """Save a PNG: trajectory top view (estimates coloured by error) and the error CDFs."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    gt_N3 = np.stack([e.T_world_cam_gt[:3, 3] for e in evaluations])
    axes_23 = _top_view_axes(gt_N3) if len(gt_N3) >= 3 else np.eye(3)[:2]
    gt_2d = gt_N3 @ axes_23.T
    ok = [e for e in evaluations if e.T_world_cam_est is not None]
    figure, (ax_top, ax_cdf) = plt.subplots(1, 2, figsize=(13, 5.5))
    ax_top.plot(gt_2d[:, 0], gt_2d[:, 1], "-", color="0.6", lw=1, label="ground truth")
    if ok:
        est_2d = np.stack([e.T_world_cam_est[:3, 3] for e in ok]) @ axes_23.T  # type: ignore[index]
        errors_cm = np.array([e.translation_m * 100.0 for e in ok])
        points = ax_top.scatter(est_2d[:, 0], est_2d[:, 1], c=np.minimum(errors_cm, 20.0),
                                cmap="viridis_r", s=12, label="estimate")
        figure.colorbar(points, ax=ax_top, label="camera-centre error (cm, clipped at 20)")
    failed = np.array([not e.success for e in evaluations])
    if failed.any():
        ax_top.scatter(gt_2d[failed, 0], gt_2d[failed, 1], marker="x", color="red", s=25,
                       label=f"failed ({int(failed.sum())})")
    ax_top.set_aspect("equal", adjustable="datalim")
    ax_top.set_xlabel("principal axis 1 (m)")
    ax_top.set_ylabel("principal axis 2 (m)")
    ax_top.set_title("trajectory, top view")
    ax_top.legend(loc="best", fontsize=8)
    n = len(evaluations)
    fractions = np.arange(1, n + 1) / n
    # failures (infinite error) plot off the right edge
    translation_cm = np.minimum(np.sort([e.translation_m * 100.0 for e in evaluations]), 1e6)
    rotation_deg = np.minimum(np.sort([e.rotation_deg for e in evaluations]), 1e6)
    ax_cdf.step(translation_cm, fractions, where="post", label="translation (cm)")
    ax_cdf.step(rotation_deg, fractions, where="post", label="rotation (deg)")
    for threshold in (1.0, 2.0, 5.0):
        ax_cdf.axvline(threshold, color="0.85", lw=0.8)
    ax_cdf.set_xlim(0, 20)
    ax_cdf.set_ylim(0, 1)
    ax_cdf.set_xlabel("error (cm or deg)")
    ax_cdf.set_ylabel("fraction of queries")
    ax_cdf.set_title("error CDF (failures never reach 1)")
    ax_cdf.legend(loc="lower right")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
