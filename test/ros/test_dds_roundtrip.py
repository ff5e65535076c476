"""Real DDS round trips between two processes: Image + CameraInfo, and TFMessage on /tf.

The publisher is ``_publisher_process.py``, started as a subprocess with a params file; this test
process subscribes through the harness fixtures. Content is compared field by field (pixel bytes,
K/P matrices, frame ids, stamps, transform values), and the child is checked to run in this test
run's domain with loopback-only discovery.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ros_harness import TopicCollector, import_ros_module

sensor_msgs = import_ros_module("sensor_msgs.msg")
tf2_msgs = import_ros_module("tf2_msgs.msg")

from _publisher_process import (  # noqa: E402  (needs ROS 2: imported after the skip check)
    CAMERA_INFO_TOPIC,
    IMAGE_TOPIC,
    LATCHED_QOS,
    READY_LINE,
    TF_QOS,
    TF_TOPIC,
    pattern_rgb,
)

pytestmark = pytest.mark.ros

PUBLISHER_SCRIPT = Path(__file__).with_name("_publisher_process.py")
TIMEOUT_S = 30.0

WIDTH, HEIGHT = 640, 480
FX, FY, CX, CY = 585.25, 587.5, 320.125, 240.875
STAMP_SEC, STAMP_NANOSEC = 1_700_000_123, 456_789_012
CAMERA_FRAME = "camera_rgb_optical_frame"
TF_PARENTS = ["map", "odom"]
TF_CHILDREN = ["odom", "base_link"]
TF_TRANSLATIONS = [1.25, -0.5, 0.125, 0.0312, 2.5, -3.75]
_ROTATION_AXIS = np.array([0.2, -0.4, 0.8]) / np.linalg.norm([0.2, -0.4, 0.8])
TF_ROTATIONS_XYZW = [
    0.0, 0.0, 0.0, 1.0,
    *(np.sin(0.35) * _ROTATION_AXIS), float(np.cos(0.35)),
]  # fmt: skip


@pytest.fixture
def publisher_parameters() -> dict[str, object]:
    """Parameters for the publisher process (the expected values of every checked field)."""
    return {
        "camera_frame": CAMERA_FRAME,
        "width": WIDTH,
        "height": HEIGHT,
        "pattern_seed": 7,
        "fx": FX,
        "fy": FY,
        "cx": CX,
        "cy": CY,
        "stamp_sec": STAMP_SEC,
        "stamp_nanosec": STAMP_NANOSEC,
        "tf_parent_frames": TF_PARENTS,
        "tf_child_frames": TF_CHILDREN,
        "tf_translations": TF_TRANSLATIONS,
        "tf_rotations_xyzw": [float(v) for v in TF_ROTATIONS_XYZW],
        "tf_period_s": 0.1,
    }


def _assert_header(header: object) -> None:
    assert header.frame_id == CAMERA_FRAME
    assert (header.stamp.sec, header.stamp.nanosec) == (STAMP_SEC, STAMP_NANOSEC)


def test_image_and_camera_info_cross_process(ros_node, start_ros_process, publisher_parameters):
    """A 640x480 rgb8 image and its CameraInfo arrive byte-exact from another process."""
    images = TopicCollector(ros_node, sensor_msgs.Image, IMAGE_TOPIC, LATCHED_QOS)
    infos = TopicCollector(ros_node, sensor_msgs.CameraInfo, CAMERA_INFO_TOPIC, LATCHED_QOS)
    publisher = start_ros_process(PUBLISHER_SCRIPT, publisher_parameters, name="publisher")

    [image] = images.wait_for(1, TIMEOUT_S)
    [info] = infos.wait_for(1, TIMEOUT_S)

    _assert_header(image.header)
    assert (image.height, image.width, image.step) == (HEIGHT, WIDTH, 3 * WIDTH)
    assert (image.encoding, image.is_bigendian) == ("rgb8", 0)
    pixels_HW3 = np.frombuffer(bytes(image.data), dtype=np.uint8).reshape(HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(pixels_HW3, pattern_rgb(7, HEIGHT, WIDTH))

    _assert_header(info.header)
    assert (info.height, info.width) == (HEIGHT, WIDTH)
    assert info.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(
        np.asarray(info.k).reshape(3, 3), [[FX, 0.0, CX], [0.0, FY, CY], [0.0, 0.0, 1.0]]
    )
    np.testing.assert_array_equal(
        np.asarray(info.p).reshape(3, 4)[:, :3], np.asarray(info.k).reshape(3, 3)
    )
    np.testing.assert_array_equal(np.asarray(info.r).reshape(3, 3), np.eye(3))
    np.testing.assert_array_equal(info.d, np.zeros(5))

    assert publisher.stop() == 0, publisher.describe()


def test_tf_message_cross_process(ros_node, start_ros_process, publisher_parameters):
    """tf2_msgs/TFMessage published repeatedly on /tf arrives with exact frames and values."""
    tf_messages = TopicCollector(ros_node, tf2_msgs.TFMessage, TF_TOPIC, TF_QOS)
    publisher = start_ros_process(PUBLISHER_SCRIPT, publisher_parameters, name="publisher")

    received = tf_messages.wait_for(3, TIMEOUT_S)

    for message in received:
        assert [t.header.frame_id for t in message.transforms] == TF_PARENTS
        assert [t.child_frame_id for t in message.transforms] == TF_CHILDREN
        for transform in message.transforms:
            stamp = transform.header.stamp
            assert (stamp.sec, stamp.nanosec) == (STAMP_SEC, STAMP_NANOSEC)
        translations = [
            v
            for t in message.transforms
            for v in (
                t.transform.translation.x,
                t.transform.translation.y,
                t.transform.translation.z,
            )
        ]
        rotations_xyzw = [
            v
            for t in message.transforms
            for v in (
                t.transform.rotation.x,
                t.transform.rotation.y,
                t.transform.rotation.z,
                t.transform.rotation.w,
            )
        ]
        assert translations == TF_TRANSLATIONS
        assert rotations_xyzw == [float(v) for v in TF_ROTATIONS_XYZW]

    assert publisher.stop() == 0, publisher.describe()


def test_child_runs_in_this_runs_domain_on_loopback(
    ros_node, ros_domain_id, start_ros_process, publisher_parameters
):
    """The child inherits this run's ROS_DOMAIN_ID and LOCALHOST discovery, as rclpy sees them."""
    publisher = start_ros_process(PUBLISHER_SCRIPT, publisher_parameters, name="publisher")

    publisher.wait_for_log(READY_LINE, TIMEOUT_S)

    ready_line = next(line for line in publisher.log_text().splitlines() if READY_LINE in line)
    assert f"domain_id={ros_domain_id} " in ready_line
    assert ready_line.endswith("discovery_range=LOCALHOST")
    assert ros_node.context.get_domain_id() == ros_domain_id
    assert publisher.stop() == 0, publisher.describe()
