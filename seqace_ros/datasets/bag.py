"""Posed images from a rosbag (rosbag2 sqlite3 / mcap, or ROS 1), as a ``PosedFrameSource``.

One pass over the bag indexes the image messages (header stamp and frame, not the pixels),
reads the calibration and collects the poses; images are decoded lazily from the bag in
``__getitem__`` (random access by bag time) or streamed in one pass by ``__iter__``, so a
long bag never sits decoded in memory. Frames keep temporal order.

Typical use::

    config = BagConfig(image_topic="/camera/image_raw",
                       poses=PoseSourceConfig(source="tf", map_frame="map"))
    with BagDataset("run1.mcap.d", config) as frames:
        print(frames.stats)          # used / skipped counts for the mapping report
        for frame in frames: ...     # PosedFrame, T_world_cam = map <- camera optical frame
"""

from __future__ import annotations

import os
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import Connection
from rosbags.rosbag1 import ReaderError as Ros1ReaderError
from rosbags.rosbag2 import ReaderError as Ros2ReaderError
from tqdm import tqdm

from seqace_ros.core.calibration import CalibrationError, CameraCalibration, read_calibration_file
from seqace_ros.core.image_decoding import ImageDecodingError
from seqace_ros.core.transform_tree import TransformError, TransformTree
from seqace_ros.core.undistortion import Undistorter
from seqace_ros.datasets.bag_messages import (
    CAMERA_INFO_TYPE,
    IMAGE_TYPES,
    calibration_from_camera_info,
    image_from_message,
    stamp_ns,
)
from seqace_ros.datasets.bag_poses import PoseCollector, PoseSourceConfig, PoseSourceError
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.datasets.frame_selection import FrameSelectionConfig, select_frames

# What rosbags (and the storage libraries under it) raise on a truncated or corrupt bag.
_READ_ERRORS = (
    AnyReaderError,
    Ros1ReaderError,
    Ros2ReaderError,
    sqlite3.DatabaseError,
    struct.error,
    EOFError,
    OSError,
)


class BagError(ValueError):
    """A bag cannot be used for mapping: unreadable, missing topics, no poses, bad frames."""


@dataclass(frozen=True)
class BagConfig:
    """What to read from a bag and how to pose and select its images.

    Attributes:
        image_topic: ``sensor_msgs/Image`` or ``CompressedImage`` topic.
        camera_info_topic: ``CameraInfo`` topic; ``None`` derives it from the image topic
            (``/cam/image_raw[/compressed]`` -> ``/cam/camera_info``). Not read when
            ``calibration_file`` is given.
        calibration_file: ROS camera-info YAML (or flat fx/fy/cx/cy/width/height) that
            overrides the topic.
        camera_frame: the images' optical frame; ``None`` takes ``header.frame_id``.
        poses: the pose source (TF, odometry, pose topic, TUM file) and its gap.
        selection: minimum motion and frame cap.
        progress: show tqdm progress while reading.
    """

    image_topic: str
    camera_info_topic: str | None = None
    calibration_file: Path | None = None
    camera_frame: str | None = None
    poses: PoseSourceConfig = field(default_factory=PoseSourceConfig)
    selection: FrameSelectionConfig = field(default_factory=FrameSelectionConfig)
    progress: bool = True

    def resolved_camera_info_topic(self) -> str:
        """The camera-info topic, derived from the image topic unless given."""
        if self.camera_info_topic:
            return self.camera_info_topic
        topic = self.image_topic.rstrip("/")
        if topic.endswith("/compressed"):
            topic = topic[: -len("/compressed")]
        return topic.rsplit("/", 1)[0] + "/camera_info"


@dataclass(frozen=True)
class _ImageRecord:
    """Where one image message lives in the bag, and its header."""

    bag_time_ns: int
    ordinal: int  # among image messages recorded at the same bag time
    stamp_ns: int
    frame_id: str


def _describe_topics(reader: AnyReader) -> str:
    return ", ".join(f"{name} ({info.msgtype})" for name, info in sorted(reader.topics.items()))


def _span_s(stamps_ns: list[int] | tuple[int, int]) -> str:
    return f"{min(stamps_ns) / 1e9:.3f}..{max(stamps_ns) / 1e9:.3f} s"


class BagDataset:
    """Posed frames of one camera topic in a bag (a ``PosedFrameSource``).

    Args:
        path: rosbag2 directory (sqlite3 or mcap) or ROS 1 ``.bag`` file.
        config: topics, pose source and selection.

    Attributes:
        calibration: intrinsics (and distortion) of the images as read; frames are returned
            undistorted with these intrinsics.
        stats: selection statistics for the mapping report (see :attr:`stats`).

    Raises:
        BagError: missing or unreadable bag, a missing topic (listing the topics present), a
            topic of the wrong type, missing or inconsistent calibration, a TF chain that does
            not connect the map and camera frames (listing the connected groups), no pose
            overlapping the images, or an undecodable first image.
    """

    def __init__(self, path: str | Path, config: BagConfig) -> None:
        self.path = Path(path)
        self.config = config
        self._reader: AnyReader | None = None
        self._reader_pid = -1
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        reader = self._open_reader()
        self._image_connections = self._connections_of(
            reader, config.image_topic, IMAGE_TYPES, "image"
        )
        records, calibration_messages, collector = self._index(reader)
        if not records:
            raise BagError(f"image topic {config.image_topic} of bag {self.path} has no messages")
        self.camera_frame = self._camera_frame(records)
        self.calibration = self._calibration(calibration_messages)
        self._undistort = Undistorter(self.calibration)
        try:
            tree = collector.build(self.camera_frame)
        except PoseSourceError as error:
            raise BagError(f"bag {self.path}: {error}") from None
        self._select(records, tree, collector)
        _ = self[0]  # decode one image now: size or encoding problems surface at construction

    # --- reader ----------------------------------------------------------------------------

    def _open_reader(self) -> AnyReader:
        """The open reader of this process (reopened after a fork, e.g. in DataLoader workers)."""
        if self._reader is not None and self._reader_pid == os.getpid():
            return self._reader
        try:
            reader = AnyReader([self.path])
            reader.open()
        except _READ_ERRORS as error:
            raise BagError(
                f"cannot read bag {self.path} (truncated or corrupt?): {error}".rstrip(": ")
            ) from None
        self._reader, self._reader_pid = reader, os.getpid()
        return reader

    def close(self) -> None:
        """Close the bag (reopened on demand by a later access)."""
        if self._reader is not None and self._reader_pid == os.getpid():
            self._reader.close()
        self._reader = None

    def __enter__(self) -> BagDataset:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _connections_of(
        self, reader: AnyReader, topic: str, msgtypes: tuple[str, ...], role: str
    ) -> list[Connection]:
        connections = [c for c in reader.connections if c.topic == topic]
        if not connections:
            raise BagError(
                f"{role} topic {topic} is not in bag {self.path}; topics: "
                f"{_describe_topics(reader) or 'none'}"
            )
        wrong = sorted({c.msgtype for c in connections if c.msgtype not in msgtypes})
        if wrong:
            raise BagError(
                f"{role} topic {topic} in bag {self.path} has type {', '.join(wrong)}; "
                f"expected {' or '.join(msgtypes)}"
            )
        return connections

    # --- the indexing pass -----------------------------------------------------------------

    def _index(
        self, reader: AnyReader
    ) -> tuple[list[_ImageRecord], list[tuple[str, Any]], PoseCollector]:
        """One pass: image headers, camera-info messages and pose data."""
        config = self.config
        connections = list(self._image_connections)
        info_topic = None
        if config.calibration_file is None:
            info_topic = config.resolved_camera_info_topic()
            connections += self._connections_of(
                reader, info_topic, (CAMERA_INFO_TYPE,), "camera info"
            )
        for topic in config.poses.required_topics():
            self._connections_of(reader, topic, config.poses.topics()[topic], "pose")
        pose_topics = config.poses.topics()
        if config.poses.source == "tf" and not any(
            c.topic in pose_topics for c in reader.connections
        ):
            raise BagError(
                f"pose source 'tf' needs /tf or /tf_static, neither is in bag {self.path}; "
                f"topics: {_describe_topics(reader)}"
            )
        for topic, msgtypes in pose_topics.items():
            if any(c.topic == topic for c in reader.connections):
                connections += self._connections_of(reader, topic, msgtypes, "pose")

        records: list[_ImageRecord] = []
        calibration_messages: list[tuple[str, Any]] = []
        collector = PoseCollector(config.poses)
        image_ids = {id(c) for c in self._image_connections}
        last_bag_time, ordinal = -1, 0
        progress = tqdm(
            total=sum(c.msgcount for c in connections),
            desc=f"reading {self.path.name}",
            unit="msg",
            disable=not config.progress,
        )
        try:
            for connection, bag_time, raw in reader.messages(connections=connections):
                progress.update()
                message = reader.deserialize(raw, connection.msgtype)
                if id(connection) in image_ids:
                    ordinal = ordinal + 1 if bag_time == last_bag_time else 0
                    last_bag_time = bag_time
                    header = message.header
                    records.append(
                        _ImageRecord(bag_time, ordinal, stamp_ns(header), header.frame_id)
                    )
                elif connection.topic == info_topic:
                    calibration_messages.append((f"{info_topic} at {bag_time} ns", message))
                else:
                    try:
                        collector.add_message(connection.topic, connection.msgtype, message)
                    except ValueError as error:
                        raise BagError(
                            f"bad pose message on {connection.topic} at {bag_time} ns in bag "
                            f"{self.path}: {error}"
                        ) from None
        except _READ_ERRORS as error:
            raise BagError(
                f"cannot read bag {self.path} (truncated or corrupt?): {error}".rstrip(": ")
            ) from None
        finally:
            progress.close()
        return records, calibration_messages, collector

    def _camera_frame(self, records: list[_ImageRecord]) -> str:
        if self.config.camera_frame:
            return self.config.camera_frame
        frames = sorted({r.frame_id.lstrip("/") for r in records})
        if len(frames) != 1 or not frames[0]:
            raise BagError(
                f"images on {self.config.image_topic} must share one non-empty header.frame_id, "
                f"got {frames}; set camera_frame"
            )
        return frames[0]

    def _calibration(self, messages: list[tuple[str, Any]]) -> CameraCalibration:
        try:
            if self.config.calibration_file is not None:
                return read_calibration_file(self.config.calibration_file)
            if not messages:
                raise BagError(
                    f"camera info topic {self.config.resolved_camera_info_topic()} in bag "
                    f"{self.path} has no messages; give a calibration file"
                )
            calibrations = [calibration_from_camera_info(m, origin) for origin, m in messages]
        except CalibrationError as error:
            raise BagError(f"bag {self.path}: {error}") from None
        first = calibrations[0]
        changed = next((c for c in calibrations if c != first), None)
        if changed is not None:
            raise BagError(
                f"calibration on {self.config.resolved_camera_info_topic()} changes during bag "
                f"{self.path}: {first} then {changed}; give a calibration file"
            )
        return first

    # --- poses and selection -----------------------------------------------------------------

    def _select(
        self, records: list[_ImageRecord], tree: TransformTree, collector: PoseCollector
    ) -> None:
        poses = self.config.poses
        map_frame, camera = poses.map_frame, self.camera_frame
        groups = tree.connected_groups()
        if not any(map_frame in g and camera in g for g in groups):
            described = "; ".join("{" + ", ".join(g) + "}" for g in groups) or "no frames at all"
            raise BagError(
                f"pose source {poses.source!r} in bag {self.path} never connects {map_frame!r} "
                f"to camera frame {camera!r}; connected frame groups (root first): {described}"
            )
        records = sorted(records, key=lambda r: r.stamp_ns)
        posed: list[tuple[_ImageRecord, NDArray[np.float64]]] = []
        for record in records:
            try:
                posed.append(
                    (record, tree.lookup(map_frame, camera, record.stamp_ns, poses.max_gap_ns))
                )
            except TransformError:
                continue
        if not posed:
            raise BagError(
                f"no pose within {poses.max_gap_s} s of any image in bag {self.path}: images "
                f"span {_span_s([r.stamp_ns for r in records])}, {self._pose_span(collector, tree)}"
            )
        selection = select_frames([T for _, T in posed], self.config.selection)
        self._records = [posed[i][0] for i in selection.indices]
        self._T_world_cam = [posed[i][1] for i in selection.indices]
        self._stats: dict[str, Any] = {
            "bag": str(self.path),
            "image_topic": self.config.image_topic,
            "pose_source": poses.source,
            "map_frame": map_frame,
            "camera_frame": camera,
            "max_gap_s": poses.max_gap_s,
            "images_in_bag": len(records),
            "used": len(self._records),
            "skipped_no_pose": len(records) - len(posed),
            "skipped_min_motion": selection.skipped_min_motion,
            "skipped_max_frames": selection.skipped_max_frames,
            "pose_samples": collector.sample_count(),
            "first_stamp_ns": self._records[0].stamp_ns,
            "last_stamp_ns": self._records[-1].stamp_ns,
        }

    def _pose_span(self, collector: PoseCollector, tree: TransformTree) -> str:
        """Where the pose data lies in time, for the no-overlap error."""
        spans = []
        for child in sorted(tree.frames):
            parent = tree.parent_of(child)
            stamp_range = None if parent is None else tree.stamp_range(parent, child)
            if parent is not None and stamp_range is not None:
                spans.append(f"{parent} -> {child} spans {_span_s(stamp_range)}")
        if not spans:
            return f"the pose source has {collector.sample_count()} samples"
        return "; ".join(spans)

    # --- PosedFrameSource --------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """Selection statistics: images in the bag, used, skipped (no pose / min motion / cap)."""
        return dict(self._stats)

    def __len__(self) -> int:
        return len(self._records)

    def _frame(self, index: int, message: Any, msgtype: str) -> PosedFrame:
        record = self._records[index]
        try:
            image_rgb = image_from_message(message, msgtype)
            image_rgb = self._undistort(image_rgb)
        except (ImageDecodingError, CalibrationError) as error:
            raise BagError(
                f"image at {record.stamp_ns} ns on {self.config.image_topic} in bag "
                f"{self.path}: {error}"
            ) from None
        return PosedFrame(
            image_rgb=image_rgb,
            intrinsics=self.calibration.intrinsics,
            T_world_cam=self._T_world_cam[index].copy(),
            stamp_ns=record.stamp_ns,
            name=f"{self.config.image_topic}@{record.stamp_ns}",
        )

    def __getitem__(self, index: int) -> PosedFrame:
        """Frame ``index`` (negative indices count from the end), read from the bag.

        Raises:
            IndexError: out of range.
            BagError: the message cannot be read or decoded.
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame index {index} out of range for {len(self)} frames")
        index %= len(self)
        record = self._records[index]
        reader = self._open_reader()
        try:
            found = [
                (connection, raw)
                for connection, _, raw in reader.messages(
                    connections=self._image_connections,
                    start=record.bag_time_ns,
                    stop=record.bag_time_ns + 1,
                )
            ]
            connection, raw = found[record.ordinal]
            message = reader.deserialize(raw, connection.msgtype)
        except _READ_ERRORS as error:
            raise BagError(
                f"cannot read image at bag time {record.bag_time_ns} ns from {self.path}: {error}"
            ) from None
        return self._frame(index, message, connection.msgtype)

    def __iter__(self) -> Iterator[PosedFrame]:
        """All frames in temporal order, streamed in one pass over the bag."""
        if not self._records:
            return
        wanted = {(r.bag_time_ns, r.ordinal): i for i, r in enumerate(self._records)}
        reader = self._open_reader()
        start = min(r.bag_time_ns for r in self._records)
        stop = max(r.bag_time_ns for r in self._records) + 1
        decoded: dict[int, PosedFrame] = {}
        next_index = 0
        last_bag_time, ordinal = -1, 0
        try:
            for connection, bag_time, raw in reader.messages(
                connections=self._image_connections, start=start, stop=stop
            ):
                ordinal = ordinal + 1 if bag_time == last_bag_time else 0
                last_bag_time = bag_time
                index = wanted.get((bag_time, ordinal))
                if index is None:
                    continue
                message = reader.deserialize(raw, connection.msgtype)
                decoded[index] = self._frame(index, message, connection.msgtype)
                # Bag order and stamp order usually agree; buffer the rare out-of-order frame.
                while next_index in decoded:
                    yield decoded.pop(next_index)
                    next_index += 1
        except _READ_ERRORS as error:
            raise BagError(f"cannot read images from bag {self.path}: {error}") from None
        if next_index != len(self):
            raise BagError(
                f"bag {self.path} yielded {next_index} of {len(self)} indexed images; "
                "was it modified while open?"
            )
