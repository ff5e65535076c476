"""Publisher half of the cross-process DDS round trip (run as a subprocess by the tests).

Started by ``test_dds_roundtrip.py`` through the ``start_ros_process`` fixture as
``python _publisher_process.py --ros-args --params-file FILE``. It publishes, from its parameters:

- one ``sensor_msgs/Image`` (rgb8, pixels from :func:`pattern_rgb`) and one
  ``sensor_msgs/CameraInfo`` with :data:`LATCHED_QOS` (reliable, transient local), once;
- a ``tf2_msgs/TFMessage`` on ``/tf`` with :data:`TF_QOS` (reliable, volatile, depth 100, as TF
  broadcasters do) every ``tf_period_s``, until SIGINT.

When the latched messages are out it logs ``READY domain_id=<id> discovery_range=<range>`` so the
test can check what the child really runs with. The test imports the topic names, QoS profiles
and :func:`pattern_rgb` from here, so both sides share one definition.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
from _spin import spin_until_interrupted
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

IMAGE_TOPIC = "/roundtrip/camera/image_raw"
CAMERA_INFO_TOPIC = "/roundtrip/camera/camera_info"
TF_TOPIC = "/tf"
LATCHED_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
TF_QOS = QoSProfile(
    depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE
)
READY_LINE = "READY"


def pattern_rgb(seed: int, height: int, width: int) -> np.ndarray:
    """Pseudo-random RGB image: any lost, swapped or reordered byte changes it.

    Returns:
        HxWx3 uint8 array.
    """
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


class RoundTripPublisher(Node):
    """Publishes an image, its camera info and TF transforms built from parameters."""

    def __init__(self) -> None:
        super().__init__("dds_roundtrip_publisher")
        p = self._required_parameter
        camera_frame = p("camera_frame", Parameter.Type.STRING)
        width = p("width", Parameter.Type.INTEGER)
        height = p("height", Parameter.Type.INTEGER)
        fx, fy = p("fx", Parameter.Type.DOUBLE), p("fy", Parameter.Type.DOUBLE)
        cx, cy = p("cx", Parameter.Type.DOUBLE), p("cy", Parameter.Type.DOUBLE)
        stamp = Time(
            seconds=p("stamp_sec", Parameter.Type.INTEGER),
            nanoseconds=p("stamp_nanosec", Parameter.Type.INTEGER),
        ).to_msg()

        image = Image()
        image.header.frame_id = camera_frame
        image.header.stamp = stamp
        image.height, image.width = height, width
        image.encoding = "rgb8"
        image.is_bigendian = 0
        image.step = 3 * width
        pixels_HW3 = pattern_rgb(p("pattern_seed", Parameter.Type.INTEGER), height, width)
        image.data = pixels_HW3.tobytes()

        info = CameraInfo()
        info.header = image.header
        info.height, info.width = height, width
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]

        self._tf_message = TFMessage(transforms=self._transforms(stamp))
        self._tf_publisher = self.create_publisher(TFMessage, TF_TOPIC, TF_QOS)
        self._image_publisher = self.create_publisher(Image, IMAGE_TOPIC, LATCHED_QOS)
        self._info_publisher = self.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, LATCHED_QOS)
        self._image_publisher.publish(image)
        self._info_publisher.publish(info)
        self.create_timer(p("tf_period_s", Parameter.Type.DOUBLE), self._publish_tf)
        self.get_logger().info(
            f"{READY_LINE} domain_id={self.context.get_domain_id()} "
            f"discovery_range={os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', '<unset>')}"
        )

    def _required_parameter(self, name: str, kind: Parameter.Type) -> Any:
        """Declare a parameter with no default; rclpy raises ParameterUninitializedException
        naming it when the params file does not set it."""
        self.declare_parameter(name, kind)
        return self.get_parameter(name).value

    def _transforms(self, stamp: TimeMsg) -> list[TransformStamped]:
        p = self._required_parameter
        parents = p("tf_parent_frames", Parameter.Type.STRING_ARRAY)
        children = p("tf_child_frames", Parameter.Type.STRING_ARRAY)
        translations = p("tf_translations", Parameter.Type.DOUBLE_ARRAY)
        rotations_xyzw = p("tf_rotations_xyzw", Parameter.Type.DOUBLE_ARRAY)
        n = len(parents)
        if len(children) != n or len(translations) != 3 * n or len(rotations_xyzw) != 4 * n:
            raise ValueError(
                f"for {n} parent frames expected {n} child frames, {3 * n} translation and "
                f"{4 * n} rotation values; got {len(children)}, {len(translations)}, "
                f"{len(rotations_xyzw)}"
            )
        transforms = []
        for i in range(n):
            transform = TransformStamped()
            transform.header.stamp = stamp
            transform.header.frame_id = parents[i]
            transform.child_frame_id = children[i]
            t = transform.transform.translation
            t.x, t.y, t.z = translations[3 * i : 3 * i + 3]
            q = transform.transform.rotation
            q.x, q.y, q.z, q.w = rotations_xyzw[4 * i : 4 * i + 4]
            transforms.append(transform)
        return transforms

    def _publish_tf(self) -> None:
        self._tf_publisher.publish(self._tf_message)


def main(args: list[str] | None = None) -> int:
    """Run the publisher until SIGINT; always shut rclpy down. Returns the exit status."""
    return spin_until_interrupted(RoundTripPublisher, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
