"""Diagnostics level and message from the stream statistics and node state."""

from __future__ import annotations

from dataclasses import replace

import pytest
from ros_harness import import_ros_module

import_ros_module("diagnostic_msgs.msg")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from seqace_ros.pipeline.localization.stream import StreamStats  # noqa: E402
from seqace_ros.ros.diagnostics import NodeState, assess, diagnostic_array  # noqa: E402
from seqace_ros.ros.transport_stats import TransportStats  # noqa: E402

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


def test_frames_lost_in_transport_warn_apart_from_busy_drops() -> None:
    clock = Clock()
    stats = StreamStats(clock=clock)
    transport = TransportStats(clock=clock)
    for index in (0, 1, 2, 3, 4, 5, 9):  # sequence numbers 7, 8, 9 never arrived
        stats.record_received(dropped=index == 5)  # frame 5 dropped by the busy node
        transport.record(index * 33_000_000, b"camera", index + 1)
    stats.record_success(latency_ms=80.0, inlier_ratio=0.5)
    state = replace(STATE, transport=transport.snapshot())
    (status,) = diagnostic_array(stats.snapshot(), state, "/node", 0).status
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.WARN
    assert status.message.startswith("3 of 10 frames lost in transport in the last 10 s")
    assert values["frames_lost_in_transport"] == "3"
    assert values["frames_dropped"] == "1"
    assert values["frames_received"] == "7"
    assert values["transport_loss_method"] == "publication sequence numbers"

    clock.now = 11.0  # the losses are no longer recent: OK again, the total stays
    stats.record_success(latency_ms=80.0, inlier_ratio=0.5)
    state = replace(STATE, transport=transport.snapshot())
    (status,) = diagnostic_array(stats.snapshot(), state, "/node", 0).status
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.OK
    assert values["frames_lost_in_transport"] == "3"
    assert values["frames_lost_in_transport_recent"] == "0"


def test_on_demand_idle_is_ok_unless_the_last_request_failed() -> None:
    clock = Clock()
    stats = StreamStats(clock=clock)
    idle = replace(STATE, trigger="idle: waiting for ~/relocalize", idle=True,
                   frames_ignored=40, relocalize_requests=0)
    assert assess(stats.snapshot(), idle) == (DiagnosticStatus.OK,
                                              "on_demand: idle, waiting for ~/relocalize")
    clock.now = 1.0
    stats.record_failure("no pose: 0.00 m ... 3.20 m and 2.0 deg from the prior")
    level, message = assess(stats.snapshot(), idle)
    assert level == DiagnosticStatus.WARN
    assert "from the prior" in message
    clock.now = 2.0
    stats.record_success(latency_ms=90.0, inlier_ratio=0.5)
    assert assess(stats.snapshot(), idle)[0] == DiagnosticStatus.OK
    # Not idle (a window is open): the usual levels.
    localizing = replace(idle, idle=False, trigger="localizing: 0 of 3 poses accepted")
    assert assess(StreamStats().snapshot(), localizing)[0] == DiagnosticStatus.WARN


def test_array_carries_trigger_tf_initial_pose_and_prior_state() -> None:
    state = replace(STATE, trigger="localizing: 1 of 3 poses accepted, 4.0 s left",
                    frames_ignored=12, relocalize_requests=2,
                    tf="map -> odom: root of the tree of 'camera_optical'",
                    initial_pose="not confident: 80 inliers < 100", initial_poses_published=1,
                    prior="0.20 m and 3.0 deg from the prior (gate 1.0 m, 45.0 deg)",
                    prior_rejections=4)
    (status,) = diagnostic_array(StreamStats().snapshot(), state, "/node", 0).status
    values = {kv.key: kv.value for kv in status.values}
    assert values["trigger"] == "localizing: 1 of 3 poses accepted, 4.0 s left"
    assert values["frames_ignored"] == "12"
    assert values["relocalize_requests"] == "2"
    assert values["tf"] == "map -> odom: root of the tree of 'camera_optical'"
    assert values["initial_pose"] == "not confident: 80 inliers < 100"
    assert values["initial_poses_published"] == "1"
    assert values["prior"].startswith("0.20 m and 3.0 deg from the prior")
    assert values["prior_rejections"] == "4"
