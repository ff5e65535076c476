"""Latest-frame-wins processing of a live image stream: one slot, one worker thread, stats.

When inference is slower than the camera, queueing frames only adds latency and memory. A
:class:`LatestSlot` holds at most one pending item: a newer item replaces the older one,
which counts as dropped. A :class:`StreamWorker` thread takes items from the slot and
processes them, so the producer (a ROS subscription callback) never blocks. A
:class:`StreamStats` keeps bounded running statistics (rate, latency percentiles, inlier
ratio, drop count, failures by kind, last error) for diagnostics. No ROS import: the ROS node
and the benchmarks share it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

Item = TypeVar("Item")


class LatestSlot(Generic[Item]):
    """A thread-safe slot holding the newest unprocessed item (capacity one)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Item | None = None
        self._closed = False

    def put(self, item: Item) -> bool:
        """Store ``item``, replacing any pending one; True when a pending item was dropped."""
        with self._condition:
            dropped = self._item is not None
            self._item = item
            self._condition.notify()
            return dropped

    def take(self, timeout_s: float | None = None) -> Item | None:
        """Remove and return the pending item, waiting up to ``timeout_s`` (``None``: forever).

        Returns ``None`` on timeout or once the slot is closed.
        """
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout_s)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def clear(self) -> bool:
        """Discard the pending item; True when there was one."""
        with self._condition:
            had_item = self._item is not None
            self._item = None
            return had_item

    def close(self) -> None:
        """Wake every waiter; :meth:`take` returns ``None`` from now on."""
        with self._condition:
            self._closed = True
            self._item = None
            self._condition.notify_all()


@dataclass(frozen=True)
class StatsSnapshot:
    """Running statistics of a stream at one instant.

    Attributes:
        received: items offered to the worker.
        dropped: items never processed: replaced in the slot by a newer one before the worker
            took them, or discarded from it (:meth:`StreamWorker.clear`).
        processed: items the worker finished (whatever the outcome).
        succeeded: processed items that produced an accepted result (a published pose).
        failed: processed items that did not (bad input, too few inliers, errors).
        failed_by_kind: ``failed`` split by the kind the caller named for each failure
            (``"image"``, ``"inliers"``, ...), kinds in first-seen order.
        rate_hz: processed items per second over the recent window (0 with < 2 items).
        latency_p50_ms: median receive-to-result latency over the recent window (NaN if none).
        latency_p95_ms: 95th percentile of the same.
        inlier_ratio: mean inlier ratio of recent processed items (NaN if none).
        last_error: the most recent failure reason ("" when none yet).
        last_error_age_s: seconds since that failure (NaN when none).
        last_success_age_s: seconds since the last accepted result (NaN when none).
    """

    received: int
    dropped: int
    processed: int
    succeeded: int
    failed: int
    failed_by_kind: dict[str, int]
    rate_hz: float
    latency_p50_ms: float
    latency_p95_ms: float
    inlier_ratio: float
    last_error: str
    last_error_age_s: float
    last_success_age_s: float


class StreamStats:
    """Thread-safe counters and bounded windows (memory stays flat however long it runs).

    Args:
        window: how many recent items the rate, latency and inlier-ratio figures cover.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, window: int = 100, clock: Callable[[], float] = time.monotonic) -> None:
        if window < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        self._clock = clock
        self._lock = threading.Lock()
        self._received = 0
        self._dropped = 0
        self._processed = 0
        self._succeeded = 0
        self._failed_by_kind: dict[str, int] = {}
        self._done_times_s: deque[float] = deque(maxlen=window)
        self._latencies_ms: deque[float] = deque(maxlen=window)
        self._inlier_ratios: deque[float] = deque(maxlen=window)
        self._last_error = ""
        self._last_error_time_s = float("nan")
        self._last_success_time_s = float("nan")

    def record_received(self, dropped: bool) -> None:
        """One item offered; ``dropped`` when it replaced a pending one."""
        with self._lock:
            self._received += 1
            self._dropped += int(dropped)

    def record_discarded(self) -> None:
        """One pending item thrown away unprocessed (counted as dropped)."""
        with self._lock:
            self._dropped += 1

    def record_success(self, latency_ms: float, inlier_ratio: float) -> None:
        """One item processed into an accepted result."""
        with self._lock:
            now = self._clock()
            self._processed += 1
            self._succeeded += 1
            self._done_times_s.append(now)
            self._latencies_ms.append(latency_ms)
            self._inlier_ratios.append(inlier_ratio)
            self._last_success_time_s = now

    def record_failure(
        self, reason: str, inlier_ratio: float | None = None, kind: str = "other"
    ) -> None:
        """One item processed without an accepted result, why, and the kind of failure
        (a short label counted in :attr:`StatsSnapshot.failed_by_kind`)."""
        with self._lock:
            now = self._clock()
            self._processed += 1
            self._failed_by_kind[kind] = self._failed_by_kind.get(kind, 0) + 1
            self._done_times_s.append(now)
            if inlier_ratio is not None:
                self._inlier_ratios.append(inlier_ratio)
            self._record_error(reason, now)

    def record_error(self, reason: str) -> None:
        """A problem outside item processing (missing calibration, a rejected map)."""
        with self._lock:
            self._record_error(reason, self._clock())

    def _record_error(self, reason: str, now: float) -> None:
        self._last_error = reason
        self._last_error_time_s = now

    def snapshot(self) -> StatsSnapshot:
        """The current figures."""
        with self._lock:
            now = self._clock()
            times = list(self._done_times_s)
            latencies = np.asarray(self._latencies_ms, dtype=np.float64)
            ratios = np.asarray(self._inlier_ratios, dtype=np.float64)
            span = times[-1] - times[0] if len(times) >= 2 else 0.0
            return StatsSnapshot(
                received=self._received,
                dropped=self._dropped,
                processed=self._processed,
                succeeded=self._succeeded,
                failed=self._processed - self._succeeded,
                failed_by_kind=dict(self._failed_by_kind),
                rate_hz=(len(times) - 1) / span if span > 0 else 0.0,
                latency_p50_ms=float(np.percentile(latencies, 50)) if latencies.size else
                float("nan"),
                latency_p95_ms=float(np.percentile(latencies, 95)) if latencies.size else
                float("nan"),
                inlier_ratio=float(ratios.mean()) if ratios.size else float("nan"),
                last_error=self._last_error,
                last_error_age_s=now - self._last_error_time_s,
                last_success_age_s=now - self._last_success_time_s)


class StreamWorker(Generic[Item]):
    """A worker thread that processes the newest item of a :class:`LatestSlot`.

    Args:
        process: called on the worker thread with each item taken from the slot.
        on_error: called on the worker thread when ``process`` raises; the worker keeps
            running (a live node must not die on one bad frame).
        stats: receives one ``record_received`` per :meth:`submit`.
        name: thread name.
    """

    def __init__(
        self,
        process: Callable[[Item], None],
        on_error: Callable[[Exception], None],
        stats: StreamStats,
        name: str = "stream-worker",
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._stats = stats
        self._slot: LatestSlot[Item] = LatestSlot()
        # Turns between processing and between_items() blocks (which go first when waiting).
        self._turns = threading.Condition()
        self._processing = False
        self._exclusive_waiting = 0
        self._exclusive_active = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def start(self) -> None:
        """Start the thread (once)."""
        if self._started:
            raise RuntimeError("StreamWorker.start() called twice")
        self._started = True
        self._thread.start()

    def submit(self, item: Item) -> bool:
        """Offer ``item`` without blocking; True when it replaced (dropped) a pending item."""
        dropped = self._slot.put(item)
        self._stats.record_received(dropped)
        return dropped

    def clear(self) -> bool:
        """Discard the pending item, if any (counted as dropped); True when there was one."""
        discarded = self._slot.clear()
        if discarded:
            self._stats.record_discarded()
        return discarded

    @contextmanager
    def between_items(self) -> Iterator[None]:
        """A context in which no item is being processed: entering it waits for the item in
        progress, if any, and the worker starts its next item only once the context is left
        (a waiting context goes before the worker's next item).

        For work from another thread that must not overlap the processing, such as a new
        model's warm-up inference: two inferences at once need twice the transient memory,
        and the heap keeps that peak (:mod:`seqace_ros.core.malloc_arenas`).
        """
        with self._turns:
            self._exclusive_waiting += 1
            self._turns.wait_for(lambda: not self._processing and not self._exclusive_active)
            self._exclusive_waiting -= 1
            self._exclusive_active = True
        try:
            yield
        finally:
            with self._turns:
                self._exclusive_active = False
                self._turns.notify_all()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Close the slot and join the thread; True when it finished within ``timeout_s``.

        The item being processed, if any, is finished first.
        """
        self._slot.close()
        if self._started:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        while (item := self._slot.take()) is not None:
            with self._turns:
                self._turns.wait_for(
                    lambda: not self._exclusive_waiting and not self._exclusive_active)
                self._processing = True
            try:
                self._process(item)
            except Exception as error:  # reported through on_error; the worker keeps serving
                self._on_error(error)
            finally:
                with self._turns:
                    self._processing = False
                    self._turns.notify_all()
