"""Diagnostics level and message from the stream statistics and node state."""

from __future__ import annotations

import pytest
from ros_harness import import_ros_module

import_ros_module("diagnostic_msgs.msg")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from seqace_ros.pipeline.localization.stream import StreamStats  # noqa: E402
from seqace_ros.ros.diagnostics import NodeState, assess, diagnostic_array  # noqa: E402

pytestmark = pytest.mark.ros

STATE = NodeState(map_path="/maps/k.safetensors", map_problem="", mode="single",
                  tf_backend="tf2_msgs topics", image_topic="/camera/image_raw")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_levels_follow_the_latest_event() -> None:
    clock = Clock()
    stats = StreamStats(clock=clock)
    level, message = assess(stats.snapshot(), STATE)
    assert level == DiagnosticStatus.WARN
    assert message == "no image received yet on /camera/image_raw"

    stats.record_received(dropped=False)
    clock.now = 1.0
    stats.record_failure("bad image on /camera/image_raw: unsupported image encoding 'yuv'")
    level, message = assess(stats.snapshot(), STATE)
    assert level == DiagnosticStatus.WARN
    assert "unsupported image encoding" in message

    clock.now = 2.0
    stats.record_success(latency_ms=80.0, inlier_ratio=0.4)
    clock.now = 2.5
    assert assess(stats.snapshot(), STATE)[0] == DiagnosticStatus.OK

    clock.now = 3.0
    stats.record_error("rejected map_path: not a map file")
    assert assess(stats.snapshot(), STATE) == (DiagnosticStatus.WARN,
                                               "rejected map_path: not a map file")


def test_no_map_is_an_error() -> None:
    stats = StreamStats()
    state = NodeState("", "cannot load map '/x': MapFileError: truncated", "single", "tf2_ros",
                      "/image")
    level, message = assess(stats.snapshot(), state)
    assert level == DiagnosticStatus.ERROR
    assert message == "no map loaded: cannot load map '/x': MapFileError: truncated"


def test_array_carries_counters_and_figures() -> None:
    clock = Clock()
    stats = StreamStats(clock=clock)
    for dropped in (False, True, True):
        stats.record_received(dropped)
    stats.record_success(latency_ms=100.0, inlier_ratio=0.5)
    clock.now = 0.5
    stats.record_success(latency_ms=120.0, inlier_ratio=0.3)
    clock.now = 1.0
    stats.record_failure("bad image on /image: unsupported image encoding 'yuv'", kind="image")
    array = diagnostic_array(stats.snapshot(), STATE, "/relocalization_node", 1_500_000_000)
    (status,) = array.status
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.WARN
    assert status.message == "bad image on /image: unsupported image encoding 'yuv'"
    assert values["frames_received"] == "3"
    assert values["frames_dropped"] == "2"
    assert values["poses_published"] == "2"
    assert (values["frames_failed"], values["frames_failed_image"]) == ("1", "1")
    assert values["latency_p50_ms"] == "110.000"
    assert values["inlier_ratio"] == "0.400"
    assert values["map_path"] == "/maps/k.safetensors"
    assert (array.header.stamp.sec, array.header.stamp.nanosec) == (1, 500_000_000)


def test_array_carries_the_mode_status() -> None:
    state = NodeState("/maps/k.safetensors", "", "sequence", "tf2_ros", "/image",
                      mode_status={"source": "sequence", "tracked_points": "120",
                                   "reset_reason": ""})
    (status,) = diagnostic_array(StreamStats().snapshot(), state, "/node", 0).status
    values = {kv.key: kv.value for kv in status.values}
    assert values["mode"] == "sequence"
    assert values["source"] == "sequence"
    assert values["tracked_points"] == "120"
    assert values["reset_reason"] == ""
