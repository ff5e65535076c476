#!/usr/bin/env bash
# Placeholder: replaced by the ROS 2 wheel installer (rclpy + messages + tf2_msgs generation).
set -euo pipefail
VENV="$1"
"$VENV/bin/python" -m pip -q --disable-pip-version-check install ros-rclpy ros-sensor-msgs ros-geometry-msgs ros-nav-msgs ros-std-srvs ros-diagnostic-msgs ros-visualization-msgs ros-rmw-fastrtps-cpp
