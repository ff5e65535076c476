"""The map self-check: which frames are withheld, and how their outcome is summarized."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from seqace_ros.core.json_io import json_text
from seqace_ros.pipeline.evaluation import FrameEvaluation
from seqace_ros.pipeline.mapping.self_check import (
    SelfCheck,
    passes,
    self_check_of,
    split_for_self_check,
    weak_stretches,
)


def test_every_kth_frame_is_withheld_and_the_rest_trained_on() -> None:
    kept, withheld = split_for_self_check(range(100, 125), 10)
    assert withheld == [109, 119]
    assert len(kept) == 23
    assert set(kept).isdisjoint(withheld)
    assert split_for_self_check([3, 4, 5], 0) == ([3, 4, 5], [])
    with pytest.raises(ValueError, match="0 \\(off\\) or >= 2"):
        split_for_self_check([3, 4, 5], 1)


def evaluation(name: str, translation_cm: float, rotation_deg: float = 0.5) -> FrameEvaluation:
    failed = math.isinf(translation_cm)
    return FrameEvaluation(name=name, stamp_ns=0, success=not failed, T_world_cam_est=None,
                           T_world_cam_gt=np.eye(4), translation_m=translation_cm / 100.0,
                           rotation_deg=math.inf if failed else rotation_deg, latency_ms=10.0,
                           num_inliers=0 if failed else 100)


def test_weak_stretches_are_the_longest_runs_of_failures() -> None:
    errors = [1, 9, 8, 2, math.inf, 7, 6, 1, 1, 12, 1, 3]
    evaluations = [evaluation(f"f{i}", e) for i, e in enumerate(errors)]
    evaluations[3] = evaluation("f3", 2.0, rotation_deg=6.0)  # rotation alone fails it
    assert [passes(e) for e in evaluations[:4]] == [True, False, False, False]
    stretches = weak_stretches(evaluations)
    assert [(s.first, s.last, s.frames) for s in stretches] == [
        ("f1", "f6", 6), ("f9", "f9", 1)]
    assert stretches[0].median_translation_cm == pytest.approx(7.5)
    assert weak_stretches(evaluations, max_count=1) == stretches[:1]


def test_self_check_summary() -> None:
    evaluations = [evaluation("a", 1.0), evaluation("b", 3.0), evaluation("c", math.inf),
                   evaluation("d", 1.5)]
    check = self_check_of(evaluations, every=10)
    assert check.n_frames == 4
    assert check.recall_5cm_5deg == pytest.approx(0.75)
    assert check.recall_2cm_2deg == pytest.approx(0.5)
    assert check.n_failed == 1
    assert check.median_translation_cm == pytest.approx(2.25)
    assert [s.first for s in check.weakest] == ["c"]
    assert check.weakest[0].median_translation_cm == math.inf
    line = check.summary()
    assert "4 withheld frames (1 in 10)" in line
    assert "75 % within 5 cm" in line
    assert "weakest: c .. c (1 frames)" in line
    assert check.to_dict()["weakest"][0]["first"] == "c"
    written = json.loads(json_text(check.to_dict()))  # infinities become null
    assert written["weakest"][0]["median_translation_cm"] is None
    assert SelfCheck.from_dict(written) == check
