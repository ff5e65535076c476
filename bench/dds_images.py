"""Benchmark: do large images reach the relocalization node over DDS? Raw and compressed,
best-effort and reliable QoS.

For each case (``--cases``, default all four of raw/compressed x best_effort/reliable) it starts
``python -m seqace_ros.ros.relocalization_node`` as a separate process with the given map and
``image_transport`` and ``qos_reliability`` of the case, then from this process streams real
frames in lockstep: CameraInfo and the image (640x480 bgr8 ``sensor_msgs/Image``, or the same
pixels as a JPEG ``sensor_msgs/CompressedImage``, quality ``--jpeg-quality``) published with the
same reliability as the node's subscription (both sides alike, depth 5, volatile, as a camera
driver's sensor-data profile), then it waits for the pose of that stamp (at most ``--wait-s``)
before the next frame. Stamps advance at ``--camera-rate`` so that the node's stamp-based
estimate has a rate to compare against.

Per case it reports frames published, frames the node received (its ``frames_received``
diagnostic: the ground truth of what arrived), frames it reports lost in transport
(``frames_lost_in_transport``; a lost last frame cannot be seen, so one frame short at most),
frames it dropped while busy (``frames_dropped``, none expected in lockstep), poses, and the
lockstep rate. DDS stays on loopback (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``) in a random
``ROS_DOMAIN_ID`` unless one is set; RMW: whatever ``RMW_IMPLEMENTATION`` selects (the default:
rmw_fastrtps_cpp).

Usage::

    .venv/bin/python bench/dds_images.py --map MAP.safetensors --json OUT.json \
        [--data ../shared/data/redkitchen_dev] [--frames 500:600] \
        [--cases raw:best_effort,raw:reliable,compressed:best_effort,compressed:reliable]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
from bench_report import emit_report, platform_info

from seqace_ros.ros.demo.children import ChildNode

ROOT = Path(__file__).resolve().parents[1]
CASES = ("raw:best_effort", "raw:reliable", "compressed:best_effort", "compressed:reliable")


def _case(text: str) -> tuple[str, str]:
    transport, _, reliability = text.partition(":")
    if transport not in ("raw", "compressed") or reliability not in ("best_effort", "reliable"):
        raise argparse.ArgumentTypeError(
            f"a case is raw|compressed:best_effort|reliable, got {text!r}")
    return transport, reliability


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", type=Path, required=True, help="map file (seqace map)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" /
                        "redkitchen_dev", help="7-Scenes layout folder with the query frames")
    parser.add_argument("--frames", default="500:600", help="query frames START:END")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated transport:reliability cases")
    parser.add_argument("--wait-s", type=float, default=2.0,
                        help="longest wait for a frame's pose before the next frame")
    parser.add_argument("--camera-rate", type=float, default=30.0,
                        help="rate the image stamps advance at, Hz")
    parser.add_argument("--jpeg-quality", type=int, default=90)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="report file to write")
    args = parser.parse_args()
    if not args.map.is_file():
        parser.error(f"--map {args.map}: no such file")
    try:
        cases = [_case(text) for text in args.cases.split(",")]
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))

    from seqace_ros.datasets.base import parse_frame_range
    from seqace_ros.datasets.folder import FolderDataset

    dataset = FolderDataset(args.data)
    frames = [dataset[i] for i in parse_frame_range(args.frames, len(dataset))]
    results = [run_case(transport, reliability, frames, args)
               for transport, reliability in cases]
    report = {
        "benchmark": "dds_images",
        "cases": results,
        "config": {"map": str(args.map), "frames": args.frames, "device": args.device,
                   "wait_s": args.wait_s, "camera_rate_hz": args.camera_rate,
                   "jpeg_quality": args.jpeg_quality,
                   "rmw": os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp (default)"),
                   "discovery_range": "LOCALHOST",
                   "load_average": Path("/proc/loadavg").read_text().split()[:3]},
        "platform": platform_info(),
    }
    emit_report(report, args.json)
    return 0


def run_case(transport: str, reliability: str, frames: list[Any],
             args: argparse.Namespace) -> dict[str, Any]:
    """Stream ``frames`` in lockstep to a fresh node; what arrived and what the node said."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage
    from std_msgs.msg import Header

    from seqace_ros.ros import conversions
    from seqace_ros.ros.relocalization_node import MAP_READY_LOG

    qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                     durability=DurabilityPolicy.VOLATILE,
                     reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable"
                     else ReliabilityPolicy.BEST_EFFORT)
    if transport == "raw":
        messages = [conversions.image_msg_from_rgb(f.image_rgb, "bgr8", 0, "camera")
                    for f in frames]
    else:
        messages = []
        for frame in frames:
            ok, jpeg = cv2.imencode(".jpg", frame.image_rgb[:, :, ::-1],
                                    [cv2.IMWRITE_JPEG_QUALITY, args.jpeg_quality])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            messages.append(CompressedImage(header=Header(frame_id="camera"),
                                            format="bgr8; jpeg compressed bgr8",
                                            data=jpeg.tobytes()))
    message_bytes = sum(len(m.data) for m in messages) / len(messages)
    parameters = {"map_path": str(args.map.resolve()), "device": args.device,
                  "image_transport": transport, "qos_reliability": reliability,
                  "qos_depth": 5, "diagnostics_period_s": 0.25}
    image_topic = "/bench/image" if transport == "raw" else "/bench/image/compressed"
    remaps = ["-r", "image:=/bench/image", "-r", "image/compressed:=/bench/image/compressed",
              "-r", "camera_info:=/bench/camera_info"]
    with (tempfile.TemporaryDirectory(prefix="dds_images_") as work,
          ChildNode("seqace_ros.ros.relocalization_node", "node", parameters, Path(work),
                    ros_args=remaps) as node_process):
        node_process.wait_for_log(MAP_READY_LOG, timeout_s=300)
        rclpy.init()
        node = rclpy.create_node("dds_images_bench")
        poses: dict[int, float] = {}
        diagnostics: list[DiagnosticArray] = []
        condition = threading.Condition()

        def on_pose(msg: PoseWithCovarianceStamped) -> None:
            with condition:
                poses[conversions.header_stamp_ns(msg.header)] = time.monotonic()
                condition.notify_all()

        node.create_subscription(PoseWithCovarianceStamped, "/pose", on_pose, 100)
        node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
        image_pub = node.create_publisher(type(messages[0]), image_topic, qos)
        info_pub = node.create_publisher(CameraInfo, "/bench/camera_info", qos)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        deadline = time.monotonic() + 30
        while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # discovery of the remaining endpoints (pose, diagnostics)
        # Another run in the same ROS_DOMAIN_ID would mix its messages into these counts.
        foreign = sorted(set(node.get_node_names()) - {"relocalization_node",
                                                       "dds_images_bench"})
        if foreign:
            raise RuntimeError(f"other nodes share ROS_DOMAIN_ID "
                               f"{os.environ['ROS_DOMAIN_ID']}: {foreign}; set another one")

        start = time.monotonic()
        period_ns = round(1e9 / args.camera_rate)
        for k, (frame, message) in enumerate(zip(frames, messages, strict=True)):
            stamp_ns = 10**12 + k * period_ns
            message.header.stamp = conversions.time_msg(stamp_ns)
            info_pub.publish(conversions.camera_info_msg(frame.intrinsics, stamp_ns, "camera"))
            image_pub.publish(message)
            with condition:
                condition.wait_for(lambda s=stamp_ns: s in poses, args.wait_s)
        elapsed_s = time.monotonic() - start
        time.sleep(1.0)  # a diagnostics message after the last frame
        values = ({kv.key: kv.value for kv in diagnostics[-1].status[0].values}
                  if diagnostics else {})
        foreign = sorted(set(node.get_node_names()) - {"relocalization_node",
                                                       "dds_images_bench"})
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()

    received = int(values.get("frames_received", -1))
    return {
        "transport": transport,
        "reliability": reliability,
        "message_kb": round(message_bytes / 1024, 1),
        "frames_published": len(frames),
        "frames_received_by_node": received,
        "frames_never_received": len(frames) - received,
        "node_frames_lost_in_transport": int(values.get("frames_lost_in_transport", -1)),
        "node_transport_loss_method": values.get("transport_loss_method", ""),
        "node_frames_dropped_busy": int(values.get("frames_dropped", -1)),
        "poses": len(poses),
        "lockstep_hz": round(len(frames) / elapsed_s, 2),
        "node_camera_rate_hz": values.get("camera_rate_hz", ""),
        "other_nodes_in_domain_at_end": foreign,
    }


if __name__ == "__main__":
    sys.exit(main())
