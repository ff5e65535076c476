"""Launch the seqace_ros relocalization node, optionally with RViz.

Arguments:
    map: map file written by ``seqace map`` (overrides ``map_path`` of the params file;
        empty keeps the file's value).
    params_file: node parameters (default: the package's config/relocalization.yaml).
    camera_namespace: namespace of the camera driver's topics; the node subscribes
        ``<camera_namespace>/image_raw`` (or ``.../image_raw/compressed``) and
        ``<camera_namespace>/camera_info``.
    transport: image transport profile (:mod:`seqace_ros.ros.transport_profiles`):
        ``raw_reliable``, ``compressed`` or ``raw_best_effort``; empty keeps the params file's
        ``image_transport`` and ``qos_reliability`` (default: raw, reliable).
    trigger: ``continuous`` or ``on_demand`` (localize only after ``~/relocalize``); overrides
        ``trigger`` of the params file (empty keeps the file's value).
    rviz: ``true`` starts RViz with config/seqace.rviz (pose, path, inliers, TF).

Example::

    ros2 launch seqace_ros relocalization.launch.py map:=/maps/kitchen.safetensors \
        camera_namespace:=/camera/color rviz:=true

On a robot (see the README, "Using it on a robot")::

    ros2 launch seqace_ros relocalization.launch.py map:=/maps/kitchen.safetensors \
        camera_namespace:=/camera/color trigger:=on_demand params_file:=/robot/seqace.yaml
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_context import LaunchContext
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from seqace_ros.ros.transport_profiles import TRANSPORT_PROFILES, profile_parameters

PACKAGE = "seqace_ros"
EXECUTABLE = "relocalization_node"
PARAMS_FILE = "relocalization.yaml"
RVIZ_CONFIG = "seqace.rviz"


def _relocalization_node(context: LaunchContext) -> list[Node]:
    """The node, with the map, transport and trigger arguments applied only when given."""
    params_file = LaunchConfiguration("params_file").perform(context)
    camera_namespace = LaunchConfiguration("camera_namespace").perform(context).rstrip("/")
    parameters: list[object] = [params_file]
    overrides = profile_parameters(LaunchConfiguration("transport").perform(context))
    for argument, name in (("map", "map_path"), ("trigger", "trigger")):
        value = LaunchConfiguration(argument).perform(context)
        if value:
            overrides[name] = value
    if overrides:
        parameters.append(overrides)
    return [
        Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            name=EXECUTABLE,
            output="screen",
            parameters=parameters,
            remappings=[
                ("image", f"{camera_namespace}/image_raw"),
                ("image/compressed", f"{camera_namespace}/image_raw/compressed"),
                ("camera_info", f"{camera_namespace}/camera_info"),
            ],
        )
    ]


def generate_launch_description() -> LaunchDescription:
    """Arguments, the relocalization node and (with ``rviz:=true``) RViz."""
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "map", default_value="",
                description="Map file (.safetensors) from `seqace map`; empty: the params "
                "file's map_path",
            ),
            DeclareLaunchArgument(
                "params_file", default_value=os.path.join(share, "config", PARAMS_FILE),
                description="Parameters file of the relocalization node",
            ),
            DeclareLaunchArgument(
                "camera_namespace", default_value="/camera",
                description="Namespace of the camera topics (<ns>/image_raw, <ns>/camera_info)",
            ),
            DeclareLaunchArgument(
                "transport", default_value="",
                description="Image transport profile: " + ", ".join(TRANSPORT_PROFILES)
                + "; empty: the params file's image_transport and qos_reliability",
            ),
            DeclareLaunchArgument(
                "trigger", default_value="",
                description="continuous or on_demand (localize after ~/relocalize); empty: the "
                "params file's trigger",
            ),
            DeclareLaunchArgument(
                "rviz", default_value="false", description="Start RViz with config/seqace.rviz",
            ),
            OpaqueFunction(function=_relocalization_node),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", os.path.join(share, "config", RVIZ_CONFIG)],
                condition=IfCondition(LaunchConfiguration("rviz")),
            ),
        ]
    )
