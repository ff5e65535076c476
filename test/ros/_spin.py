"""The ``main`` of the helper node processes the ROS tests start: spin one node until SIGINT."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def spin_until_interrupted(make_node: Callable[[], Node], args: list[str] | None) -> int:
    """Init rclpy with ``args``, spin ``make_node()`` until SIGINT or an external shutdown,
    always shut rclpy down; returns the exit status (0)."""
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
