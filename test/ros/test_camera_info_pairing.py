"""Pairing images with camera_info by stamp (no ROS): exact stamp, the newest before within the
tolerance, the latest only while the camera is unchanged, refused otherwise; bounded history."""

from __future__ import annotations

import threading
import time

import pytest

from seqace_ros.ros.camera_info_pairing import (
    PAIRED_BEFORE,
    PAIRED_EXACT,
    PAIRED_LATEST,
    REFUSED,
    CameraInfoHistory,
)

MS = 10**6
S = 10**9
PERIOD_NS = 33 * MS  # a 30 Hz camera
VGA, QVGA = "640x480", "320x240"  # two cameras (opaque values to the history)


def history_of(*stamped: tuple[int, str], **options: int) -> CameraInfoHistory[str]:
    history: CameraInfoHistory[str] = CameraInfoHistory(**options)
    for stamp_ns, camera in stamped:
        history.add(stamp_ns, 0.0, camera)
    return history


def test_exact_stamp_wins_over_a_newer_camera_info() -> None:
    """The camera switches at frame 3; frame 2 (processed late) keeps the old camera."""
    history = history_of(*[(k * PERIOD_NS, VGA) for k in range(3)],
                         *[(k * PERIOD_NS, QVGA) for k in range(3, 6)])
    for k, camera in [(0, VGA), (2, VGA), (3, QVGA), (5, QVGA)]:
        pairing = history.pair(k * PERIOD_NS, tolerance_ns=S, wait_s=0.0)
        assert pairing.how == PAIRED_EXACT
        assert pairing.entry is not None
        assert (pairing.entry.camera, pairing.entry.stamp_ns) == (camera, k * PERIOD_NS)


def test_newest_before_the_image_within_the_tolerance() -> None:
    """camera_info at 1 Hz, images in between: the newest not later than the image."""
    history = history_of((0, VGA), (S, QVGA), (2 * S, QVGA))
    pairing = history.pair(S + 400 * MS, tolerance_ns=S, wait_s=0.0)
    assert pairing.how == PAIRED_BEFORE
    assert pairing.entry is not None
    assert pairing.entry.stamp_ns == S
    assert pairing.note == "camera_info stamped 0.400 s before the image"
    # Never a camera_info stamped after the image, even the closest one.
    early = history.pair(S - 1, tolerance_ns=S, wait_s=0.0)
    assert early.how == PAIRED_BEFORE
    assert early.entry is not None
    assert early.entry.camera == VGA


def test_outside_the_tolerance_the_latest_only_while_the_camera_is_unchanged() -> None:
    steady = history_of((0, VGA), (S, VGA))
    pairing = steady.pair(5 * S, tolerance_ns=S, wait_s=0.0)
    assert pairing.how == PAIRED_LATEST
    assert pairing.entry is not None
    assert pairing.entry.stamp_ns == S
    assert "no camera_info stamped at or up to 1.000 s before the image" in pairing.note
    assert pairing.note.endswith("used the latest, the camera has not changed lately")
    # Stamps from another clock (stamped 0, or later than every image): the same fallback.
    assert history_of((0, VGA)).pair(123 * S, 0, wait_s=0.0).how == PAIRED_LATEST
    assert history_of((900 * S, VGA)).pair(S, S, wait_s=0.0).how == PAIRED_LATEST

    changed = history_of((0, VGA), (S, QVGA))
    refused = changed.pair(5 * S, tolerance_ns=S, wait_s=0.0)
    assert refused.how == REFUSED
    assert refused.entry is None
    assert refused.note.endswith("and the camera changed among them (2 different): cannot "
                                 "tell which camera took the image")
    assert changed.pair(S // 2, tolerance_ns=0, wait_s=0.0).how == REFUSED  # exact only


def test_no_camera_info_is_refused() -> None:
    pairing = history_of().pair(S, S, wait_s=0.0)
    assert (pairing.how, pairing.entry, pairing.note) == (REFUSED, None,
                                                          "no camera_info received")


def test_same_stamp_twice_takes_the_newest() -> None:
    history = history_of((S, VGA), (S, QVGA))
    pairing = history.pair(S, 0, wait_s=0.0)
    assert pairing.entry is not None
    assert pairing.entry.camera == QVGA


def test_history_is_bounded_by_count_span_and_cameras() -> None:
    by_count = history_of(*[(k * MS, VGA) for k in range(50)], max_messages=10)
    assert len(by_count) == 10
    assert by_count.pair(39 * MS, 0, wait_s=0.0).how == PAIRED_LATEST  # dropped: no exact
    by_span = history_of((0, VGA), (5 * S, VGA), (11 * S, VGA))
    assert len(by_span) == 2  # 0 is more than 10 s before 11 s
    cameras = [f"camera{k}" for k in range(5)]
    by_cameras = history_of(*[(k * MS, camera) for k, camera in enumerate(cameras)],
                            max_cameras=3)
    assert [by_cameras.find_camera(lambda c, want=c: c == want) for c in cameras] == [
        None, None, "camera2", "camera3", "camera4"]


def test_stamps_jumping_back_restart_the_history() -> None:
    history = history_of((100 * S, VGA), (101 * S, QVGA))
    assert history.add(S, 0.0, QVGA)  # a bag played in a loop
    assert len(history) == 1
    pairing = history.pair(S + 10 * MS, S, wait_s=0.0)
    assert pairing.how == PAIRED_BEFORE  # not "changed camera": the old pass is gone


def test_a_synchronised_stream_waits_for_the_image_s_own_camera_info() -> None:
    """The image of a camera change arrives before its camera_info: it waits for it."""
    history = history_of((0, VGA))
    assert history.pair(0, S).how == PAIRED_EXACT  # the stream is synchronised
    late = threading.Timer(0.03, history.add, (PERIOD_NS, 0.0, QVGA))
    late.start()
    pairing = history.pair(PERIOD_NS, S, wait_s=5.0)
    late.join()
    assert pairing.how == PAIRED_EXACT
    assert pairing.entry is not None
    assert pairing.entry.camera == QVGA


def test_waits_are_bounded_and_only_on_a_synchronised_stream() -> None:
    history = history_of((0, VGA))
    assert history.pair(0, S).how == PAIRED_EXACT
    start = time.monotonic()
    lost = history.pair(PERIOD_NS, S, wait_s=0.05)  # its camera_info never comes
    assert 0.04 <= time.monotonic() - start < 2.0
    assert lost.how == PAIRED_BEFORE
    start = time.monotonic()
    assert history.pair(2 * PERIOD_NS, S, wait_s=5.0).how == PAIRED_BEFORE  # no longer waits
    assert time.monotonic() - start < 1.0
    # A camera_info already past the image: its own will not come, no wait.
    history.add(3 * PERIOD_NS, 0.0, VGA)
    assert history.pair(3 * PERIOD_NS, S).how == PAIRED_EXACT
    start = time.monotonic()
    history.add(10 * PERIOD_NS, 0.0, VGA)
    assert history.pair(4 * PERIOD_NS, S, wait_s=5.0).how == PAIRED_BEFORE
    assert time.monotonic() - start < 1.0


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_messages and max_cameras must be >= 1"):
        CameraInfoHistory(max_messages=0)
