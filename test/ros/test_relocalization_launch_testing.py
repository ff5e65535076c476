"""The installed relocalization.launch.py under launch_testing, in a ROS 2 distribution.

``launch``, ``launch_ros`` and ``launch_testing`` have no wheels and cannot be installed on the
development machines or in this project's CI, so there this module is skipped with that reason
(the launch files' decisions are tested there by test_launch.py against fakes of the launch
API). It runs under ``colcon test`` in the GitHub Actions workflow (``.github/workflows/ros.yml``,
a ROS 2 Kilted container): ``ros2 launch``'s machinery includes the installed launch file with
``transport:=compressed`` and a camera namespace; the node must start, subscribe
``<namespace>/image_raw/compressed`` best effort (the profile), report on ``/diagnostics`` that it
has no map, and exit 0 when the launch shuts down.
"""

from __future__ import annotations

import os
import time
import unittest

import pytest

pytest.importorskip(
    "launch_testing", reason="launch_testing is not installable here (no wheels): this test "
    "runs under colcon test in a ROS 2 distribution (.github/workflows/ros.yml)")

import launch_testing.actions
import launch_testing.asserts
import rclpy
from ament_index_python.packages import get_package_share_directory
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from rclpy.qos import ReliabilityPolicy

from launch import LaunchDescription
from seqace_ros.ros.diagnostics import STATUS_NAME

NAMESPACE = "/launch_testing_camera"
TIMEOUT_S = 60.0


@pytest.mark.launch_test
def generate_test_description() -> LaunchDescription:
    launch_file = os.path.join(get_package_share_directory("seqace_ros"), "launch",
                               "relocalization.launch.py")
    return LaunchDescription([
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(launch_file),
            launch_arguments={"camera_namespace": NAMESPACE, "transport": "compressed"}.items(),
        ),
        launch_testing.actions.ReadyToTest(),
    ])


class TestRelocalizationLaunch(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        rclpy.init()
        cls.node = rclpy.create_node("relocalization_launch_test")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.node.destroy_node()
        rclpy.shutdown()

    def spin_until(self, predicate, what: str):
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            rclpy.spin_once(self.node, timeout_sec=0.1)
        self.fail(f"timed out after {TIMEOUT_S} s waiting for {what}")

    def test_the_node_listens_with_the_profile_and_reports(self, proc_output) -> None:
        proc_output.assertWaitFor("listening on", timeout=TIMEOUT_S)
        topic = f"{NAMESPACE}/image_raw/compressed"
        (info,) = self.spin_until(lambda: self.node.get_subscriptions_info_by_topic(topic),
                                  f"a subscription on {topic}")
        assert info.node_name == "relocalization_node"
        assert info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT

        statuses: list[DiagnosticStatus] = []
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics",
            lambda msg: statuses.extend(s for s in msg.status if s.name == STATUS_NAME), 10)
        status = self.spin_until(lambda: statuses and statuses[-1], "the node's diagnostics")
        assert status.level == DiagnosticStatus.ERROR
        assert status.message.startswith("no map loaded"), status.message


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_the_node_exits_cleanly(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info)
