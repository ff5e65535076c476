"""The soak benchmark's arithmetic (bench/soak.py): memory growth and frame accounting."""

from __future__ import annotations

import numpy as np
import pytest
from soak import frame_accounting, rss_summary


def test_rss_summary_ignores_warm_up_and_sees_a_leak() -> None:
    times = np.arange(0.0, 300.0, 1.0)
    flat = [(t, 350.0 if t < 20 else 450.0) for t in times]
    summary = rss_summary(flat, warmup_s=60.0)
    assert (summary["start_mb"], summary["end_mb"], summary["max_mb"]) == (350.0, 450.0, 450.0)
    assert summary["growth_after_warmup_mb"] == 0.0
    assert summary["slope_after_warmup_mb_per_min"] == pytest.approx(0.0, abs=1e-6)
    assert summary["series_max_mb_per_10_s"][:3] == [[0.0, 350.0], [10.0, 350.0], [20.0, 450.0]]

    leak = [(t, 450.0 + t / 60.0) for t in times]  # 1 MiB per minute
    summary = rss_summary(leak, warmup_s=60.0)
    assert summary["slope_after_warmup_mb_per_min"] == pytest.approx(1.0)
    # medians of 60..89 s and 270..299 s: 210 s apart
    assert summary["growth_after_warmup_mb"] == pytest.approx(3.5, abs=0.05)


def test_rss_summary_without_samples_after_warm_up_has_no_growth() -> None:
    summary = rss_summary([(0.0, 300.0), (1.0, 310.0)], warmup_s=60.0)
    assert summary["growth_after_warmup_mb"] is None


def test_frame_accounting_splits_good_and_bad_frames() -> None:
    # 10 good frames (stamps 0..9) and 4 bad ones (10..13); the node answered 4 good
    # frames, failed 1 good (inliers) and 2 bad ones (image, size), dropped the rest.
    kinds = {**{s: "good" for s in range(10)}, 10: "malformed", 11: "size", 12: "encoding",
             13: "nan_camera_info"}
    poses_s = {0: 1.0, 3: 2.0, 6: 3.0, 9: 4.0}
    values = {"frames_received": "14", "frames_dropped": "7", "frames_processed": "7",
              "poses_published": "4", "frames_failed": "3", "time_jumps_back": "0",
              "frames_failed_inliers": "1", "frames_failed_image": "1",
              "frames_failed_size": "1", "rate_hz": "5.0"}
    accounting = frame_accounting(values, kinds, poses_s)
    assert accounting["node_received_or_counted_lost"]
    assert accounting["node_finished_all"]
    assert accounting["poses_received_equal_published"]
    assert accounting["good_frames"] == {"sent": 10, "poses": 4, "failed": 1, "dropped": 5,
                                         "lost_in_transport": 0, "balanced": True}
    assert accounting["bad_frames"] == {"sent": 4, "poses": 0, "failed": 2, "dropped": 2}
    assert accounting["node"]["frames_failed_by_kind"] == {"inliers": 1, "image": 1, "size": 1}

    # A frame the node received but neither processed nor counted as dropped shows.
    values_lost = {**values, "frames_dropped": "6"}
    accounting = frame_accounting(values_lost, kinds, poses_s)
    assert not accounting["node_finished_all"]
    assert not accounting["good_frames"]["balanced"]


def test_frames_lost_in_transport_are_accounted_by_the_node_count() -> None:
    # As above, but good frame 5 and bad frame 12 never reached the node (counted as 2 lost).
    kinds = {**{s: "good" for s in range(10)}, 10: "malformed", 11: "size", 12: "encoding",
             13: "nan_camera_info"}
    poses_s = {0: 1.0, 3: 2.0, 6: 3.0, 9: 4.0}
    values = {"frames_received": "12", "frames_dropped": "5", "frames_processed": "7",
              "poses_published": "4", "frames_failed": "3", "time_jumps_back": "0",
              "frames_failed_inliers": "1", "frames_failed_image": "1",
              "frames_failed_size": "1", "frames_lost_in_transport": "2", "rate_hz": "5.0"}
    accounting = frame_accounting(values, kinds, poses_s)
    assert accounting["node_received_or_counted_lost"]
    assert accounting["good_frames"]["balanced"]
    assert accounting["all_frames"]["lost_in_transport"] == 2
    uncounted = frame_accounting({**values, "frames_lost_in_transport": "1"}, kinds, poses_s)
    assert not uncounted["node_received_or_counted_lost"]
    assert not uncounted["good_frames"]["balanced"]
