"""A robot's TF tree, published by its own process (run as a subprocess by the robot tests).

Started by ``test_relocalization_robot.py`` as ``python _robot_tf_process.py --ros-args
--params-file FILE``. From its parameters it publishes what robot_state_publisher and an
odometry node would:

- ``base_frame -> camera_frame`` once on ``/tf_static`` (latched: reliable, transient local);
- ``odom_frame -> base_frame`` on ``/tf`` at ``rate_hz``, stamped with the current time: the
  pose ``odom_base`` (x y z qx qy qz qw) moved by :func:`wobble` (a few centimetres along the
  base's x axis, so that a lookup at the wrong stamp gives a measurably different chain).

It logs ``READY`` once the static transform is out.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
from _spin import spin_until_interrupted
from rclpy.node import Node
from rclpy.parameter import Parameter
from tf2_msgs.msg import TFMessage

from seqace_ros.core.geometry import make_transform, transform_from_translation_quaternion
from seqace_ros.ros import conversions
from seqace_ros.ros.tf_interface import TF_QOS, TF_STATIC_QOS

READY_LINE = "READY"


def wobble(stamp_ns: int, amplitude_m: float) -> np.ndarray:
    """The base's motion about its nominal odometry pose: ``amplitude_m * sin(pi t)`` along x."""
    return make_transform(np.eye(3), [amplitude_m * math.sin(math.pi * stamp_ns * 1e-9), 0, 0])


class RobotTf(Node):
    """Publishes a static camera mount and a moving odometry pose of the base."""

    def __init__(self) -> None:
        super().__init__("robot_tf")
        p = self._required_parameter
        self._camera_frame = p("camera_frame", Parameter.Type.STRING)
        self._base_frame = p("base_frame", Parameter.Type.STRING)
        self._odom_frame = p("odom_frame", Parameter.Type.STRING)
        base_cam = p("base_cam", Parameter.Type.DOUBLE_ARRAY)
        odom_base = p("odom_base", Parameter.Type.DOUBLE_ARRAY)
        self._wobble_m = p("wobble_m", Parameter.Type.DOUBLE)
        rate_hz = p("rate_hz", Parameter.Type.DOUBLE)
        self._T_odom_base = transform_from_translation_quaternion(odom_base[:3], odom_base[3:])
        T_base_cam = transform_from_translation_quaternion(base_cam[:3], base_cam[3:])
        self._dynamic = self.create_publisher(TFMessage, "/tf", TF_QOS)
        static = self.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        static.publish(TFMessage(transforms=[conversions.transform_stamped_msg(
            T_base_cam, self._base_frame, self._camera_frame,
            self.get_clock().now().nanoseconds)]))
        self.create_timer(1.0 / rate_hz, self._publish_odometry)
        self.get_logger().info(READY_LINE)

    def _required_parameter(self, name: str, kind: Parameter.Type) -> Any:
        self.declare_parameter(name, kind)
        return self.get_parameter(name).value

    def _publish_odometry(self) -> None:
        stamp_ns = self.get_clock().now().nanoseconds
        T = self._T_odom_base @ wobble(stamp_ns, self._wobble_m)
        self._dynamic.publish(TFMessage(transforms=[conversions.transform_stamped_msg(
            T, self._odom_frame, self._base_frame, stamp_ns)]))


def main(args: list[str] | None = None) -> int:
    """Run until SIGINT; always shut rclpy down. Returns the exit status."""
    return spin_until_interrupted(RobotTf, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
