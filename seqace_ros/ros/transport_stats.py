"""Frames lost between the camera and the node: gaps in what the image subscription receives.

A best-effort subscription loses large images without a word when a UDP fragment of one is
dropped (README: "Large images over DDS"). These frames never reach the node's callback, so
the node's own counters (received, dropped because busy, processed) cannot see them. They
show as gaps in what does arrive:

- the publisher's sequence numbers (``publication_sequence_number`` of rclpy's
  ``MessageInfo``, one sequence per publisher, keyed by its GID): exact, and used whenever
  the middleware provides them (Fast DDS and Cyclone DDS do);
- otherwise the image stamps against the camera's rate (median of the recent stamp intervals):
  an interval of ``k`` periods (more than :data:`GAP_FACTOR` periods) counts ``k - 1`` frames.
  A loss pattern present from the start (every other frame lost) reads as a slower camera.

A publisher's first message sets its baseline (messages published before the subscription
matched are not losses). Stamps that go back (a bag played in a loop) restart the stamp
baseline. No ROS import: :class:`TransportStats` takes plain values and is unit-tested alone;
:func:`message_origin` reads the two fields of rclpy's ``MessageInfo`` dict.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: A stamp interval longer than this many camera periods is a gap.
GAP_FACTOR = 1.5
#: Stamp intervals kept per publisher for the camera's period (median).
RATE_WINDOW = 30
#: Intervals needed before stamp gaps are judged.
MIN_INTERVALS = 5
#: Losses younger than this (seconds) count as recent (diagnostics WARN while there are any).
RECENT_S = 10.0

METHOD_SEQUENCE = "publication sequence numbers"
METHOD_STAMPS = "stamp gaps against the camera rate"


@dataclass(frozen=True)
class TransportSnapshot:
    """What the subscription has seen so far.

    Attributes:
        received: messages that reached the callback.
        lost: messages that never did (sequence or stamp gaps), since the start.
        lost_recent: of those, the ones found in the last :data:`RECENT_S` seconds.
        received_recent: messages received in the last :data:`RECENT_S` seconds.
        method: how ``lost`` was counted for the latest message (:data:`METHOD_SEQUENCE` or
            :data:`METHOD_STAMPS`; "" before any message).
        camera_rate_hz: the latest publisher's rate from its stamps (NaN until known).
        publishers: publishers seen (by GID; stamp-only messages count as one).
    """

    received: int
    lost: int
    lost_recent: int
    received_recent: int
    method: str
    camera_rate_hz: float
    publishers: int

    def values(self) -> dict[str, str]:
        """Diagnostics key values."""
        rate = "nan" if math.isnan(self.camera_rate_hz) else f"{self.camera_rate_hz:.3f}"
        return {
            "frames_lost_in_transport": str(self.lost),
            "frames_lost_in_transport_recent": str(self.lost_recent),
            "transport_loss_method": self.method,
            "camera_rate_hz": rate,
            "image_publishers": str(self.publishers),
        }

    def problem(self) -> str:
        """A warning when frames were lost recently ("" otherwise)."""
        if self.lost_recent == 0:
            return ""
        offered = self.lost_recent + self.received_recent
        return (
            f"{self.lost_recent} of {offered} frames lost in transport in the last "
            f"{RECENT_S:.0f} s (found by {self.method}); for large raw images use reliable "
            f"QoS on both sides (qos_reliability) or compressed images"
        )


@dataclass
class _Publisher:
    """Per-publisher state."""

    last_sequence: int | None = None
    last_stamp_ns: int | None = None
    intervals_ns: deque[int] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))

    def period_ns(self) -> float:
        """Median stamp interval (NaN until :data:`MIN_INTERVALS` are known)."""
        if len(self.intervals_ns) < MIN_INTERVALS:
            return math.nan
        ordered = sorted(self.intervals_ns)
        return float(ordered[len(ordered) // 2])


class TransportStats:
    """Counts image messages lost before they reached the subscription callback (thread-safe).

    Args:
        clock: monotonic seconds (for :data:`RECENT_S`); injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._publishers: dict[bytes | None, _Publisher] = {}
        self._received = 0
        self._lost = 0
        self._method = ""
        self._rate_hz = math.nan
        self._loss_events: deque[tuple[float, int]] = deque()
        self._arrivals: deque[float] = deque()

    def record(self, stamp_ns: int, publisher: bytes | None = None,
               sequence: int | None = None) -> int:
        """Account for one received message; return how many messages were found lost before it.

        Args:
            stamp_ns: the message's header stamp, nanoseconds.
            publisher: the publisher's GID (``None``: unknown; all such messages are taken
                as one publisher's).
            sequence: the publisher's sequence number of this message (``None``: unknown, the
                stamps are used).
        """
        now = self._clock()
        with self._lock:
            state = self._publishers.setdefault(publisher, _Publisher())
            lost = self._stamp_gap(state, stamp_ns)
            if sequence is not None:
                lost = self._sequence_gap(state, sequence)
                self._method = METHOD_SEQUENCE
            else:
                self._method = METHOD_STAMPS
            period_ns = state.period_ns()
            self._rate_hz = 1e9 / period_ns if period_ns > 0 else math.nan
            self._received += 1
            self._arrivals.append(now)
            if lost:
                self._lost += lost
                self._loss_events.append((now, lost))
            self._forget_before(now - RECENT_S)
            return lost

    @staticmethod
    def _sequence_gap(state: _Publisher, sequence: int) -> int:
        previous, state.last_sequence = state.last_sequence, sequence
        if previous is None or sequence <= previous:
            return 0
        return sequence - previous - 1

    @staticmethod
    def _stamp_gap(state: _Publisher, stamp_ns: int) -> int:
        """Update the stamp baseline and rate; the frames missing before ``stamp_ns``."""
        previous, state.last_stamp_ns = state.last_stamp_ns, stamp_ns
        if previous is None:
            return 0
        interval_ns = stamp_ns - previous
        if interval_ns <= 0:  # stamps went back (a looped bag) or repeat: a new baseline
            state.intervals_ns.clear()
            return 0
        period_ns = state.period_ns()
        if math.isnan(period_ns) or interval_ns <= GAP_FACTOR * period_ns:
            state.intervals_ns.append(interval_ns)
            return 0
        return max(round(interval_ns / period_ns) - 1, 1)

    def _forget_before(self, cutoff: float) -> None:
        while self._loss_events and self._loss_events[0][0] < cutoff:
            self._loss_events.popleft()
        while self._arrivals and self._arrivals[0] < cutoff:
            self._arrivals.popleft()

    def snapshot(self) -> TransportSnapshot:
        """The counters now."""
        with self._lock:
            self._forget_before(self._clock() - RECENT_S)
            return TransportSnapshot(
                received=self._received,
                lost=self._lost,
                lost_recent=sum(count for _, count in self._loss_events),
                received_recent=len(self._arrivals),
                method=self._method,
                camera_rate_hz=self._rate_hz,
                publishers=len(self._publishers),
            )


def message_origin(info: Mapping[str, Any]) -> tuple[bytes | None, int | None]:
    """The publisher GID and its sequence number from rclpy's ``MessageInfo`` dict.

    Either is ``None`` when the middleware does not provide it (then the stamps are used).
    """
    gid = info.get("publisher_gid")
    publisher = bytes(gid["data"]) if gid and gid.get("data") is not None else None
    sequence = info.get("publication_sequence_number")
    return publisher, (None if sequence is None else int(sequence))


def incompatible_qos_problem(topic: str, policy: str, reliability: str) -> str:
    """What to tell when a publisher on ``topic`` offers QoS this subscription cannot match."""
    advice = ""
    if policy == "RELIABILITY" and reliability == "reliable":
        advice = (": the publisher is best effort; set qos_reliability: best_effort to receive "
                  "it (large raw images are then lost in transport, and counted), or publish "
                  "reliable or compressed images")
    return (f"a publisher on {topic} offers QoS incompatible with this subscription "
            f"(policy {policy}, qos_reliability {reliability}) and is not received{advice}")
