"""The gate between the sequence and single-frame estimates, on hand-made poses."""

from __future__ import annotations

import numpy as np
import pytest

from seqace_ros.core.geometry import make_transform
from seqace_ros.pipeline.localization.sequence import (
    PoseEstimate,
    SequenceConfig,
    gate,
    poses_agree,
)
from seqace_ros.pipeline.localization.single import PoseSource

CONFIG = SequenceConfig(gate_translation_m=0.10, gate_rotation_deg=5.0, max_conflicts=2)
T_HERE = make_transform(np.eye(3), [1.0, 2.0, 0.5])
T_NEAR = make_transform(np.eye(3), [1.05, 2.0, 0.5])  # 5 cm away: agrees with T_HERE
T_FAR = make_transform(np.eye(3), [1.5, 2.0, 0.5])  # 50 cm away: disagrees with both


def _turned_about_y(T_world_cam: np.ndarray, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return T_world_cam @ make_transform([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], np.zeros(3))


def _estimate(T_world_cam: np.ndarray, num_inliers: int, current_inliers: int) -> PoseEstimate:
    return PoseEstimate(T_world_cam, num_inliers, current_inliers)


def test_agreement_bounds_translation_and_rotation() -> None:
    assert poses_agree(T_HERE, T_NEAR, CONFIG)
    assert not poses_agree(T_HERE, T_FAR, CONFIG)
    assert not poses_agree(T_HERE, _turned_about_y(T_HERE, 6.0), CONFIG)
    assert poses_agree(T_HERE, _turned_about_y(T_HERE, 4.0), CONFIG)


def test_without_a_sequence_estimate_the_single_one_is_taken() -> None:
    single = _estimate(T_HERE, 200, 200)
    decision = gate(None, single, None, conflicts=1, config=CONFIG)
    assert (decision.accepted, decision.source, decision.reset_reason, decision.conflicts) == (
        single, PoseSource.SINGLE, "", 0)
    decision = gate(None, None, None, conflicts=1, config=CONFIG)
    assert (decision.accepted, decision.source, decision.conflicts) == (None, PoseSource.NONE, 0)


def test_lone_sequence_estimate_is_taken() -> None:
    sequence = _estimate(T_HERE, 300, 100)
    decision = gate(sequence, None, T_FAR, conflicts=1, config=CONFIG)
    assert decision.accepted is sequence
    assert decision.source is PoseSource.SEQUENCE
    assert (decision.reset_reason, decision.conflicts) == ("", 0)


@pytest.mark.parametrize("prediction", [None, T_FAR])
def test_agreeing_estimates_continue_the_stream_from_the_single_frame_pose(
        prediction: np.ndarray | None) -> None:
    sequence = _estimate(T_HERE, 300, 100)
    single = _estimate(T_NEAR, 500, 500)
    decision = gate(sequence, single, prediction, conflicts=1, config=CONFIG)
    assert decision.accepted is single
    assert decision.source is PoseSource.SEQUENCE  # the carried points confirmed it
    assert (decision.reset_reason, decision.conflicts) == ("", 0)


def test_motion_prediction_settles_a_disagreement() -> None:
    sequence = _estimate(T_HERE, 300, 300)
    single = _estimate(T_FAR, 100, 100)
    # the prediction sides with the single-frame estimate: the sequence one left the motion
    decision = gate(sequence, single, T_FAR, conflicts=1, config=CONFIG)
    assert decision.accepted is single
    assert decision.source is PoseSource.SINGLE
    assert decision.reset_reason == "sequence estimate left the motion prediction"
    assert decision.conflicts == 0
    # the prediction sides with the sequence estimate, even when the single one explains more
    single = _estimate(T_FAR, 900, 900)
    decision = gate(sequence, single, T_NEAR, conflicts=1, config=CONFIG)
    assert decision.accepted is sequence
    assert (decision.reset_reason, decision.conflicts) == ("", 0)


def test_persistent_conflicts_reset_to_the_single_estimate() -> None:
    sequence = _estimate(T_HERE, 300, 100)
    single = _estimate(T_FAR, 400, 400)  # explains more of this frame's patches
    unsure = make_transform(np.eye(3), [1.25, 2.0, 0.5])  # agrees with neither
    for T_pred in (None, unsure):
        first = gate(sequence, single, T_pred, conflicts=0, config=CONFIG)
        assert first.accepted is sequence
        assert (first.source, first.reset_reason, first.conflicts) == (
            PoseSource.SEQUENCE, "", 1)
        second = gate(sequence, single, T_pred, conflicts=first.conflicts, config=CONFIG)
        assert second.accepted is single
        assert second.source is PoseSource.SINGLE
        assert second.reset_reason == (
            "sequence and single-frame estimates disagreed 2 frames in a row")
        assert second.conflicts == 0


def test_a_sequence_estimate_that_explains_this_frame_as_well_clears_conflicts() -> None:
    sequence = _estimate(T_HERE, 300, 400)
    single = _estimate(T_FAR, 400, 400)
    decision = gate(sequence, single, None, conflicts=1, config=CONFIG)
    assert decision.accepted is sequence
    assert (decision.source, decision.reset_reason, decision.conflicts) == (
        PoseSource.SEQUENCE, "", 0)
