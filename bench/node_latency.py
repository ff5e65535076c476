"""Benchmark: publish-to-pose latency and sustained rate of the relocalization node over DDS.

Starts ``python -m seqace_ros.ros.relocalization_node`` as a separate process with the given
map (CPU by default), then from this process publishes real frames as ``sensor_msgs/Image``
(bgr8) + ``CameraInfo`` and times each ``PoseWithCovarianceStamped`` it gets back (matched by
stamp; clocks: this process's monotonic clock at publish and at receipt):

1. paced: one frame every ``1/--rate`` seconds (slow enough that the node is idle when a frame
   arrives): latency p50/p95/mean of the frames that produced a pose;
2. sustained: frames at ``--flood-rate`` for ``--flood-seconds`` (faster than the node): the
   rate of poses it sustains, their latency, and the drop count from its ``/diagnostics``.

After both phases it reads the node's peak resident memory (``VmHWM`` in ``/proc``).

DDS stays on loopback (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``) in a random
``ROS_DOMAIN_ID`` unless one is set, and the node runs in a namespace of its own, so that
another benchmark that happens to draw the same domain cannot mix its messages in.
:class:`BenchClient` and :func:`proc_status_mb` are shared with ``bench/soak.py``.

Usage::

    .venv/bin/python bench/node_latency.py --map MAP.safetensors --json OUT.json \
        [--data ../shared/data/redkitchen_dev] [--frames 500:560] [--rate 2] \
        [--flood-rate 30] [--flood-seconds 20]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from bench_report import emit_report, platform_info

from seqace_ros.ros.demo.children import ChildNode

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "redkitchen_dev"


def use_loopback_dds() -> None:
    """Keep DDS on this machine (children inherit it): loopback discovery, a random domain
    unless ``ROS_DOMAIN_ID`` is set."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))


def percentiles(values_ms: list[float]) -> dict[str, float | None]:
    """p50, p95, mean and max of some latencies (all None when there are none)."""
    if not values_ms:
        return {"p50": None, "p95": None, "mean": None, "max": None}
    values = np.asarray(values_ms)
    return {
        "p50": round(float(np.percentile(values, 50)), 2),
        "p95": round(float(np.percentile(values, 95)), 2),
        "mean": round(float(values.mean()), 2),
        "max": round(float(values.max()), 2),
    }


def proc_status_mb(pid: int, field: str) -> float | None:
    """A memory figure of a running process from ``/proc/PID/status`` in MiB: ``VmRSS``
    (resident now), ``VmHWM`` (peak resident), ...; None where /proc has none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


class BenchClient:
    """This process's side of a relocalization node under benchmark, over DDS.

    Draws a namespace for the node (start it with :attr:`node_ros_args`); publishes
    ``sensor_msgs/Image`` and ``CameraInfo`` on its ``image`` and ``camera_info`` (reliable,
    depth 5); records the receipt time (monotonic seconds) of every pose on its ``pose``, by
    image stamp, and keeps the latest values of its ``/diagnostics`` status. An executor spins
    in a daemon thread. Initialises rclpy's default context; :meth:`close` (or leaving the
    ``with`` block) shuts it down.
    """

    def __init__(self, name: str) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import CameraInfo, Image

        from seqace_ros.ros import conversions
        from seqace_ros.ros.relocalization_node import NODE_NAME

        namespace = f"/bench_{secrets.token_hex(4)}"
        #: ``--ros-args`` for the node: run it in this client's namespace.
        self.node_ros_args = ["-r", f"__ns:={namespace}"]
        #: The node's fully qualified name (its parameter services, its diagnostics' id).
        self.node_name = f"{namespace}/{NODE_NAME}"
        rclpy.init()
        self.node = rclpy.create_node(name)
        self._lock = threading.Lock()
        self._received_s: dict[int, float] = {}
        self._diagnostics: dict[str, str] = {}

        def on_pose(msg: PoseWithCovarianceStamped) -> None:
            with self._lock:
                self._received_s[conversions.header_stamp_ns(msg.header)] = time.monotonic()

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for status in msg.status:
                if status.hardware_id == self.node_name:
                    with self._lock:
                        self._diagnostics = {kv.key: kv.value for kv in status.values}

        self.node.create_subscription(PoseWithCovarianceStamped, f"{namespace}/pose", on_pose,
                                      100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
        self.image_pub = self.node.create_publisher(Image, f"{namespace}/image", 5)
        self.info_pub = self.node.create_publisher(CameraInfo, f"{namespace}/camera_info", 5)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        threading.Thread(target=self._executor.spin, daemon=True).start()

    def __enter__(self) -> BenchClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def wait_for_subscriber(self, timeout_s: float = 30.0) -> None:
        """Wait until the node subscribes to the images (returns anyway after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while self.image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)

    def poses_received_s(self) -> dict[int, float]:
        """Image stamp (ns) -> when its pose arrived (monotonic s), for every pose so far."""
        with self._lock:
            return dict(self._received_s)

    def diagnostics(self) -> dict[str, Any]:
        """The key/values of the latest ``/diagnostics`` message (empty before the first)."""
        with self._lock:
            return dict(self._diagnostics)

    def close(self) -> None:
        """Stop spinning, destroy the node, shut rclpy down."""
        import rclpy

        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", type=Path, required=True, help="map file (seqace map)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="7-Scenes layout folder with the query frames")
    parser.add_argument("--frames", default="500:560", help="query frames START:END")
    parser.add_argument("--rate", type=float, default=2.0, help="paced phase rate, Hz")
    parser.add_argument("--flood-rate", type=float, default=30.0, help="sustained phase, Hz")
    parser.add_argument("--flood-seconds", type=float, default=20.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="report file to write")
    args = parser.parse_args()
    if not args.map.is_file():
        parser.error(f"--map {args.map}: no such file")
    if args.rate <= 0 or args.flood_rate <= 0 or args.flood_seconds <= 0:
        parser.error("--rate, --flood-rate and --flood-seconds must be positive")

    use_loopback_dds()

    from seqace_ros.datasets.base import parse_frame_range
    from seqace_ros.datasets.folder import FolderDataset
    from seqace_ros.ros import conversions
    from seqace_ros.ros.relocalization_node import MAP_READY_LOG

    dataset = FolderDataset(args.data)
    frames = [dataset[i] for i in parse_frame_range(args.frames, len(dataset))]
    images = [conversions.image_msg_from_rgb(f.image_rgb, "bgr8", 0, "camera") for f in frames]
    parameters = {"map_path": str(args.map.resolve()), "device": args.device,
                  "qos_reliability": "reliable"}

    with (tempfile.TemporaryDirectory(prefix="node_latency_") as work,
          BenchClient("node_latency_bench") as client,
          ChildNode("seqace_ros.ros.relocalization_node", "node", parameters, Path(work),
                    ros_args=client.node_ros_args) as node_process):
        node_process.wait_for_log(MAP_READY_LOG, timeout_s=300)
        client.wait_for_subscriber()

        def run(rate_hz: float, count: int, base_ns: int) -> dict[int, float]:
            published_s = {}
            next_time = time.monotonic()
            for k in range(count):
                stamp_ns = base_ns + k * 1_000_000
                frame_index = k % len(frames)
                image = images[frame_index]
                image.header.stamp = conversions.time_msg(stamp_ns)
                client.info_pub.publish(conversions.camera_info_msg(
                    frames[frame_index].intrinsics, stamp_ns, "camera"))
                published_s[stamp_ns] = time.monotonic()
                client.image_pub.publish(image)
                next_time += 1.0 / rate_hz
                time.sleep(max(0.0, next_time - time.monotonic()))
            time.sleep(2.0)
            return published_s

        def latencies(published_s: dict[int, float]) -> list[float]:
            received_s = client.poses_received_s()
            return [1000.0 * (received_s[s] - t) for s, t in published_s.items()
                    if s in received_s]

        paced = run(args.rate, len(frames), 10**12)
        paced_ms = latencies(paced)
        flood_count = round(args.flood_rate * args.flood_seconds)
        flood_start = time.monotonic()
        flood = run(args.flood_rate, flood_count, 2 * 10**12)
        received_s = client.poses_received_s()
        flood_poses = sorted(received_s[s] for s in flood if s in received_s)
        flood_ms = latencies(flood)
        span_s = flood_poses[-1] - flood_poses[0] if len(flood_poses) > 1 else 0.0
        values = client.diagnostics()
        report = {
            "benchmark": "node_latency",
            "paced": {
                "rate_hz": args.rate,
                "frames": len(paced),
                "poses": len(paced_ms),
                "latency_ms": percentiles(paced_ms),
            },
            "sustained": {
                "publish_rate_hz": args.flood_rate,
                "seconds": round(time.monotonic() - flood_start - 2.0, 2),
                "frames": flood_count,
                "poses": len(flood_poses),
                "pose_rate_hz": round((len(flood_poses) - 1) / span_s, 2) if span_s else 0.0,
                "latency_ms": percentiles(flood_ms),
                "node_frames_dropped": int(values.get("frames_dropped", -1)),
                "node_frames_received": int(values.get("frames_received", -1)),
            },
            "node_peak_rss_mb": proc_status_mb(node_process.pid, "VmHWM"),
            "config": {"map": str(args.map), "frames": args.frames, "device": args.device,
                       "transport": "rmw_fastrtps_cpp, loopback, reliable"},
            "platform": platform_info(),
        }
    emit_report(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
