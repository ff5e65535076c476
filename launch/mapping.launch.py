"""Launch the seqace_ros mapping node: map a rosbag, then end the launch when it exits.

Arguments:
    bag: the bag to map (rosbag2 folder or ROS 1 .bag); overrides ``bag_path`` of the params
        file (empty keeps the file's value).
    map: the map file to write; overrides ``map_path`` (empty keeps the file's value). The
        report (NAME.report.json, NAME.trajectory.png, NAME.loss.png) goes beside it.
    params_file: node parameters (default: the package's config/mapping.yaml): image topic,
        pose source, frame selection, preset.

Example::

    ros2 launch seqace_ros mapping.launch.py bag:=/data/run1 map:=/maps/kitchen.safetensors
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "seqace_ros"
EXECUTABLE = "mapping_node"
PARAMS_FILE = "mapping.yaml"


def _mapping_node(context: LaunchContext) -> list[Node]:
    """The node, with the bag and map arguments applied only when they are given."""
    parameters: list[object] = [LaunchConfiguration("params_file").perform(context)]
    overrides = {
        name: LaunchConfiguration(argument).perform(context)
        for argument, name in (("bag", "bag_path"), ("map", "map_path"))
    }
    given = {name: value for name, value in overrides.items() if value}
    if given:
        parameters.append(given)
    return [
        Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            name=EXECUTABLE,
            output="screen",
            parameters=parameters,
            # One-shot: when mapping ends (map written or failed), the launch ends too.
            on_exit=Shutdown(reason="mapping finished"),
        )
    ]


def generate_launch_description() -> LaunchDescription:
    """Arguments and the mapping node."""
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "bag", default_value="",
                description="Bag to map (rosbag2 folder or ROS 1 .bag); empty: the params "
                "file's bag_path",
            ),
            DeclareLaunchArgument(
                "map", default_value="",
                description="Map file to write; empty: the params file's map_path",
            ),
            DeclareLaunchArgument(
                "params_file", default_value=os.path.join(share, "config", PARAMS_FILE),
                description="Parameters file of the mapping node",
            ),
            OpaqueFunction(function=_mapping_node),
        ]
    )
