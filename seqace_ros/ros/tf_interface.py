"""TF in and out for the nodes: one small interface, two implementations.

- :class:`Tf2RosTransforms`: ``tf2_ros`` (``TransformBroadcaster``, ``Buffer``,
  ``TransformListener``), used wherever ``tf2_ros`` is installed (a ROS 2 distribution).
- :class:`TopicTransforms`: for environments without ``tf2_ros`` (the PyPI-wheel ROS 2 used
  in development and CI here): publishes ``tf2_msgs/TFMessage`` on ``/tf`` and looks
  transforms up from ``/tf`` and ``/tf_static`` subscriptions, buffered in the library's
  :class:`~seqace_ros.core.transform_tree.TransformTree` (the class the bag reader uses).

Both publish on the dynamic ``/tf`` only (estimates are never static) with the QoS tf2's
broadcaster uses (reliable, volatile, depth 100), and both raise
:class:`~seqace_ros.core.transform_tree.TransformError` when a lookup fails.
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import yaml
from numpy.typing import NDArray
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time

from seqace_ros.core.transform_tree import TransformError, TransformTree, TransformTreeError
from seqace_ros.ros.conversions import transform_from_stamped_msg, transform_stamped_msg

#: QoS of ``/tf``: what tf2_ros's TransformBroadcaster and TransformListener use.
TF_QOS = QoSProfile(
    depth=100,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
#: QoS of ``/tf_static``: latched (transient local), as tf2_ros's StaticTransformBroadcaster.
TF_STATIC_QOS = QoSProfile(
    depth=100,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


@dataclass(frozen=True)
class StampedTransform:
    """``T_parent_child`` (4x4, maps child-frame points to the parent frame) at a stamp (ns)."""

    parent: str
    child: str
    stamp_ns: int
    T_parent_child: NDArray[np.float64]


class TransformInterface(Protocol):
    """What the node needs from TF."""

    backend: str

    def publish(self, transforms: Sequence[StampedTransform]) -> None:
        """Send transforms on the dynamic ``/tf``."""
        ...

    def lookup(
        self, target_frame: str, source_frame: str, stamp_ns: int, timeout_s: float
    ) -> NDArray[np.float64]:
        """``T_target_source`` at ``stamp_ns``, waiting up to ``timeout_s`` for data.

        Raises:
            TransformError: the transform is not available in time.
        """
        ...

    def parent_of(self, frame: str) -> str | None:
        """The parent of ``frame`` in the buffer, ``None`` for a root or an unknown frame."""
        ...

    def clear(self) -> None:
        """Forget the buffered dynamic transforms (static ones stay), after time jumped back."""
        ...


class Tf2RosTransforms:
    """TF through ``tf2_ros`` (broadcaster, buffer and listener on the node).

    Args:
        node: the node whose executor spins the listener's subscriptions.
        cache_duration_s: history the buffer keeps.
    """

    backend = "tf2_ros"

    def __init__(self, node: Node, cache_duration_s: float = 10.0) -> None:
        import tf2_ros

        self._tf2_ros = tf2_ros
        self._broadcaster = tf2_ros.TransformBroadcaster(node)
        self._buffer = tf2_ros.Buffer(cache_time=Duration(seconds=cache_duration_s), node=node)
        self._listener = tf2_ros.TransformListener(self._buffer, node, spin_thread=False)

    def publish(self, transforms: Sequence[StampedTransform]) -> None:
        """Send transforms on ``/tf``."""
        self._broadcaster.sendTransform(
            [transform_stamped_msg(t.T_parent_child, t.parent, t.child, t.stamp_ns)
             for t in transforms]
        )

    def lookup(
        self, target_frame: str, source_frame: str, stamp_ns: int, timeout_s: float
    ) -> NDArray[np.float64]:
        """``T_target_source`` at ``stamp_ns`` (tf2 interpolation, no extrapolation)."""
        try:
            msg = self._buffer.lookup_transform(
                target_frame, source_frame, Time(nanoseconds=stamp_ns),
                timeout=Duration(seconds=timeout_s),
            )
        except self._tf2_ros.TransformException as error:
            raise TransformError(
                f"no transform {target_frame!r} <- {source_frame!r} at {stamp_ns} ns: {error}"
            ) from error
        return transform_from_stamped_msg(msg)[3]

    def parent_of(self, frame: str) -> str | None:
        """The parent of ``frame`` (its latest one) in the tf2 buffer; ``None`` for a root or
        an unknown frame. tf2 lists each frame that has a parent in ``all_frames_as_yaml``."""
        frames = yaml.safe_load(self._buffer.all_frames_as_yaml())
        entry = frames.get(frame) if isinstance(frames, dict) else None
        parent = entry.get("parent") if isinstance(entry, dict) else None
        return str(parent) if parent else None

    def clear(self) -> None:
        """Clear the tf2 buffer (tf2 keeps static transforms)."""
        self._buffer.clear()


class TopicTransforms:
    """TF over ``tf2_msgs/TFMessage`` topics, buffered in a :class:`TransformTree`.

    Transforms this object published itself are not buffered when they come back on ``/tf``
    (a node's own estimates are outputs, never inputs to its lookups, and a stale
    ``map -> camera`` edge would block ``odom -> camera`` after switching to an odom frame).

    A lookup waits (up to its timeout) until every dynamic edge on the path has a sample at or
    after the stamp, so it interpolates like tf2; when the timeout passes first, it falls back
    to the tree's bounded hold of the nearest sample within ``max_gap_s`` (and fails beyond).

    Args:
        node: the node that owns the ``/tf`` publisher and subscriptions.
        cache_duration_s: history kept per dynamic edge.
        max_gap_s: how far from the stamp a sample may be used.
    """

    backend = "tf2_msgs topics"

    def __init__(self, node: Node, cache_duration_s: float = 10.0, max_gap_s: float = 0.1) -> None:
        from tf2_msgs.msg import TFMessage

        self._message_type = TFMessage
        self._logger = node.get_logger()
        self._max_gap_ns = round(max_gap_s * 1e9)
        self._tree = TransformTree(cache_duration_ns=round(cache_duration_s * 1e9))
        self._condition = threading.Condition()
        self._published_edges: set[tuple[str, str]] = set()
        self._publisher = node.create_publisher(TFMessage, "/tf", TF_QOS)
        self._subscriptions = [
            node.create_subscription(TFMessage, "/tf", self._on_dynamic, TF_QOS),
            node.create_subscription(TFMessage, "/tf_static", self._on_static, TF_STATIC_QOS),
        ]

    def publish(self, transforms: Sequence[StampedTransform]) -> None:
        """Send transforms on ``/tf``."""
        with self._condition:
            self._published_edges.update((t.parent, t.child) for t in transforms)
        self._publisher.publish(
            self._message_type(
                transforms=[
                    transform_stamped_msg(t.T_parent_child, t.parent, t.child, t.stamp_ns)
                    for t in transforms
                ]
            )
        )

    def _on_dynamic(self, msg: object) -> None:
        self._insert(msg, static=False)

    def _on_static(self, msg: object) -> None:
        self._insert(msg, static=True)

    def _insert(self, msg: object, static: bool) -> None:
        with self._condition:
            for transform in msg.transforms:  # type: ignore[attr-defined]
                try:
                    parent, child, stamp_ns, T = transform_from_stamped_msg(transform)
                    if not static and (parent, child) in self._published_edges:
                        continue
                    self._tree.set_transform(parent, child, T, None if static else stamp_ns)
                except (TransformTreeError, ValueError) as error:
                    self._logger.warning(
                        f"ignoring a transform on {'/tf_static' if static else '/tf'}: {error}",
                        throttle_duration_sec=5.0,
                    )
            self._condition.notify_all()

    def clear(self) -> None:
        """Forget the buffered ``/tf`` samples; ``/tf_static`` transforms stay."""
        with self._condition:
            self._tree.clear_dynamic()

    def parent_of(self, frame: str) -> str | None:
        """The parent of ``frame`` received on ``/tf`` or ``/tf_static`` (this object's own
        transforms excluded); ``None`` for a root or an unknown frame."""
        with self._condition:
            return self._tree.parent_of(frame)

    def _chain_to_root(self, frame: str) -> list[str]:
        chain = [frame]
        while (parent := self._tree.parent_of(chain[-1])) is not None:
            chain.append(parent)
        return chain

    def _covers(self, target_frame: str, source_frame: str, stamp_ns: int) -> bool:
        """Whether every dynamic edge between the frames has a sample at or after the stamp."""
        source_chain = self._chain_to_root(source_frame)
        target_chain = self._chain_to_root(target_frame)
        common = set(source_chain) & set(target_chain)
        for chain in (source_chain, target_chain):
            for child, parent in itertools.pairwise(chain):
                if child in common:
                    break
                stamps = self._tree.stamp_range(parent, child)
                if stamps is not None and stamps[1] < stamp_ns:
                    return False
        return True

    def lookup(
        self, target_frame: str, source_frame: str, stamp_ns: int, timeout_s: float
    ) -> NDArray[np.float64]:
        """``T_target_source`` at ``stamp_ns``, waiting up to ``timeout_s`` for data to cover it.

        Raises:
            TransformError: unknown or unconnected frames, or no sample within ``max_gap_s``.
        """
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    if remaining <= 0 or self._covers(target_frame, source_frame, stamp_ns):
                        return self._tree.lookup(
                            target_frame, source_frame, stamp_ns, self._max_gap_ns
                        )
                except TransformError:
                    if remaining <= 0:
                        raise
                self._condition.wait(max(remaining, 0.0))


def create_transform_interface(node: Node, cache_duration_s: float = 10.0) -> TransformInterface:
    """``tf2_ros`` when it is installed, else the ``tf2_msgs`` topic implementation.

    Raises:
        ImportError: neither ``tf2_ros`` nor ``tf2_msgs`` is installed (scripts/setup_ros.sh
            generates ``tf2_msgs`` for the wheel environment).
    """
    if importlib.util.find_spec("tf2_ros") is not None:
        return Tf2RosTransforms(node, cache_duration_s)
    if importlib.util.find_spec("tf2_msgs") is None:
        raise ImportError(
            "TF needs tf2_ros or tf2_msgs; neither is installed (install ros-<distro>-tf2-ros, "
            "or run scripts/setup_ros.sh to generate tf2_msgs)"
        )
    return TopicTransforms(node, cache_duration_s)
