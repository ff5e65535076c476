"""Pose sources for bag mapping: TF, an odometry topic, a pose topic or a TUM file.

Every source ends up as one :class:`~seqace_ros.core.transform_tree.TransformTree` in which
the camera pose is ``lookup(map_frame, camera_frame, stamp)``:

- ``tf``: the bag's ``/tf`` (dynamic) and ``/tf_static`` edges, e.g.
  ``map -> odom -> base_link -> camera_optical``.
- ``odometry``: ``nav_msgs/Odometry`` samples become the dynamic edge
  ``map_frame -> child_frame_id``; ``/tf_static`` (or a given extrinsic) links that body to
  the camera. The odometry's own world frame (``header.frame_id``) is taken as the map.
- ``pose``: ``PoseStamped`` / ``PoseWithCovarianceStamped`` samples of ``body_frame`` (default:
  the camera frame itself) become ``map_frame -> body_frame``.
- ``tum``: a TUM trajectory file of ``body_frame`` (default: the camera frame) in the map.

For the last three, ``/tf`` is ignored (it would duplicate the pose source), and a
``/tf_static`` edge whose child is the body frame is dropped in favour of the pose source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.transform_tree import TransformTree, TransformTreeError
from seqace_ros.datasets.bag_messages import (
    ODOMETRY_TYPE,
    POSE_TYPES,
    TF_TYPE,
    pose_of_pose_message,
    stamp_ns,
    transform_from_pose_msg,
    transform_from_transform_msg,
)
from seqace_ros.datasets.trajectory import TrajectoryError, read_tum_trajectory

PoseSourceName = Literal["tf", "odometry", "pose", "tum"]
POSE_SOURCES: tuple[str, ...] = ("tf", "odometry", "pose", "tum")


class PoseSourceError(SeqaceError, ValueError):
    """The pose source is misconfigured or its data is inconsistent."""


@dataclass(frozen=True)
class PoseSourceConfig:
    """Where the camera poses of a bag come from.

    Attributes:
        source: ``tf``, ``odometry``, ``pose`` or ``tum``.
        map_frame: the world frame the map is built in.
        topic: the ``nav_msgs/Odometry`` or pose topic (``odometry`` / ``pose``).
        tum_file: the trajectory file (``tum``).
        body_frame: frame the ``pose`` / ``tum`` poses describe; ``None`` means the camera
            optical frame. (``odometry`` uses the messages' ``child_frame_id``.)
        T_body_cam: optional (4, 4) extrinsic from camera optical frame to the body, used
            instead of ``/tf_static``.
        max_gap_s: how far from an image stamp pose samples may be (seconds).
    """

    source: PoseSourceName = "tf"
    map_frame: str = "map"
    topic: str | None = None
    tum_file: Path | None = None
    body_frame: str | None = None
    T_body_cam: tuple[tuple[float, ...], ...] | None = None
    max_gap_s: float = 0.1

    def __post_init__(self) -> None:
        if self.source not in POSE_SOURCES:
            raise PoseSourceError(
                f"pose source must be one of {', '.join(POSE_SOURCES)}, got {self.source!r}")
        if self.source in ("odometry", "pose") and not self.topic:
            raise PoseSourceError(f"pose source {self.source!r} needs a topic")
        if self.source == "tum" and self.tum_file is None:
            raise PoseSourceError("pose source 'tum' needs tum_file")
        if not self.max_gap_s >= 0.0:
            raise PoseSourceError(f"max_gap_s must be >= 0, got {self.max_gap_s}")
        if self.T_body_cam is not None and np.asarray(self.T_body_cam).shape != (4, 4):
            raise PoseSourceError(
                f"T_body_cam must be 4x4, got shape {np.asarray(self.T_body_cam).shape}")

    @property
    def max_gap_ns(self) -> int:
        """``max_gap_s`` in nanoseconds."""
        return round(self.max_gap_s * 1e9)

    def topics(self) -> dict[str, tuple[str, ...]]:
        """Bag topics this source reads, each with the message types it accepts."""
        if self.source == "tf":
            return {"/tf": (TF_TYPE,), "/tf_static": (TF_TYPE,)}
        needed: dict[str, tuple[str, ...]] = {"/tf_static": (TF_TYPE,)}
        if self.source == "odometry" and self.topic:
            needed[self.topic] = (ODOMETRY_TYPE,)
        elif self.source == "pose" and self.topic:
            needed[self.topic] = POSE_TYPES
        return needed

    def required_topics(self) -> tuple[str, ...]:
        """Topics that must be in the bag (``/tf_static`` is optional but for ``tf``)."""
        if self.source == "tf":
            return ()
        return (self.topic,) if self.topic else ()


Edge = tuple[str, str, NDArray[np.float64]]


class PoseCollector:
    """Collects pose messages from one pass over a bag, then builds the transform tree."""

    def __init__(self, config: PoseSourceConfig) -> None:
        self.config = config
        self._static: list[Edge] = []
        self._dynamic: list[tuple[int, str, str, NDArray[np.float64]]] = []
        self._body_samples: list[tuple[int, NDArray[np.float64]]] = []
        self._odometry_children: set[str] = set()

    def add_message(self, topic: str, msgtype: str, message: Any) -> None:
        """Take one deserialized message from a topic listed by ``config.topics()``."""
        if msgtype == TF_TYPE:
            for transform in message.transforms:
                parent = transform.header.frame_id.lstrip("/")
                child = transform.child_frame_id.lstrip("/")
                T = transform_from_transform_msg(transform.transform)
                if topic == "/tf_static":
                    self._static.append((parent, child, T))
                else:
                    self._dynamic.append((stamp_ns(transform.header), parent, child, T))
        elif msgtype == ODOMETRY_TYPE:
            self._odometry_children.add(message.child_frame_id.lstrip("/"))
            T = transform_from_pose_msg(message.pose.pose)
            self._body_samples.append((stamp_ns(message.header), T))
        elif msgtype in POSE_TYPES:
            stamp, _, T = pose_of_pose_message(message, msgtype)
            self._body_samples.append((stamp, T))

    def body_frame(self, camera_frame: str) -> str:
        """The frame whose poses the source gives (the camera frame for ``tf``).

        Raises:
            PoseSourceError: odometry messages that name several child frames, or none.
        """
        if self.config.source == "tf":
            return camera_frame
        if self.config.source == "odometry":
            if len(self._odometry_children) != 1:
                raise PoseSourceError(
                    f"odometry topic {self.config.topic} must name exactly one child_frame_id, "
                    f"got {sorted(self._odometry_children) or 'no messages'}")
            return next(iter(self._odometry_children)) or camera_frame
        return self.config.body_frame or camera_frame

    def sample_count(self) -> int:
        """Number of pose samples collected (dynamic TF transforms or body poses)."""
        return len(self._dynamic) + len(self._body_samples)

    def build(self, camera_frame: str) -> TransformTree:
        """The transform tree linking ``map_frame`` to ``camera_frame``.

        Raises:
            PoseSourceError: inconsistent frames (e.g. a frame with two parents, a static
                edge that is also dynamic) or an unreadable TUM file.
        """
        config = self.config
        tree = TransformTree(cache_duration_ns=None)
        body = self.body_frame(camera_frame)
        given_extrinsic = config.T_body_cam is not None and body != camera_frame
        try:
            for parent, child, T in self._static:
                overridden = config.source != "tf" and child == body
                if overridden or (given_extrinsic and child == camera_frame):
                    continue
                tree.set_transform(parent, child, T)
            if given_extrinsic:
                tree.set_transform(body, camera_frame, np.asarray(config.T_body_cam))
            for stamp, parent, child, T in self._dynamic:
                tree.set_transform(parent, child, T, stamp)
            samples = self._body_samples
            if config.source == "tum" and config.tum_file is not None:
                trajectory = read_tum_trajectory(config.tum_file)
                samples = list(
                    zip(trajectory.stamps_ns.tolist(), trajectory.T_world_body_N44, strict=True))
            if config.source != "tf" and body != config.map_frame:
                for stamp, T in samples:
                    tree.set_transform(config.map_frame, body, T, stamp)
        except (TransformTreeError, TrajectoryError) as error:
            raise PoseSourceError(f"pose source {config.source!r}: {error}") from None
        return tree
