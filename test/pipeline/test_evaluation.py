"""Evaluation: recall counting (both thresholds, failures count), report keys, plot, JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from seqace_ros.core.geometry import make_transform
from seqace_ros.pipeline.evaluation import (
    DESIGN_REPORT_KEYS,
    EvaluationError,
    FrameEvaluation,
    plot_evaluation,
    summarize,
    write_report,
)


def record(translation_m: float, rotation_deg: float, latency_ms: float = 50.0,
           x: float = 0.0) -> FrameEvaluation:
    success = math.isfinite(translation_m)
    T_gt = make_transform(np.eye(3), [x, 0.0, x * 0.5])
    T_est = make_transform(np.eye(3), [x + translation_m, 0.0, x * 0.5]) if success else None
    return FrameEvaluation("f", 0, success, T_est, T_gt, translation_m, rotation_deg, latency_ms,
                           100 if success else 0)


def test_recalls_need_both_errors_under_threshold_and_count_failures() -> None:
    evaluations = [
        record(0.005, 0.5),   # within 1cm/1deg
        record(0.015, 3.0),   # 1.5 cm but 3 deg: only 5cm/5deg
        record(0.03, 0.1),    # 3 cm: only 5cm/5deg
        record(0.10, 0.1),    # 10 cm: none
        record(math.inf, math.inf),  # failure: none
    ]
    report = summarize(evaluations, "single", 1234).to_dict()
    assert set(report) >= DESIGN_REPORT_KEYS
    assert report["n_queries"] == 5
    assert report["recall_5cm_5deg"] == pytest.approx(3 / 5)
    assert report["recall_2cm_2deg"] == pytest.approx(1 / 5)
    assert report["recall_1cm_1deg"] == pytest.approx(1 / 5)
    assert report["median_translation_cm"] == pytest.approx(3.0)
    assert report["median_rotation_deg"] == pytest.approx(0.5)
    assert report["mean_latency_ms"] == pytest.approx(50.0)
    assert report["hz"] == pytest.approx(20.0)
    assert report["mode"] == "single"
    assert report["map_bytes"] == 1234
    assert report["n_failed"] == 1


def test_empty_evaluation_is_an_error() -> None:
    with pytest.raises(EvaluationError):
        summarize([], "single", 0)


def test_report_json_and_plot(tmp_path: Path) -> None:
    evaluations = [record(0.01 * i, 0.2 * i, x=0.1 * i) for i in range(8)]
    evaluations.append(record(math.inf, math.inf, x=1.0))
    report = summarize(evaluations[:3] + [record(math.inf, math.inf)] * 3, "single", 1)
    assert report.median_translation_cm == math.inf
    write_report(report, tmp_path / "r.json")
    loaded = json.loads((tmp_path / "r.json").read_text())
    assert loaded["median_translation_cm"] is None  # JSON has no infinity
    assert loaded["recall_5cm_5deg"] == pytest.approx(3 / 6)
    plot_evaluation(evaluations, tmp_path / "p.png", title="test")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "r.json"]
