"""Latest-frame-wins slot, worker thread and running statistics."""

from __future__ import annotations

import math
import threading

import pytest

from seqace_ros.pipeline.localization.stream import LatestSlot, StreamStats, StreamWorker


class FakeClock:
    """Manually advanced monotonic clock (seconds)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slot_keeps_only_the_newest_item_and_reports_drops() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.take(timeout_s=0) == 3
    assert slot.take(timeout_s=0.01) is None
    assert slot.put(4) is False


def test_slot_take_wakes_on_put_and_on_close() -> None:
    slot: LatestSlot[str] = LatestSlot()
    taken: list[str | None] = []
    taker = threading.Thread(target=lambda: taken.append(slot.take(timeout_s=5)))
    taker.start()
    slot.put("frame")
    taker.join(5)
    assert taken == ["frame"]

    closer = threading.Thread(target=lambda: taken.append(slot.take(timeout_s=5)))
    closer.start()
    slot.close()
    closer.join(5)
    assert not closer.is_alive()
    assert taken == ["frame", None]
    slot.put("late")
    assert slot.take(timeout_s=0) is None


def test_slot_clear() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.clear() is False
    slot.put(7)
    assert slot.clear() is True
    assert slot.take(timeout_s=0) is None


def test_stats_rate_latency_percentiles_and_drops() -> None:
    clock = FakeClock()
    stats = StreamStats(window=10, clock=clock)
    empty = stats.snapshot()
    assert (empty.received, empty.processed, empty.rate_hz) == (0, 0, 0.0)
    assert math.isnan(empty.latency_p50_ms)
    assert math.isnan(empty.inlier_ratio)
    assert empty.last_error == ""
    assert math.isnan(empty.last_success_age_s)

    for i in range(20):
        stats.record_received(dropped=i % 2 == 1)
    for i in range(10):  # 10 results at 5 Hz with latencies 10..100 ms
        stats.record_success(latency_ms=10.0 * (i + 1), inlier_ratio=0.5)
        clock.now += 0.2
    stats.record_failure("too few inliers: 12 < 50", inlier_ratio=0.1, kind="inliers")
    clock.now += 1.0
    snap = stats.snapshot()
    assert (snap.received, snap.dropped, snap.processed) == (20, 10, 11)
    assert (snap.succeeded, snap.failed) == (10, 1)
    assert snap.failed_by_kind == {"inliers": 1}
    # window of 10 completion times: 9 successes 0.2 s apart then the failure 0.2 s later
    assert snap.rate_hz == pytest.approx(5.0)
    # the latency window holds the last 10 successes: 10..100 ms
    assert snap.latency_p50_ms == pytest.approx(55.0)
    assert snap.latency_p95_ms == pytest.approx(95.5)
    assert snap.inlier_ratio == pytest.approx((9 * 0.5 + 0.1) / 10)
    assert snap.last_error == "too few inliers: 12 < 50"
    assert snap.last_error_age_s == pytest.approx(1.0)
    assert snap.last_success_age_s == pytest.approx(1.2)


def test_stats_windows_are_bounded() -> None:
    stats = StreamStats(window=5)
    for _ in range(1000):
        stats.record_success(latency_ms=1.0, inlier_ratio=1.0)
    assert len(stats._latencies_ms) == 5
    assert len(stats._done_times_s) == 5
    assert stats.snapshot().processed == 1000


def test_stats_rejects_a_tiny_window() -> None:
    with pytest.raises(ValueError, match="window must be >= 2"):
        StreamStats(window=1)


def test_worker_processes_latest_items_drops_the_rest_and_survives_errors() -> None:
    stats = StreamStats()
    release = threading.Event()
    first_started = threading.Event()
    last_done = threading.Event()
    processed: list[int] = []
    errors: list[str] = []

    def process(item: int) -> None:
        if item == 0:
            first_started.set()
            release.wait(5)
        if item == 13:
            raise RuntimeError("bad frame 13")
        processed.append(item)
        if item == 20:
            last_done.set()

    worker: StreamWorker[int] = StreamWorker(process, lambda e: errors.append(str(e)), stats)
    worker.start()
    worker.submit(0)
    assert first_started.wait(5)
    dropped = [worker.submit(i) for i in range(1, 11)]  # worker busy: only 10 survives
    assert dropped == [False] + [True] * 9
    release.set()
    worker.submit(13)  # replaces 10 unless the worker took 10 already
    worker.submit(20)
    assert last_done.wait(5)
    assert worker.stop(timeout_s=5)
    assert processed[0] == 0
    assert processed[-1] == 20
    assert set(processed) <= {0, 10, 20}
    assert errors in ([], ["bad frame 13"])
    snap = stats.snapshot()
    assert snap.received == 13
    assert snap.dropped == 13 - len(processed) - len(errors)


def test_worker_clear_counts_the_discarded_item_as_dropped() -> None:
    stats = StreamStats()
    release = threading.Event()
    started = threading.Event()

    def process(item: int) -> None:
        started.set()
        release.wait(5)

    worker: StreamWorker[int] = StreamWorker(process, lambda _: None, stats)
    worker.start()
    worker.submit(0)
    assert started.wait(5)
    worker.submit(1)  # pending while 0 is processed
    assert worker.clear() is True
    assert worker.clear() is False  # nothing pending: nothing counted
    release.set()
    assert worker.stop(timeout_s=5)
    snap = stats.snapshot()
    # Every item offered is processed or dropped, whatever discarded it.
    assert (snap.received, snap.dropped) == (2, 1)


def test_stats_count_failures_by_kind() -> None:
    stats = StreamStats()
    for kind in ("image", "inliers", "image", "size"):
        stats.record_failure(f"a {kind} failure", kind=kind)
    stats.record_failure("unlabelled")
    snap = stats.snapshot()
    assert snap.failed == 5
    assert snap.failed_by_kind == {"image": 2, "inliers": 1, "size": 1, "other": 1}


def test_worker_keeps_running_after_an_error() -> None:
    stats = StreamStats()
    done = threading.Event()
    errors: list[Exception] = []

    def process(item: str) -> None:
        if item == "bad":
            raise ValueError("undecodable")
        done.set()

    worker: StreamWorker[str] = StreamWorker(process, errors.append, stats)
    worker.start()
    worker.submit("bad")
    while not errors:
        threading.Event().wait(0.01)
    worker.submit("good")
    assert done.wait(5)
    assert worker.stop()
    assert [str(e) for e in errors] == ["undecodable"]


def test_worker_start_twice_is_an_error() -> None:
    worker: StreamWorker[int] = StreamWorker(lambda _: None, lambda _: None, StreamStats())
    worker.start()
    with pytest.raises(RuntimeError, match="twice"):
        worker.start()
    assert worker.stop()


def test_between_items_waits_for_the_item_in_progress_and_holds_the_next() -> None:
    events: list[str] = []
    started = threading.Event()
    release = threading.Event()
    second_done = threading.Event()

    def process(item: int) -> None:
        events.append(f"start {item}")
        if item == 0:
            started.set()
            release.wait(5)
        events.append(f"end {item}")
        if item == 1:
            second_done.set()

    worker: StreamWorker[int] = StreamWorker(process, lambda _: None, StreamStats())
    worker.start()
    worker.submit(0)
    assert started.wait(5)
    entered = threading.Event()
    leave = threading.Event()

    def exclusive_work() -> None:  # another thread: a new model's warm-up, say
        with worker.between_items():
            events.append("exclusive")
            entered.set()
            leave.wait(5)
            events.append("exclusive done")

    other = threading.Thread(target=exclusive_work)
    other.start()
    assert not entered.wait(0.2)  # item 0 is still in progress
    worker.submit(1)
    release.set()
    assert entered.wait(5)
    assert not second_done.wait(0.2)  # item 1 waits for the context to be left
    leave.set()
    other.join(5)
    assert second_done.wait(5)
    assert worker.stop()
    assert events == ["start 0", "end 0", "exclusive", "exclusive done", "start 1", "end 1"]
