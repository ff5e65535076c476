"""Large images over real DDS (loopback): the shipped QoS delivers them, best effort loses them
and the node says how many, and a publisher it cannot match is reported.

The node runs as its own process (``python -m seqace_ros.ros.relocalization_node``) without a
map: frames fail fast ("no map loaded") after they are counted, so the node is never busy and
every count below is about transport. The measurement with a map, raw and compressed, both
QoS settings, is ``bench/dds_images.py`` (README "Large images over DDS").
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from ros_harness import TopicCollector, diagnostic_values, import_ros_module, wait_for

import_ros_module("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from seqace_ros.ros import conversions  # noqa: E402
from seqace_ros.ros.transport_profiles import profile_parameters  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

NODE = "seqace_ros.ros.relocalization_node"
RATE_HZ = 10.0
CAMERA_PERIOD_NS = 33_333_333


def camera_qos(reliability: ReliabilityPolicy) -> QoSProfile:
    """A camera driver's image QoS: keep last 5, volatile, the given reliability."""
    return QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=reliability)


def start_node(start_ros_process, name: str, parameters: dict[str, object]):
    return start_ros_process(
        NODE, {"diagnostics_period_s": 0.25, **parameters}, name=name,
        ros_args=["-r", f"image:=/{name}/image", "-r", f"camera_info:=/{name}/camera_info"])


def stream(publisher, images: list[Image]) -> None:
    """Publish ``images`` at RATE_HZ with stamps of a 30 Hz camera."""
    for k, image in enumerate(images):
        image.header.stamp = conversions.time_msg(10**12 + k * CAMERA_PERIOD_NS)
        publisher.publish(image)
        time.sleep(1.0 / RATE_HZ)


def settled_values(diagnostics: TopicCollector, key: str, value: str) -> dict[str, str]:
    """The node's diagnostics once ``key`` has ``value`` (waits up to 20 s)."""
    return wait_for(
        lambda: next((diagnostic_values(m) for m in reversed(diagnostics.messages)
                      if diagnostic_values(m).get(key) == value), None),
        20, f"/diagnostics with {key}={value} (last: "
        f"{diagnostic_values(diagnostics.messages[-1]) if diagnostics.messages else None})")


def bgr8(height: int, width: int, seed: int) -> Image:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return conversions.image_msg_from_rgb(rgb, "bgr8", 0, "camera")


def test_the_default_reliable_qos_delivers_every_raw_vga_frame(
    start_ros_process, ros_node
) -> None:
    node = start_node(start_ros_process, "large_reliable", {})  # shipped QoS defaults
    diagnostics = TopicCollector(ros_node, DiagnosticArray, "/diagnostics", 50)
    publisher = ros_node.create_publisher(Image, "/large_reliable/image",
                                          camera_qos(ReliabilityPolicy.RELIABLE))
    wait_for(lambda: publisher.get_subscription_count() > 0, 30, "the node's subscription")
    images = [bgr8(480, 640, seed) for seed in range(30)]  # 0.9 MB each
    stream(publisher, images)
    values = settled_values(diagnostics, "frames_received", "30")
    assert values["frames_lost_in_transport"] == "0"
    assert values["transport_loss_method"] == "publication sequence numbers"

    # A best-effort camera cannot be matched by the reliable subscription: said, not silent.
    best_effort = ros_node.create_publisher(Image, "/large_reliable/image",
                                            camera_qos(ReliabilityPolicy.BEST_EFFORT))
    wait_for(lambda: "incompatible" in node.log_text(), 20, "the incompatible-QoS warning")
    values = wait_for(lambda: next(
        (diagnostic_values(m) for m in reversed(diagnostics.messages)
         if "incompatible" in diagnostic_values(m)["last_error"]), None), 20,
        "the incompatible publisher in /diagnostics")
    assert "the publisher is best effort; set qos_reliability: best_effort" in (
        values["last_error"])
    assert best_effort.get_subscription_count() == 0


def test_best_effort_loses_large_frames_and_the_node_counts_each(
    start_ros_process, ros_node
) -> None:
    node = start_node(start_ros_process, "large_best_effort",
                      profile_parameters("raw_best_effort"))
    diagnostics = TopicCollector(ros_node, DiagnosticArray, "/diagnostics", 50)
    publisher = ros_node.create_publisher(Image, "/large_best_effort/image",
                                          camera_qos(ReliabilityPolicy.BEST_EFFORT))
    wait_for(lambda: publisher.get_subscription_count() > 0, 30, "the node's subscription")
    time.sleep(0.5)
    # Small frames (57 kB: one datagram) and large ones (3.7 MB: UDP fragments) alternate;
    # the stream ends on small frames, so every loss is followed by an arrival that shows it.
    images = [bgr8(120, 160, k) if k % 2 == 0 or k >= 37 else bgr8(960, 1280, k)
              for k in range(40)]
    stream(publisher, images)
    time.sleep(1.0)
    values = diagnostic_values(diagnostics.messages[-1])
    received = int(values["frames_received"])
    lost = int(values["frames_lost_in_transport"])
    print(f"published 40, node received {received}, reports {lost} lost in transport")
    assert lost > 0, "no large frame was lost: best effort delivered all of them here"
    assert received + lost == len(images)
    assert values["frames_dropped"] == "0"  # nothing was lost to a busy node
    assert values["frames_lost_in_transport_recent"] == str(lost)
    assert "frame(s) lost in transport on /large_best_effort/image" in node.log_text()
