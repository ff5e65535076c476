"""Replay query frames as a live camera over DDS and collect the poses that come back.

:class:`ReplayNode` publishes each frame as ``sensor_msgs/Image`` (bgr8) plus ``CameraInfo``
stamped with the current time, as a camera driver would, at a fixed rate; it subscribes to the
relocalization node's ``pose`` and ``/diagnostics``. Poses are matched to frames by stamp;
latency is pose receipt minus image stamp (one machine, one clock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from numpy.typing import NDArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from seqace_ros.core.errors import SeqaceError
from seqace_ros.datasets.bag_messages import transform_from_pose_msg
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.ros import conversions
from seqace_ros.ros.diagnostics import STATUS_NAME

#: Reliable so that no frame is lost in transport: the node's own drops (latest-frame-wins)
#: are then the only frames without an answer, and its diagnostics count them.
STREAM_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
POSE_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


#: Seconds between the first camera_info and the first image.
CAMERA_INFO_LEAD_S = 0.5


class ReplayError(SeqaceError, RuntimeError):
    """The relocalization node could not be reached, or did not finish the frames in time."""


@dataclass(frozen=True)
class PoseReceipt:
    """A pose the relocalization node published.

    Attributes:
        T_map_cam: (4, 4) float64 estimated camera-to-map pose (OpenCV optical axes).
        latency_ms: image stamp to receipt of the pose, milliseconds.
    """

    T_map_cam: NDArray[np.float64]
    latency_ms: float


@dataclass(frozen=True)
class ReplayResult:
    """What one replay sent and got back.

    Attributes:
        stamps_ns: stamp of each frame as published, in frame order.
        poses: received poses by image stamp.
        seconds: length of the replay, one period per frame.
        node_counters: the node's last ``/diagnostics`` values (frames_received,
            frames_dropped, frames_processed, ...), as strings; empty when none arrived.
        complete: the node handled every frame before the timeout (frames it had not
            answered by then count as failures all the same).
    """

    stamps_ns: list[int]
    poses: dict[int, PoseReceipt]
    seconds: float
    node_counters: dict[str, str]
    complete: bool


class ReplayNode(Node):
    """Publishes frames on ``image_topic`` and ``camera_info_topic``; collects ``pose_topic``."""

    def __init__(self, image_topic: str, camera_info_topic: str, pose_topic: str,
                 camera_frame: str = "camera_optical", **node_kwargs: object) -> None:
        super().__init__("seqace_demo_replay", **node_kwargs)  # type: ignore[arg-type]
        self._camera_frame = camera_frame
        self._pose_topic = pose_topic
        self._image_pub = self.create_publisher(Image, image_topic, STREAM_QOS)
        self._info_pub = self.create_publisher(CameraInfo, camera_info_topic, STREAM_QOS)
        self._lock = threading.Lock()
        self._poses: dict[int, PoseReceipt] = {}
        self._counters: dict[str, str] = {}
        self.create_subscription(PoseWithCovarianceStamped, pose_topic, self._on_pose, POSE_QOS)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_pose(self, msg: PoseWithCovarianceStamped) -> None:
        received_ns = time.time_ns()
        stamp_ns = conversions.header_stamp_ns(msg.header)
        receipt = PoseReceipt(transform_from_pose_msg(msg.pose.pose),
                              (received_ns - stamp_ns) / 1e6)
        with self._lock:
            self._poses[stamp_ns] = receipt

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == STATUS_NAME:
                with self._lock:
                    self._counters = {kv.key: kv.value for kv in status.values}

    def wait_for_peers(self, timeout_s: float) -> None:
        """Block until the relocalization node subscribes to the images and publishes poses.

        Raises:
            ReplayError: not within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while not (self._image_pub.get_subscription_count() > 0
                   and self._info_pub.get_subscription_count() > 0
                   and self.count_publishers(self._pose_topic) > 0):
            if time.monotonic() > deadline:
                raise ReplayError(
                    f"the relocalization node did not connect within {timeout_s:.0f} s "
                    f"(image subscribers {self._image_pub.get_subscription_count()}, pose "
                    f"publishers {self.count_publishers(self._pose_topic)})")
            time.sleep(0.05)

    def play(self, frames: Sequence[PosedFrame], rate_hz: float) -> tuple[list[int], float]:
        """Publish ``frames`` at ``rate_hz``, each stamped with the time it is sent.

        Returns:
            The stamps (ns) in frame order, and the replay's length in seconds (one period
            per frame).
        """
        period_s = 1.0 / rate_hz
        stamps_ns: list[int] = []
        images = [conversions.image_msg_from_rgb(f.image_rgb, "bgr8", 0, self._camera_frame)
                  for f in frames]
        # camera_info first, alone: on separate topics the first image could otherwise overtake
        # it and find the node without a calibration
        self._info_pub.publish(
            conversions.camera_info_msg(frames[0].intrinsics, time.time_ns(), self._camera_frame))
        time.sleep(CAMERA_INFO_LEAD_S)
        start = next_tick = time.monotonic()
        for frame, image in zip(frames, images, strict=True):
            stamp_ns = time.time_ns()
            image.header.stamp = conversions.time_msg(stamp_ns)
            self._info_pub.publish(
                conversions.camera_info_msg(frame.intrinsics, stamp_ns, self._camera_frame))
            self._image_pub.publish(image)
            stamps_ns.append(stamp_ns)
            next_tick += period_s
            time.sleep(max(0.0, next_tick - time.monotonic()))
        return stamps_ns, time.monotonic() - start

    def counters(self) -> dict[str, str]:
        """The node's latest diagnostics values."""
        with self._lock:
            return dict(self._counters)

    def poses(self) -> dict[int, PoseReceipt]:
        """The poses received so far, by stamp."""
        with self._lock:
            return dict(self._poses)

    def wait_until_handled(self, n_frames: int, timeout_s: float) -> bool:
        """Wait until the node's diagnostics say every one of ``n_frames`` was processed or
        dropped (or a pose came back for each); False when ``timeout_s`` passed first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            counters = self.counters()
            if len(self.poses()) >= n_frames:
                return True
            if counters:
                received = int(counters["frames_received"])
                handled = int(counters["frames_processed"]) + int(counters["frames_dropped"])
                if received >= n_frames and handled >= received:
                    time.sleep(0.3)  # the last pose may still be on its way
                    return True
            time.sleep(0.1)
        return False


def replay(node: ReplayNode, frames: Sequence[PosedFrame], rate_hz: float,
           timeout_s: float) -> ReplayResult:
    """Play ``frames`` through ``node`` (spun elsewhere) and gather what came back.

    Raises:
        ReplayError: the relocalization node is not connected within ``timeout_s``.
    """
    node.wait_for_peers(timeout_s)
    stamps_ns, seconds = node.play(frames, rate_hz)
    complete = node.wait_until_handled(len(frames), timeout_s)
    return ReplayResult(stamps_ns, node.poses(), seconds, node.counters(), complete)
