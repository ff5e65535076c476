"""Frames lost before the image callback: sequence gaps per publisher, stamp gaps by rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqace_ros.ros.transport_stats import (
    GAP_FACTOR,
    METHOD_SEQUENCE,
    METHOD_STAMPS,
    RECENT_S,
    TransportStats,
    message_origin,
)

PERIOD_NS = 33_333_333  # a 30 Hz camera


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feed(stats: TransportStats, stamps_ns, publisher=None, sequences=None) -> list[int]:
    sequences = sequences if sequences is not None else [None] * len(stamps_ns)
    return [stats.record(int(s), publisher, q) for s, q in zip(stamps_ns, sequences, strict=True)]


def test_sequence_gaps_count_exactly_and_the_first_message_is_a_baseline() -> None:
    stats = TransportStats()
    # the subscription matched at the publisher's 57th message: nothing before it is a loss
    sequences = [57, 58, 59, 63, 64, 66]
    lost = feed(stats, [k * PERIOD_NS for k in range(6)], b"cam", sequences)
    assert lost == [0, 0, 0, 3, 0, 1]
    snapshot = stats.snapshot()
    assert (snapshot.received, snapshot.lost, snapshot.method) == (6, 4, METHOD_SEQUENCE)


def test_sequences_are_per_publisher() -> None:
    stats = TransportStats()
    for k in range(1, 20):  # two cameras on one topic, interleaved: no loss
        assert stats.record(k * PERIOD_NS, b"left", k) == 0
        assert stats.record(k * PERIOD_NS + 1000, b"right", 100 + k) == 0
    assert stats.record(20 * PERIOD_NS, b"right", 122) == 2
    assert stats.snapshot().publishers == 2
    assert stats.snapshot().lost == 2


def test_sequence_numbers_win_over_stamp_gaps() -> None:
    stats = TransportStats()
    stamps = [k * PERIOD_NS for k in range(10)] + [15 * PERIOD_NS]  # the camera skipped 5
    lost = feed(stats, stamps, b"cam", list(range(1, 12)))  # but published every frame
    assert sum(lost) == 0


def test_stamp_gaps_against_the_camera_rate() -> None:
    stats = TransportStats()
    rng = np.random.default_rng(0)
    kept = [k for k in range(100) if k not in (40, 41, 42, 70)]
    jitter = rng.uniform(-0.2, 0.2, size=len(kept)) * PERIOD_NS  # +-20 % stamp jitter
    lost = feed(stats, np.array(kept) * PERIOD_NS + jitter)
    assert sum(lost) == 4
    assert lost[kept.index(43)] == 3
    assert lost[kept.index(71)] == 1
    snapshot = stats.snapshot()
    assert snapshot.method == METHOD_STAMPS
    assert snapshot.camera_rate_hz == pytest.approx(30.0, rel=0.1)


def test_no_stamp_judgement_before_the_rate_is_known_and_after_time_jumps_back() -> None:
    stats = TransportStats()
    assert math.isnan(stats.snapshot().camera_rate_hz)
    # a long first interval is not a gap: the rate is not known yet
    assert feed(stats, [0, 10 * PERIOD_NS]) == [0, 0]
    stamps = [(10 + k) * PERIOD_NS for k in range(1, 10)]
    assert sum(feed(stats, stamps)) == 0
    # a looped bag: the stamps restart; no loss, and the rate is learnt again
    assert sum(feed(stats, [k * PERIOD_NS for k in range(3)])) == 0
    assert stats.record(20 * PERIOD_NS) == 0  # 2 intervals since the jump: no judgement yet
    assert sum(feed(stats, [(20 + k) * PERIOD_NS for k in range(1, 5)])) == 0
    assert stats.record(30 * PERIOD_NS) == 5  # the rate is known again


def test_an_interval_just_under_the_gap_factor_is_not_a_loss() -> None:
    stats = TransportStats()
    feed(stats, [k * PERIOD_NS for k in range(10)])
    last = 9 * PERIOD_NS
    assert stats.record(last + int((GAP_FACTOR - 0.01) * PERIOD_NS)) == 0
    assert stats.record(last + int((GAP_FACTOR - 0.01) * PERIOD_NS) + 2 * PERIOD_NS) == 1


def test_recent_losses_expire_and_the_problem_names_the_fix() -> None:
    clock = Clock()
    stats = TransportStats(clock=clock)
    feed(stats, [k * PERIOD_NS for k in range(4)], b"cam", [1, 2, 3, 10])
    snapshot = stats.snapshot()
    assert (snapshot.lost_recent, snapshot.received_recent) == (6, 4)
    assert snapshot.problem().startswith("6 of 10 frames lost in transport in the last 10 s")
    assert "reliable" in snapshot.problem()
    values = snapshot.values()
    assert values["frames_lost_in_transport"] == "6"
    assert values["transport_loss_method"] == METHOD_SEQUENCE
    clock.now = RECENT_S + 0.1
    snapshot = stats.snapshot()
    assert (snapshot.lost, snapshot.lost_recent, snapshot.problem()) == (6, 0, "")


def test_message_origin_reads_rclpy_message_info() -> None:
    info = {"source_timestamp": 1, "received_timestamp": 2, "publication_sequence_number": 7,
            "reception_sequence_number": None,
            "publisher_gid": {"implementation_identifier": "rmw_fastrtps_cpp",
                              "data": b"\x01\x0f\x14\x03"}}
    assert message_origin(info) == (b"\x01\x0f\x14\x03", 7)
    assert message_origin({"publication_sequence_number": None, "publisher_gid": None}) == (
        None, None)
