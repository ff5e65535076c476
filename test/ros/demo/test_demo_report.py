"""The demo's scoring of received poses: matched by stamp, missing poses are failures, latency
figures over the received ones, the console summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ros_harness import import_ros_module

import_ros_module("rclpy")

from seqace_ros.core.camera import Intrinsics  # noqa: E402
from seqace_ros.core.geometry import make_transform  # noqa: E402
from seqace_ros.datasets.base import PosedFrame  # noqa: E402
from seqace_ros.pipeline.evaluation import DESIGN_REPORT_KEYS, EvaluationError  # noqa: E402
from seqace_ros.ros.demo.replay import PoseReceipt, ReplayResult  # noqa: E402
from seqace_ros.ros.demo.report import (  # noqa: E402
    evaluate_replay,
    format_summary,
    stream_report,
)


def frame(index: int) -> PosedFrame:
    return PosedFrame(image_rgb=np.zeros((4, 4, 3), np.uint8),
                      intrinsics=Intrinsics(10.0, 10.0, 2.0, 2.0, 4, 4),
                      T_world_cam=make_transform(np.eye(3), [float(index), 0.0, 0.0]),
                      stamp_ns=index, name=f"frame-{index}")


def shifted(frame: PosedFrame, metres: float) -> np.ndarray:
    T = frame.T_world_cam.copy()
    T[0, 3] += metres
    return T


def test_poses_matched_by_stamp_and_missing_ones_fail() -> None:
    frames = [frame(i) for i in range(4)]
    stamps = [1000, 2000, 3000, 4000]
    poses = {  # out of order, one frame without an answer, one pose for no frame
        3000: PoseReceipt(shifted(frames[2], 0.03), 120.0),
        1000: PoseReceipt(shifted(frames[0], 0.01), 80.0),
        2000: PoseReceipt(shifted(frames[1], 0.30), 100.0),
        9999: PoseReceipt(np.eye(4), 1.0),
    }
    result = ReplayResult(stamps, poses, seconds=0.8,
                          node_counters={"frames_dropped": "1"}, complete=True)
    evaluations = evaluate_replay(frames, result)
    assert [e.success for e in evaluations] == [True, True, True, False]
    assert [round(e.translation_m, 6) for e in evaluations[:3]] == [0.01, 0.3, 0.03]
    assert math.isinf(evaluations[3].translation_m)

    stream = stream_report(evaluations, result, "single", map_bytes=1234, rate_hz=5.0)
    report = stream.to_dict()
    assert set(report) >= DESIGN_REPORT_KEYS
    assert report["n_queries"] == 4
    assert report["n_poses"] == 3
    assert report["n_failed"] == 1
    assert report["recall_5cm_5deg"] == pytest.approx(0.5)  # 1 cm and 3 cm of 4 frames
    assert report["recall_2cm_2deg"] == pytest.approx(0.25)
    assert report["mean_latency_ms"] == pytest.approx(100.0)
    assert report["hz"] == pytest.approx(10.0)
    assert report["latency_p50_ms"] == pytest.approx(100.0)
    assert report["latency_p95_ms"] == pytest.approx(118.0)
    assert report["pose_rate_hz"] == pytest.approx(3 / 0.8)
    assert report["node_frames_dropped"] == 1
    summary = format_summary(stream)
    assert "recall 5cm/5deg: 0.500" in summary
    assert "failed: 1 (dropped by the node: 1)" in summary


def test_no_pose_at_all_reports_failures_without_numbers() -> None:
    frames = [frame(i) for i in range(2)]
    result = ReplayResult([1, 2], {}, seconds=0.4, node_counters={}, complete=False)
    stream = stream_report(evaluate_replay(frames, result), result, "sequence", 10, 5.0)
    report = stream.to_dict()
    assert report["n_poses"] == 0
    assert report["recall_5cm_5deg"] == 0.0
    assert math.isnan(report["latency_p50_ms"])
    assert report["node_frames_dropped"] is None
    assert report["node_finished_in_time"] is False
    assert "p50 n/a" in format_summary(stream)


def test_frames_and_stamps_must_match() -> None:
    result = ReplayResult([1], {}, seconds=0.2, node_counters={}, complete=True)
    with pytest.raises(EvaluationError, match="2 frames but 1 stamps"):
        evaluate_replay([frame(0), frame(1)], result)
