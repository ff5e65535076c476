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

RGB-D bags (``depth_topic``): each image is paired with the depth image nearest in time
(within ``depth_max_offset_s``; images without one are skipped and counted). The depth images
keep their own calibration (their CameraInfo) and frame; the depth-to-colour extrinsic is
looked up in the bag's TF between the two optical frames (``/tf_static`` usually), unless
given. Depth is read with its image, lazily.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from tqdm import tqdm

from seqace_ros.core.calibration import CalibrationError, CameraCalibration, read_calibration_file
from seqace_ros.core.depth import DepthCalibration, DepthError, DepthImage
from seqace_ros.core.image_decoding import ImageDecodingError, decode_depth_image
from seqace_ros.core.stop import check_stop
from seqace_ros.core.transform_tree import TransformError, TransformTree
from seqace_ros.core.undistortion import Undistorter
from seqace_ros.datasets.bag_error import BagError
from seqace_ros.datasets.bag_integrity import verify_bag
from seqace_ros.datasets.bag_messages import (
    CAMERA_INFO_TYPE,
    IMAGE_TYPES,
    RAW_IMAGE_TYPE,
    calibration_from_camera_info,
    image_from_message,
    stamp_ns,
)
from seqace_ros.datasets.bag_poses import PoseCollector, PoseSourceConfig, PoseSourceError
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.datasets.frame_selection import FrameSelectionConfig, select_frames


def _reason(error: Exception) -> str:
    """A third-party error on one short line (rosbags quotes whole message definitions)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


def _messages(
    reader: AnyReader, where: str, connections: list[Connection],
    start: int | None = None, stop: int | None = None,
) -> Iterator[tuple[int, Connection, int, bytes]]:
    """``(index, connection, bag_time_ns, raw)`` of the messages on ``connections`` (from bag
    time ``start`` to ``stop``), in bag order; ``index`` counts the messages read from 0.

    Raises:
        BagError: the reader fails on the bag's bytes, naming the message index reached.
    """
    messages = reader.messages(connections=connections, start=start, stop=stop)
    index = 0
    while True:
        try:
            connection, bag_time, raw = next(messages)
        except StopIteration:
            return
        except Exception as error:  # rosbags on damaged bytes fails in many ways
            raise BagError(f"cannot read {where} at message {index} (truncated or corrupt?): "
                           f"{_reason(error)}") from None
        yield index, connection, bag_time, raw
        index += 1


def _deserialize(reader: AnyReader, raw: bytes, connection: Connection, what: str) -> Any:
    """The message of ``raw`` on ``connection``.

    Raises:
        BagError: the bytes are not a message of its type (``what`` says which message).
    """
    try:
        return reader.deserialize(raw, connection.msgtype)
    except Exception as error:  # rosbags on damaged bytes fails in many ways
        raise BagError(f"{what} on {connection.topic} cannot be deserialized as "
                       f"{connection.msgtype} (corrupt?): {_reason(error)}") from None


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
        depth_topic: ``sensor_msgs/Image`` depth topic (16UC1 millimetres or 32FC1 metres)
            for RGB-D mapping; ``None``: RGB only.
        depth_camera_info_topic: the depth images' ``CameraInfo``; ``None`` derives it from
            the depth topic like ``camera_info_topic``.
        T_colour_depth: (4, 4) depth-to-colour extrinsic (rows), overriding TF.
        depth_max_offset_s: largest stamp difference between an image and its depth image.
    """

    image_topic: str
    camera_info_topic: str | None = None
    calibration_file: Path | None = None
    camera_frame: str | None = None
    poses: PoseSourceConfig = field(default_factory=PoseSourceConfig)
    selection: FrameSelectionConfig = field(default_factory=FrameSelectionConfig)
    progress: bool = True
    depth_topic: str | None = None
    depth_camera_info_topic: str | None = None
    T_colour_depth: tuple[tuple[float, ...], ...] | None = None
    depth_max_offset_s: float = 0.02

    def resolved_camera_info_topic(self) -> str:
        """The camera-info topic, derived from the image topic unless given."""
        return self.camera_info_topic or _sibling_camera_info_topic(self.image_topic)

    def resolved_depth_camera_info_topic(self) -> str:
        """The depth camera-info topic, derived from the depth topic unless given."""
        return self.depth_camera_info_topic or _sibling_camera_info_topic(self.depth_topic or "")


def _sibling_camera_info_topic(image_topic: str) -> str:
    """``/cam/image_raw[/compressed]`` -> ``/cam/camera_info``."""
    topic = image_topic.rstrip("/")
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


@dataclass
class _DepthIndex:
    """What the indexing pass found of the depth stream."""

    records: list[_ImageRecord] = field(default_factory=list)
    camera_infos: list[tuple[str, Any]] = field(default_factory=list)
    _last_bag_time: int = -1
    _ordinal: int = 0

    def add(self, bag_time_ns: int, header: Any) -> None:
        """Index one depth image message by its bag time and header."""
        self._ordinal = self._ordinal + 1 if bag_time_ns == self._last_bag_time else 0
        self._last_bag_time = bag_time_ns
        self.records.append(_ImageRecord(bag_time_ns, self._ordinal, stamp_ns(header),
                                         header.frame_id))


def _pair_by_stamp(
    images: list[_ImageRecord], depths: list[_ImageRecord], max_offset_ns: int,
) -> dict[int, _ImageRecord]:
    """For each image (by ``id``), the depth record nearest in stamp within ``max_offset_ns``."""
    if not depths:
        return {}
    depths = sorted(depths, key=lambda r: r.stamp_ns)
    stamps = np.array([r.stamp_ns for r in depths], dtype=np.int64)
    paired = {}
    for image in images:
        i = int(np.searchsorted(stamps, image.stamp_ns))
        nearest = min((j for j in (i - 1, i) if 0 <= j < len(depths)),
                      key=lambda j: abs(int(stamps[j]) - image.stamp_ns))
        if abs(int(stamps[nearest]) - image.stamp_ns) <= max_offset_ns:
            paired[id(image)] = depths[nearest]
    return paired


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
        verify_bag(self.path)
        reader = self._open_reader()
        self._image_connections = self._connections_of(
            reader, config.image_topic, IMAGE_TYPES, "image"
        )
        self._depth_connections = (
            self._connections_of(reader, config.depth_topic, (RAW_IMAGE_TYPE,), "depth image")
            if config.depth_topic else [])
        records, calibration_messages, collector, depth = self._index(reader)
        if not records:
            raise BagError(f"image topic {config.image_topic} of bag {self.path} has no messages")
        self.camera_frame = self._camera_frame(records)
        self.calibration = self._calibration(calibration_messages)
        try:
            self._undistort = Undistorter(self.calibration)
        except CalibrationError as error:  # an implausible distortion
            raise BagError(f"bag {self.path}: {error}") from None
        try:
            tree = collector.build(self.camera_frame)
        except PoseSourceError as error:
            raise BagError(f"bag {self.path}: {error}") from None
        self.depth_calibration = (self._depth_calibration(depth, tree, records[0].stamp_ns)
                                  if config.depth_topic else None)
        self._select(records, tree, collector, depth.records)
        _ = self[0]  # decode one image now: size or encoding problems surface at construction

    # --- reader ----------------------------------------------------------------------------

    def _open_reader(self) -> AnyReader:
        """The open reader of this process (reopened after a fork, e.g. in DataLoader workers)."""
        if self._reader is not None and self._reader_pid == os.getpid():
            return self._reader
        try:
            reader = AnyReader([self.path])
            reader.open()
        except Exception as error:  # rosbags on damaged bytes fails in many ways
            raise BagError(f"cannot read bag {self.path} (truncated or corrupt?): "
                           f"{_reason(error)}") from None
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
    ) -> tuple[list[_ImageRecord], list[tuple[str, Any]], PoseCollector, _DepthIndex]:
        """One pass: image and depth headers, camera-info messages and pose data."""
        config = self.config
        connections = list(self._image_connections) + list(self._depth_connections)
        info_topic = None
        if config.calibration_file is None:
            info_topic = config.resolved_camera_info_topic()
            connections += self._connections_of(
                reader, info_topic, (CAMERA_INFO_TYPE,), "camera info"
            )
        depth = _DepthIndex()
        depth_info_topic = None
        if config.depth_topic:
            depth_info_topic = config.resolved_depth_camera_info_topic()
            connections += self._connections_of(
                reader, depth_info_topic, (CAMERA_INFO_TYPE,), "depth camera info")
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
        depth_ids = {id(c) for c in self._depth_connections}
        last_bag_time, ordinal = -1, 0
        progress = tqdm(
            total=sum(c.msgcount for c in connections),
            desc=f"reading {self.path.name}",
            unit="msg",
            disable=not config.progress,
        )
        read: Counter[int] = Counter()
        try:
            for index, connection, bag_time, raw in _messages(reader, f"bag {self.path}",
                                                              connections):
                check_stop()
                progress.update()
                read[id(connection)] += 1
                what = f"message {index} (bag time {bag_time} ns) of bag {self.path}"
                message = _deserialize(reader, raw, connection, what)
                if id(connection) in image_ids:
                    ordinal = ordinal + 1 if bag_time == last_bag_time else 0
                    last_bag_time = bag_time
                    header = message.header
                    records.append(
                        _ImageRecord(bag_time, ordinal, stamp_ns(header), header.frame_id)
                    )
                elif id(connection) in depth_ids:
                    depth.add(bag_time, message.header)
                elif connection.topic == depth_info_topic:
                    depth.camera_infos.append((f"{depth_info_topic} at {bag_time} ns", message))
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
        finally:
            progress.close()
        for connection in connections:
            if read[id(connection)] != connection.msgcount:
                raise BagError(f"bag {self.path} holds {read[id(connection)]} messages on "
                               f"{connection.topic}, its index says {connection.msgcount} "
                               "(truncated or corrupt?)")
        return records, calibration_messages, collector, depth

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
        if self.config.calibration_file is not None:
            try:
                return read_calibration_file(self.config.calibration_file)
            except CalibrationError as error:
                raise BagError(f"bag {self.path}: {error}") from None
        return self._constant_calibration(messages, self.config.resolved_camera_info_topic(),
                                          "give a calibration file")

    def _constant_calibration(
        self, messages: list[tuple[str, Any]], topic: str, remedy: str,
    ) -> CameraCalibration:
        """The one calibration all ``messages`` (CameraInfo of ``topic``) agree on."""
        if not messages:
            raise BagError(f"camera info topic {topic} in bag {self.path} has no messages; "
                           f"{remedy}")
        try:
            calibrations = [calibration_from_camera_info(m, origin) for origin, m in messages]
        except CalibrationError as error:
            raise BagError(f"bag {self.path}: {error}") from None
        first = calibrations[0]
        changed = next((c for c in calibrations if c != first), None)
        if changed is not None:
            raise BagError(
                f"calibration on {topic} changes during bag {self.path}: {first} then "
                f"{changed}; {remedy}"
            )
        return first

    def _depth_calibration(
        self, depth: _DepthIndex, tree: TransformTree, stamp_ns: int,
    ) -> DepthCalibration:
        """Depth intrinsics from the depth CameraInfo, the extrinsic as given or from TF."""
        config = self.config
        topic = config.resolved_depth_camera_info_topic()
        calibration = self._constant_calibration(depth.camera_infos, topic,
                                                 "the depth images need their CameraInfo")
        if not calibration.is_pinhole:
            raise BagError(f"depth camera info on {topic} in bag {self.path} has "
                           f"{calibration.distortion_model} distortion; depth must be rectified")
        if not depth.records:
            raise BagError(f"depth topic {config.depth_topic} of bag {self.path} has no messages")
        depth_frames = sorted({r.frame_id.lstrip("/") for r in depth.records})
        if len(depth_frames) != 1 or not depth_frames[0]:
            raise BagError(f"depth images on {config.depth_topic} must share one non-empty "
                           f"header.frame_id, got {depth_frames}")
        if config.T_colour_depth is not None:
            T_colour_depth = np.asarray(config.T_colour_depth, dtype=np.float64)
        elif depth_frames[0] == self.camera_frame:
            T_colour_depth = np.eye(4)
        else:
            try:
                T_colour_depth = tree.lookup(self.camera_frame, depth_frames[0], stamp_ns,
                                             config.poses.max_gap_ns)
            except TransformError as error:
                raise BagError(
                    f"no transform from depth frame {depth_frames[0]!r} to camera frame "
                    f"{self.camera_frame!r} in bag {self.path} ({error}); publish it on "
                    "/tf_static or give the depth-to-colour extrinsic") from None
        try:
            return DepthCalibration(calibration.intrinsics, T_colour_depth)
        except DepthError as error:
            raise BagError(f"bag {self.path}: {error}") from None

    # --- poses and selection -----------------------------------------------------------------

    def _select(
        self, records: list[_ImageRecord], tree: TransformTree, collector: PoseCollector,
        depth_records: list[_ImageRecord],
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
        with_pose = len(posed)
        depth_of: dict[int, _ImageRecord] = {}
        if self.config.depth_topic:
            depth_of = _pair_by_stamp([r for r, _ in posed], depth_records,
                                      round(self.config.depth_max_offset_s * 1e9))
            posed = [(r, T) for r, T in posed if id(r) in depth_of]
            if not posed:
                raise BagError(
                    f"no image on {self.config.image_topic} has a depth image on "
                    f"{self.config.depth_topic} within {self.config.depth_max_offset_s} s in bag "
                    f"{self.path}: depth spans {_span_s([r.stamp_ns for r in depth_records])}")
        selection = select_frames([T for _, T in posed], self.config.selection)
        self._records = [posed[i][0] for i in selection.indices]
        self._depth_records = [depth_of[id(r)] for r in self._records] if depth_of else []
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
            "skipped_no_pose": len(records) - with_pose,
            "skipped_no_depth": with_pose - len(posed),
            "skipped_min_motion": selection.skipped_min_motion,
            "skipped_max_frames": selection.skipped_max_frames,
            "pose_samples": collector.sample_count(),
            "first_stamp_ns": self._records[0].stamp_ns,
            "last_stamp_ns": self._records[-1].stamp_ns,
            "depth_topic": self.config.depth_topic,
            "T_colour_depth": (None if self.depth_calibration is None
                               else self.depth_calibration.T_colour_depth.tolist()),
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
            depth=self._depth_image(index) if self.depth_calibration is not None else None,
        )

    def _read_message(self, connections: list[Connection], record: _ImageRecord) -> Any:
        """The message of ``record`` on ``connections``, read by its bag time."""
        reader = self._open_reader()
        where = f"bag {self.path} at bag time {record.bag_time_ns} ns"
        found = [(connection, raw) for _, connection, _, raw in _messages(
            reader, where, connections, start=record.bag_time_ns, stop=record.bag_time_ns + 1)]
        if record.ordinal >= len(found):
            raise BagError(f"{where}: message {record.ordinal} of {len(found)} is gone; was the "
                           "bag modified while open?")
        connection, raw = found[record.ordinal]
        return connection, _deserialize(reader, raw, connection, f"the message at bag time "
                                        f"{record.bag_time_ns} ns of bag {self.path}")

    def _depth_image(self, index: int) -> DepthImage:
        """The depth image paired with frame ``index``, with the depth calibration."""
        assert self.depth_calibration is not None  # only called for RGB-D bags
        record = self._depth_records[index]
        _, message = self._read_message(self._depth_connections, record)
        try:
            depth_m = decode_depth_image(
                encoding=str(message.encoding), height=int(message.height),
                width=int(message.width), step=int(message.step), data=message.data,
                is_bigendian=bool(message.is_bigendian))
            return DepthImage(depth_m, self.depth_calibration)
        except (ImageDecodingError, DepthError) as error:
            raise BagError(f"depth image at {record.stamp_ns} ns on {self.config.depth_topic} "
                           f"in bag {self.path}: {error}") from None

    def __getitem__(self, index: int) -> PosedFrame:
        """Frame ``index`` (negative indices count from the end), read from the bag.

        Raises:
            IndexError: out of range.
            BagError: the message cannot be read or decoded.
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame index {index} out of range for {len(self)} frames")
        index %= len(self)
        connection, message = self._read_message(self._image_connections, self._records[index])
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
        for position, connection, bag_time, raw in _messages(
            reader, f"images of bag {self.path}", self._image_connections, start, stop
        ):
            ordinal = ordinal + 1 if bag_time == last_bag_time else 0
            last_bag_time = bag_time
            index = wanted.get((bag_time, ordinal))
            if index is None:
                continue
            message = _deserialize(reader, raw, connection, f"image message {position} (bag "
                                   f"time {bag_time} ns) of bag {self.path}")
            decoded[index] = self._frame(index, message, connection.msgtype)
            # Bag order and stamp order usually agree; buffer the rare out-of-order frame.
            while next_index in decoded:
                yield decoded.pop(next_index)
                next_index += 1
        if next_index != len(self):
            raise BagError(
                f"bag {self.path} yielded {next_index} of {len(self)} indexed images; "
                "was it modified while open?"
            )
