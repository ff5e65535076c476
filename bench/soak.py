"""Soak: the relocalization node under a 30 Hz camera for minutes, with map hot-swaps and
hostile input mixed in (issue 16, "Load").

Starts ``python -m seqace_ros.ros.relocalization_node`` as a separate process on the first
map (CPU, reliable QoS so that DDS loses nothing that could hide a miscount), then from this
process, for ``--duration-s`` seconds:

- publishes a frame every ``1/--rate`` seconds: ``CameraInfo`` then ``sensor_msgs/Image``
  (bgr8) of the real query frames, stamps increasing;
- turns a random share ``--bad-share`` of the frames into bad ones, in equal parts: a
  malformed image (data shorter than ``height * step``, or ``step`` shorter than a row), a
  wrong encoding (a real 16UC1 depth image, or ``yuv422``), a wrong size (160x120 under the
  camera_info's size), or a NaN in the CameraInfo's K (sent with a good image);
- changes the camera every ``--camera-change-s`` seconds between the full 640x480 camera and
  a 320x240 one (images and CameraInfo both change);
- every ``--swap-every-s`` seconds sets ``map_path`` through the parameter service,
  alternating between the ``--maps``; swap number ``--corrupt-swap`` instead sets a corrupt
  map (the first map cut in half), which must be rejected with the old map kept;
- samples the node's resident memory (``VmRSS`` of its PID in ``/proc``) every second.

Then it waits until the node has finished with every frame and reports: whether the node
stayed up, memory (start, end, max, and the growth after ``--warmup-s``: median of the last
30 s minus median of the 30 s after the warm-up, plus a least-squares slope), every swap
(accepted or rejected and why, when the new map was in use, frames sent and poses received
until the next swap),
and the accounting of frames against the node's ``/diagnostics`` counters: every frame it
received was either answered with a pose, counted as failed (by kind) or counted as dropped
(latest-frame-wins: the node skips frames while it is busy). Exits 1 when an acceptance check
fails.

DDS stays on loopback in a random ``ROS_DOMAIN_ID`` unless one is set, the node in a
namespace of its own (:class:`node_latency.BenchClient`).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/soak.py --maps A.map B.map \
        --json bench/results/soak.json [--duration-s 600] [--rate 30] [--frames 100:200]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from bench_report import emit_report, platform_info
from node_latency import (
    DEFAULT_DATA,
    BenchClient,
    percentiles,
    proc_status_mb,
    use_loopback_dds,
)

from seqace_ros.ros.demo.children import ChildNode

#: Kinds of bad frames, in equal parts; what the node should count each as when it
#: processes it (its ``frames_failed_<kind>``).
BAD_KINDS = {"malformed": "image", "encoding": "image", "size": "size",
             "nan_camera_info": "camera_info"}
#: Failure kinds that bad frames cause; every other kind is a good frame's failure.
BAD_FAILURE_KINDS = frozenset(BAD_KINDS.values())
RSS_WINDOW_S = 30.0
#: The report's memory series: the largest sample of each this many seconds.
RSS_SERIES_STEP_S = 10.0
MAX_RSS_GROWTH_MB = 10.0
CAMERA_FRAME = "camera"


@dataclass
class Swap:
    """One ``map_path`` change: what was asked, what the node answered, when it took effect."""

    at_s: float
    path: str
    corrupt: bool
    future: Any
    accepted: bool | None = None
    reason: str = ""
    in_use_after_s: float | None = None
    map_in_use_before_next: str = ""

    def report(self, frames_sent: int, poses: int) -> dict[str, Any]:
        return {"at_s": round(self.at_s, 1), "path": self.path, "corrupt": self.corrupt,
                "accepted": self.accepted, "reason": self.reason,
                "in_use_after_s": None if self.in_use_after_s is None
                else round(self.in_use_after_s, 2),
                "map_in_use_before_next": self.map_in_use_before_next,
                "frames_sent_until_next": frames_sent, "poses_until_next": poses}


class MapSwapper:
    """Sets ``map_path`` through the node's parameter service on schedule, and follows up.

    Args:
        client: the benchmark's side of the node.
        maps: good maps; the node starts on the first, each swap sets the next in turn.
        corrupt: the corrupt map file.
        every_s: seconds between swaps.
        corrupt_swap: which swap (1 = the first) sets ``corrupt``; 0: none.
    """

    def __init__(self, client: BenchClient, maps: list[str], corrupt: str, every_s: float,
                 corrupt_swap: int) -> None:
        from rclpy.parameter_client import AsyncParameterClient

        self._client = client
        self._parameters = AsyncParameterClient(client.node, client.node_name)
        if not self._parameters.wait_for_services(timeout_sec=30):
            raise RuntimeError(f"no parameter services of {client.node_name}")
        self._maps = maps
        self._corrupt = corrupt
        self._every_s = every_s
        self._corrupt_swap = corrupt_swap
        self._good = 0
        self.swaps: list[Swap] = []

    def step(self, elapsed_s: float) -> None:
        """Swap when one is due; note the node's answer and when the new map is in use."""
        from rclpy.parameter import Parameter

        number = int(elapsed_s // self._every_s)
        if number > len(self.swaps):
            self._note_map_in_use()
            corrupt = number == self._corrupt_swap
            if not corrupt:
                self._good = (self._good + 1) % len(self._maps)
            path = self._corrupt if corrupt else self._maps[self._good]
            future = self._parameters.set_parameters([Parameter("map_path", value=path)])
            self.swaps.append(Swap(elapsed_s, path, corrupt, future))
        if not self.swaps:
            return
        swap = self.swaps[-1]
        if swap.accepted is None and swap.future.done():
            result = swap.future.result().results[0]
            swap.accepted, swap.reason = result.successful, result.reason
        if (swap.accepted and swap.in_use_after_s is None
                and self._client.diagnostics().get("map_path") == swap.path):
            swap.in_use_after_s = elapsed_s - swap.at_s

    def finish(self) -> None:
        """Note the map in use at the end."""
        self._note_map_in_use()

    def _note_map_in_use(self) -> None:
        if self.swaps:
            self.swaps[-1].map_in_use_before_next = self._client.diagnostics().get(
                "map_path", "")

    def corrupt_rejected_old_kept(self) -> bool:
        """Every corrupt swap was refused with the reason and the map in use stayed."""
        return all(
            swap.accepted is False and "keeping" in swap.reason
            and swap.map_in_use_before_next == (self.swaps[i - 1].map_in_use_before_next
                                                if i else self._maps[0])
            for i, swap in enumerate(self.swaps) if swap.corrupt)


class CameraFeed:
    """What the soak publishes: real frames from two camera modes, and bad frames.

    Args:
        data: 7-Scenes layout folder.
        frames: frame range ``START:END``.
        bad_share: share of frames made bad (kinds of :data:`BAD_KINDS` in equal parts).
        seed: random seed of which frames are bad and how.
    """

    def __init__(self, data: Path, frames: str, bad_share: float, seed: int) -> None:
        from sensor_msgs.msg import Image

        from seqace_ros.datasets.base import parse_frame_range
        from seqace_ros.datasets.folder import FolderDataset
        from seqace_ros.ros import conversions

        self._conversions = conversions
        self._bad_share = bad_share
        self._rng = np.random.default_rng(seed)
        dataset = FolderDataset(data)
        indices = parse_frame_range(frames, len(dataset))
        images_rgb = [dataset[i].image_rgb for i in indices]
        full = dataset[indices[0]].intrinsics
        #: The camera modes: the dataset's 640x480 camera and the same at 320x240.
        self.cameras = [full, full.resized(full.width // 2, full.height // 2)]
        self._images = [[conversions.image_msg_from_rgb(
            cv2.resize(rgb, (c.width, c.height), interpolation=cv2.INTER_AREA), "bgr8", 0,
            CAMERA_FRAME) for rgb in images_rgb] for c in self.cameras]
        good = self._images[0][0]
        row = good.width * 3
        depth_u16 = cv2.imread(str(data / f"frame-{indices[0]:06d}.depth.png"),
                               cv2.IMREAD_UNCHANGED)
        small = cv2.resize(images_rgb[0], (160, 120), interpolation=cv2.INTER_AREA)
        self._bad_images = {
            "malformed": [
                Image(height=good.height, width=good.width, encoding="bgr8", step=row,
                      data=bytes(good.data[: len(good.data) // 2])),
                Image(height=good.height, width=good.width, encoding="bgr8", step=row - 3,
                      data=bytes(good.data))],
            "encoding": [
                Image(height=depth_u16.shape[0], width=depth_u16.shape[1], encoding="16UC1",
                      step=2 * depth_u16.shape[1], data=depth_u16.tobytes()),
                Image(height=good.height, width=good.width, encoding="yuv422",
                      step=2 * good.width, data=bytes(2 * good.width * good.height))],
            "size": [conversions.image_msg_from_rgb(small, "bgr8", 0, CAMERA_FRAME)],
        }
        for variants in self._bad_images.values():
            for image in variants:
                image.header.frame_id = CAMERA_FRAME

    def frame(self, k: int, camera_mode: int, stamp_ns: int) -> tuple[str, Any, Any]:
        """The ``k``-th frame: its kind (``"good"`` or a bad kind), CameraInfo and Image."""
        info = self._conversions.camera_info_msg(self.cameras[camera_mode], stamp_ns,
                                                 CAMERA_FRAME)
        images = self._images[camera_mode]
        image = images[k % len(images)]
        kind = "good"
        if self._rng.random() < self._bad_share:
            kind = str(self._rng.choice(list(BAD_KINDS)))
            if kind == "nan_camera_info":
                k_9 = list(info.k)
                k_9[0] = math.nan
                info.k = k_9
            else:
                variants = self._bad_images[kind]
                image = variants[int(self._rng.integers(len(variants)))]
        image.header.stamp = self._conversions.time_msg(stamp_ns)
        return kind, info, image


def rss_summary(samples: list[tuple[float, float]], warmup_s: float) -> dict[str, Any]:
    """Start, end and max of (seconds, MiB) memory samples; after ``warmup_s``, the growth
    (median of the last :data:`RSS_WINDOW_S` seconds minus median of the first) and the
    least-squares slope; the largest sample of every :data:`RSS_SERIES_STEP_S` seconds."""
    times = np.array([t for t, _ in samples])
    rss = np.array([r for _, r in samples])
    after = times >= warmup_s
    summary: dict[str, Any] = {
        "samples": len(samples), "start_mb": float(rss[0]), "end_mb": float(rss[-1]),
        "max_mb": float(rss.max()), "max_at_s": round(float(times[rss.argmax()]), 1),
        "warmup_s": warmup_s, "growth_after_warmup_mb": None, "slope_after_warmup_mb_per_min":
        None}
    if after.sum() >= 2:
        t_after, rss_after = times[after], rss[after]
        first = rss_after[t_after < t_after[0] + RSS_WINDOW_S]
        last = rss_after[t_after > t_after[-1] - RSS_WINDOW_S]
        summary["growth_after_warmup_mb"] = round(float(np.median(last) - np.median(first)), 1)
        summary["slope_after_warmup_mb_per_min"] = round(
            float(np.polyfit(t_after, rss_after, 1)[0]) * 60.0, 2)
    bins = (times // RSS_SERIES_STEP_S).astype(int)
    summary["series_max_mb_per_10_s"] = [
        [round(float(times[bins == b][0]), 1), float(rss[bins == b].max())]
        for b in np.unique(bins)]
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=Path, nargs="+", required=True,
                        help="two or more map files (seqace map) of the scene, swapped in turn")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="7-Scenes layout folder with the query frames")
    parser.add_argument("--frames", default="100:200", help="query frames START:END (cycled)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz")
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--swap-every-s", type=float, default=60.0)
    parser.add_argument("--corrupt-swap", type=int, default=4,
                        help="which swap (1 = the first) sets the corrupt map; 0: none")
    parser.add_argument("--camera-change-s", type=float, default=20.0)
    parser.add_argument("--bad-share", type=float, default=0.05,
                        help="share of frames made bad")
    parser.add_argument("--warmup-s", type=float, default=150.0,
                        help="memory growth is measured after this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="report file to write")
    args = parser.parse_args()
    if len(args.maps) < 2 or not all(m.is_file() for m in args.maps):
        parser.error("--maps needs two or more existing map files")
    if min(args.rate, args.duration_s, args.swap_every_s, args.camera_change_s) <= 0:
        parser.error("--rate, --duration-s, --swap-every-s, --camera-change-s must be positive")
    if not 0.0 <= args.bad_share < 1.0:
        parser.error("--bad-share must be in [0, 1)")

    use_loopback_dds()

    from rclpy.impl.implementation_singleton import rclpy_implementation

    from seqace_ros.ros.relocalization_node import MAP_READY_LOG

    RCLError = rclpy_implementation.RCLError  # the RMW refused a write (reliable, full)
    feed = CameraFeed(args.data, args.frames, args.bad_share, args.seed)
    maps = [str(m.resolve()) for m in args.maps]
    parameters = {"map_path": maps[0], "device": args.device, "qos_reliability": "reliable",
                  "publish_inliers": False}
    kinds: dict[int, str] = {}  # image stamp (ns) -> "good" or a bad kind, every image sent
    published_s: dict[int, float] = {}  # image stamp (ns) -> when it was published
    refused = Counter[str]()
    rss: list[tuple[float, float]] = []
    with (tempfile.TemporaryDirectory(prefix="soak_") as work,
          BenchClient("soak_bench") as client,
          ChildNode("seqace_ros.ros.relocalization_node", "node", parameters, Path(work),
                    ros_args=client.node_ros_args) as node_process):
        corrupt = Path(work) / "corrupt.map"
        data = Path(maps[0]).read_bytes()
        corrupt.write_bytes(data[: len(data) // 2])
        node_process.wait_for_log(MAP_READY_LOG, timeout_s=300)
        client.wait_for_subscriber()
        swapper = MapSwapper(client, maps, str(corrupt), args.swap_every_s, args.corrupt_swap)
        pid = int(node_process.pid or 0)
        start = time.monotonic()
        for k in range(round(args.rate * args.duration_s)):
            elapsed_s = time.monotonic() - start
            if elapsed_s >= len(rss) and (sample := proc_status_mb(pid, "VmRSS")) is not None:
                rss.append((elapsed_s, sample))
            swapper.step(elapsed_s)
            stamp_ns = 10**12 + round(k * 1e9 / args.rate)
            camera_mode = int(elapsed_s // args.camera_change_s) % len(feed.cameras)
            kind, info, image = feed.frame(k, camera_mode, stamp_ns)
            try:
                client.info_pub.publish(info)
            except RCLError:
                refused["camera_info"] += 1
            try:
                published_s[stamp_ns] = time.monotonic()
                client.image_pub.publish(image)
                kinds[stamp_ns] = kind
            except RCLError:
                refused["image"] += 1
                del published_s[stamp_ns]
            time.sleep(max(0.0, start + (k + 1) / args.rate - time.monotonic()))
        publish_s = time.monotonic() - start
        swapper.finish()
        values = _drain(client, len(kinds))
        alive = node_process.returncode is None
        if (sample := proc_status_mb(pid, "VmRSS")) is not None:
            rss.append((time.monotonic() - start, sample))
        peak_mb = proc_status_mb(pid, "VmHWM")
        poses_s = client.poses_received_s()
        node_process.stop()
        exit_status = node_process.returncode
        map_ready_lines = [line.split(MAP_READY_LOG, 1)[1].strip()
                           for line in node_process.log_text().splitlines()
                           if MAP_READY_LOG in line]

    swap_intervals = _per_swap(swapper.swaps, published_s, poses_s, start)
    report = _report(args, values, kinds, published_s, poses_s, refused, swapper,
                     swap_intervals, rss, peak_mb, alive, exit_status, map_ready_lines,
                     publish_s, maps)
    emit_report(report, args.json)
    return 0 if all(report["acceptance"].values()) else 1


def _drain(client: BenchClient, sent: int, timeout_s: float = 60.0) -> dict[str, str]:
    """Wait until the node has received ``sent`` frames and finished with each; its last
    ``/diagnostics`` values (a period later, so the last poses are in too)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        values = client.diagnostics()
        received = int(values.get("frames_received", -1))
        finished = int(values.get("frames_dropped", 0)) + int(values.get("frames_processed", 0))
        if received == sent and finished == received:
            break
        time.sleep(0.5)
    time.sleep(2.0)
    return client.diagnostics()


def _per_swap(swaps: list[Swap], published_s: dict[int, float], poses_s: dict[int, float],
              start: float) -> list[tuple[int, int]]:
    """(frames sent, poses received for them) from each swap to the next (or the end)."""
    ends = [swap.at_s for swap in swaps[1:]] + [math.inf]
    intervals = []
    for swap, end_s in zip(swaps, ends, strict=True):
        stamps = [s for s, t in published_s.items() if swap.at_s <= t - start < end_s]
        intervals.append((len(stamps), sum(s in poses_s for s in stamps)))
    return intervals


def frame_accounting(values: dict[str, str], kinds: dict[int, str],
                     poses_s: dict[int, float]) -> dict[str, Any]:
    """Frames sent against the node's ``/diagnostics`` counters.

    Args:
        values: the node's last ``/diagnostics`` key/values, once it finished every frame.
        kinds: image stamp (ns) -> ``"good"`` or a key of :data:`BAD_KINDS`, every frame sent.
        poses_s: image stamp (ns) -> receipt time of its pose, every pose received.

    Returns:
        ``node`` (its counters), ``poses_by_frame_kind``, the totals' checks, and the split
        into good and bad frames (each: sent = poses + failed + dropped). The split is an
        attribution: a processed bad frame fails with a bad-input kind
        (:data:`BAD_FAILURE_KINDS`), so the bad frames that neither gave a pose nor failed
        were dropped, and the other failures and drops are the good frames'. Frames that
        never reached the node are counted by it as lost in transport (sequence-number gaps,
        :mod:`seqace_ros.ros.transport_stats`) without their kind: a lost bad frame shows among
        the bad frames' drops and is taken back from the good frames' drops, so the good
        frames balance as poses + failed + dropped + all lost frames. A good frame
        that the node paired with the neighbouring frame's camera_info (a camera change, a
        NaN camera_info) fails with a bad-input kind and is attributed to the bad frames;
        the totals are exact either way.
    """
    sent = Counter(kinds.values())
    bad_sent = len(kinds) - sent["good"]
    poses_by_kind = Counter(kinds.get(stamp, "unknown stamp") for stamp in poses_s)
    failed_by_kind = {key.removeprefix("frames_failed_"): int(value)
                      for key, value in values.items() if key.startswith("frames_failed_")}
    node: dict[str, Any] = {key: int(values.get(key, -1)) for key in (
        "frames_received", "frames_dropped", "frames_processed", "poses_published",
        "frames_failed", "time_jumps_back")}
    node["frames_lost_in_transport"] = int(values.get("frames_lost_in_transport", 0))
    node["frames_failed_by_kind"] = failed_by_kind
    bad_poses = sum(n for kind, n in poses_by_kind.items() if kind in BAD_KINDS)
    bad_failed = sum(n for kind, n in failed_by_kind.items() if kind in BAD_FAILURE_KINDS)
    bad_dropped = bad_sent - bad_poses - bad_failed
    lost = node["frames_lost_in_transport"]
    good = {"sent": sent["good"], "poses": poses_by_kind["good"],
            "failed": node["frames_failed"] - bad_failed,
            "dropped": node["frames_dropped"] - bad_dropped, "lost_in_transport": lost}
    return {
        "node": node,
        "poses_by_frame_kind": dict(poses_by_kind),
        "frames_sent": len(kinds),
        "node_received_or_counted_lost": node["frames_received"] + lost == len(kinds),
        "node_finished_all": node["frames_dropped"] + node["frames_processed"]
        == node["frames_received"],
        "poses_received_equal_published": len(poses_s) == node["poses_published"],
        "all_frames": {"sent": len(kinds), "poses": len(poses_s),
                       "failed": node["frames_failed"], "dropped": node["frames_dropped"],
                       "lost_in_transport": lost},
        "good_frames": {**good, "balanced": good["poses"] + good["failed"] + good["dropped"]
                        + lost == good["sent"] and min(good["dropped"], bad_dropped) >= 0},
        "bad_frames": {"sent": bad_sent, "poses": bad_poses, "failed": bad_failed,
                       "dropped": bad_dropped},
    }


def _report(args: argparse.Namespace, values: dict[str, str], kinds: dict[int, str],
            published_s: dict[int, float], poses_s: dict[int, float], refused: Counter[str],
            swapper: MapSwapper, swap_intervals: list[tuple[int, int]],
            rss: list[tuple[float, float]], peak_mb: float | None, alive: bool,
            exit_status: int | None, map_ready_lines: list[str], publish_s: float,
            maps: list[str]) -> dict[str, Any]:
    """The soak's JSON report and its acceptance checks."""
    accounting = frame_accounting(values, kinds, poses_s)
    node = accounting.pop("node")
    poses_by_kind = accounting.pop("poses_by_frame_kind")
    latencies_ms = [1000.0 * (poses_s[s] - t) for s, t in published_s.items() if s in poses_s]
    rss_report = rss_summary(rss, args.warmup_s)
    growth_mb = rss_report["growth_after_warmup_mb"]
    acceptance = {
        "node_stayed_up": alive,
        "rss_growth_under_10_mb": growth_mb is not None and growth_mb < MAX_RSS_GROWTH_MB,
        "good_swaps_applied": all(swap.accepted and swap.in_use_after_s is not None
                                  for swap in swapper.swaps if not swap.corrupt),
        "corrupt_map_rejected_old_kept": swapper.corrupt_rejected_old_kept(),
        "every_frame_accounted": accounting["node_received_or_counted_lost"]
        and accounting["node_finished_all"] and accounting["poses_received_equal_published"],
        "good_frames_balanced": accounting["good_frames"]["balanced"],
        "poses_only_for_frames_sent": "unknown stamp" not in poses_by_kind,
        "no_pose_from_a_bad_image": not {"malformed", "encoding", "size"} & set(poses_by_kind),
    }
    return {
        "benchmark": "soak",
        "acceptance": acceptance,
        "duration_s": round(publish_s, 1),
        "publish_rate_hz": round(len(kinds) / publish_s, 2),
        "frames_sent_by_kind": dict(Counter(kinds.values())),
        "frames_refused_by_writer": dict(refused),
        "poses_by_frame_kind": poses_by_kind,
        "pose_latency_ms": percentiles(latencies_ms),
        "node": node,
        "node_rate_hz_at_end": float(values.get("rate_hz", "nan")),
        "accounting": accounting,
        "rss": {**rss_report, "peak_vmhwm_mb": peak_mb},
        "swaps": [swap.report(*interval)
                  for swap, interval in zip(swapper.swaps, swap_intervals, strict=True)],
        "map_ready_log": map_ready_lines,
        "node_exit_status_after_sigint": exit_status,
        "config": {"maps": maps, "data": str(args.data), "frames": args.frames,
                   "rate_hz": args.rate, "duration_s": args.duration_s,
                   "swap_every_s": args.swap_every_s, "corrupt_swap": args.corrupt_swap,
                   "camera_change_s": args.camera_change_s, "bad_share": args.bad_share,
                   "seed": args.seed, "device": args.device,
                   "transport": "rmw_fastrtps_cpp, loopback, reliable"},
        "platform": platform_info(),
    }


if __name__ == "__main__":
    sys.exit(main())
