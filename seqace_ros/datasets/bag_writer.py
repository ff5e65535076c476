"""Write real rosbags (rosbag2 mcap / sqlite3, ROS 1) of posed images with ``rosbags``.

Used by the tests, the synthetic-scene generator and the demo to produce the bags a robot
would record: camera images (raw or compressed), ``CameraInfo``, ``/tf`` and ``/tf_static``,
``nav_msgs/Odometry`` and ``PoseStamped`` / ``PoseWithCovarianceStamped`` topics. Messages are
stamped in their header and recorded at the same time in the bag. MCAP files get chunk,
data-section and summary CRCs (``ros2 bag record`` writes chunk and summary CRCs; ``rosbags``
writes none), so damage to them is found when they are read. A bag whose writing fails is
removed, so no partial output is left behind.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore
from tqdm import tqdm

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import invert_transform, translation_quaternion_from_transform
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.datasets.mcap_integrity import add_crcs

BagStorage = Literal["mcap", "sqlite3", "ros1"]
ImageTransport = Literal["raw", "jpeg", "png"]
PoseOutput = Literal["none", "tf", "odometry", "pose", "pose_with_covariance"]

_FROM_RGB: dict[str, int | None] = {
    "rgb8": None, "bgr8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGB2RGBA,
    "bgra8": cv2.COLOR_RGB2BGRA, "mono8": cv2.COLOR_RGB2GRAY,
}


class BagWriteError(SeqaceError, ValueError):
    """Invalid input to the bag writer (unknown storage or encoding, bad image or transform)."""


def _typestore(storage: BagStorage) -> Typestore:
    if storage == "ros1":
        store = get_typestore(Stores.ROS1_NOETIC)
        # Noetic's store lacks tf2_msgs; its definition is one line.
        store.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms",
                                          "tf2_msgs/msg/TFMessage"))
        return store
    return get_typestore(Stores.ROS2_HUMBLE)


class BagWriter:
    """Context manager that writes typed messages to a new bag.

    Args:
        path: the bag to create (a directory for rosbag2, a ``.bag`` file for ROS 1); must not
            exist.
        storage: ``mcap`` or ``sqlite3`` (rosbag2) or ``ros1``.

    Raises:
        BagWriteError: unknown storage, an existing path, or a ROS 1 path without ``.bag``.
    """

    def __init__(self, path: str | Path, storage: BagStorage = "mcap") -> None:
        self.path = Path(path)
        if storage not in ("mcap", "sqlite3", "ros1"):
            raise BagWriteError(f"storage must be mcap, sqlite3 or ros1, got {storage!r}")
        if self.path.exists():
            raise BagWriteError(f"{self.path} exists already; the writer only creates new bags")
        if storage == "ros1" and self.path.suffix != ".bag":
            raise BagWriteError(f"a ROS 1 bag path must end in .bag, got {self.path}")
        self.storage = storage
        self.typestore = _typestore(storage)
        self._writer: Ros1Writer | Ros2Writer
        if storage == "ros1":
            self._writer = Ros1Writer(self.path)
        else:
            plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
            self._writer = Ros2Writer(self.path, version=9, storage_plugin=plugin)
        self._connections: dict[str, tuple[Any, str]] = {}
        self._seq = 0

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            self._writer.close()
            if exc_type is None and self.storage == "mcap":
                for file in self.path.glob("*.mcap"):
                    add_crcs(file)
        except BaseException:
            self._remove_partial_output()
            raise
        if exc_type is not None:
            self._remove_partial_output()

    def _remove_partial_output(self) -> None:
        if self.path.is_dir():
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self.path.unlink(missing_ok=True)

    # --- message construction -------------------------------------------------------------

    def _msg(self, msgtype: str, **fields: Any) -> Any:
        return self.typestore.types[msgtype](**fields)

    def _header(self, stamp_ns: int, frame_id: str) -> Any:
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        stamp = self._msg("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)
        if self.storage == "ros1":
            self._seq += 1
            return self._msg("std_msgs/msg/Header", seq=self._seq, stamp=stamp, frame_id=frame_id)
        return self._msg("std_msgs/msg/Header", stamp=stamp, frame_id=frame_id)

    def _quaternion(self, q_xyzw: NDArray[np.float64]) -> Any:
        x, y, z, w = q_xyzw
        return self._msg("geometry_msgs/msg/Quaternion", x=x, y=y, z=z, w=w)

    def _pose(self, T: ArrayLike) -> Any:
        t, q = translation_quaternion_from_transform(T)
        return self._msg("geometry_msgs/msg/Pose", orientation=self._quaternion(q),
                         position=self._msg("geometry_msgs/msg/Point", x=t[0], y=t[1], z=t[2]))

    def _pose_with_covariance(self, T: ArrayLike) -> Any:
        """``T`` as a ``PoseWithCovariance`` with a zero covariance."""
        return self._msg("geometry_msgs/msg/PoseWithCovariance", pose=self._pose(T),
                         covariance=np.zeros(36, dtype=np.float64))

    def _transform_stamped(self, stamp_ns: int, parent: str, child: str, T: ArrayLike) -> Any:
        t, q = translation_quaternion_from_transform(T)
        transform = self._msg(
            "geometry_msgs/msg/Transform", rotation=self._quaternion(q),
            translation=self._msg("geometry_msgs/msg/Vector3", x=t[0], y=t[1], z=t[2]))
        return self._msg("geometry_msgs/msg/TransformStamped", child_frame_id=child,
                         header=self._header(stamp_ns, parent), transform=transform)

    def write(self, topic: str, msgtype: str, stamp_ns: int, message: Any) -> None:
        """Serialize ``message`` and record it on ``topic`` at bag time ``stamp_ns``.

        Raises:
            BagWriteError: if ``topic`` was used before with another type.
        """
        ros1 = self.storage == "ros1"
        if topic not in self._connections:
            latching = {"latching": int(topic == "/tf_static")} if ros1 else {}
            connection = self._writer.add_connection(topic, msgtype, typestore=self.typestore,
                                                     **latching)
            self._connections[topic] = (connection, msgtype)
        connection, known_type = self._connections[topic]
        if known_type != msgtype:
            raise BagWriteError(f"topic {topic} carries {known_type}, cannot write {msgtype}")
        serialize = self.typestore.serialize_ros1 if ros1 else self.typestore.serialize_cdr
        self._writer.write(connection, int(stamp_ns), serialize(message, msgtype))

    # --- typed writers --------------------------------------------------------------------

    def write_image(self, topic: str, stamp_ns: int, image_rgb: NDArray[np.uint8],
                    frame_id: str, encoding: str = "bgr8") -> None:
        """Write a raw ``sensor_msgs/Image`` from an (H, W, 3) uint8 RGB array.

        Args:
            encoding: rgb8, bgr8, rgba8, bgra8 (alpha 255) or mono8.

        Raises:
            BagWriteError: unknown encoding or an image that is not (H, W, 3) uint8.
        """
        _check_rgb(image_rgb)
        if encoding not in _FROM_RGB:
            raise BagWriteError(f"encoding must be one of {sorted(_FROM_RGB)}, got {encoding!r}")
        conversion = _FROM_RGB[encoding]
        pixels = image_rgb if conversion is None else cv2.cvtColor(image_rgb, conversion)
        self._write_raw_image(topic, stamp_ns, pixels, frame_id, encoding)

    def _write_raw_image(self, topic: str, stamp_ns: int, pixels: NDArray[np.generic],
                         frame_id: str, encoding: str) -> None:
        """Write (H, W[, C]) ``pixels`` as a little-endian ``sensor_msgs/Image``."""
        pixels = np.ascontiguousarray(pixels)
        message = self._msg(
            "sensor_msgs/msg/Image", header=self._header(stamp_ns, frame_id),
            height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, is_bigendian=0,
            step=pixels.strides[0], data=pixels.view(np.uint8).reshape(-1))
        self.write(topic, "sensor_msgs/msg/Image", stamp_ns, message)

    def write_depth_image(self, topic: str, stamp_ns: int, depth_m: NDArray[np.float32],
                          frame_id: str, encoding: Literal["16UC1", "32FC1"] = "16UC1") -> None:
        """Write a depth ``sensor_msgs/Image`` from (H, W) metres (0 = invalid).

        Args:
            encoding: ``16UC1`` (rounded to millimetres, 0 where invalid) or ``32FC1``
                (metres, NaN where invalid, as depth drivers publish it).

        Raises:
            BagWriteError: unknown encoding or an array that is not (H, W).
        """
        if depth_m.ndim != 2:
            raise BagWriteError(f"depth must be (H, W), got shape {depth_m.shape}")
        if encoding == "16UC1":
            pixels = np.rint(np.clip(depth_m, 0.0, 65.535) * 1000.0).astype(np.uint16)
        elif encoding == "32FC1":
            pixels = np.where(depth_m > 0, depth_m, np.nan).astype(np.float32)
        else:
            raise BagWriteError(f"depth encoding must be 16UC1 or 32FC1, got {encoding!r}")
        self._write_raw_image(topic, stamp_ns, pixels, frame_id, encoding)

    def write_compressed_image(self, topic: str, stamp_ns: int, image_rgb: NDArray[np.uint8],
                               frame_id: str, codec: Literal["jpeg", "png"] = "jpeg",
                               jpeg_quality: int = 95) -> None:
        """Write a ``sensor_msgs/CompressedImage`` (JPEG or PNG) of an RGB array.

        Raises:
            BagWriteError: unknown codec or an image that is not (H, W, 3) uint8.
        """
        _check_rgb(image_rgb)
        if codec not in ("jpeg", "png"):
            raise BagWriteError(f"codec must be jpeg or png, got {codec!r}")
        bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if codec == "jpeg" else []
        ok, encoded = cv2.imencode(".jpg" if codec == "jpeg" else ".png", bgr, params)
        if not ok:
            raise BagWriteError(f"OpenCV failed to encode a {codec} image")
        message = self._msg(
            "sensor_msgs/msg/CompressedImage", header=self._header(stamp_ns, frame_id),
            format=f"rgb8; {codec} compressed bgr8", data=encoded.reshape(-1).astype(np.uint8))
        self.write(topic, "sensor_msgs/msg/CompressedImage", stamp_ns, message)

    def write_camera_info(
        self, topic: str, stamp_ns: int, intrinsics: Intrinsics, frame_id: str,
        distortion_model: str = "plumb_bob",
        distortion: Sequence[float] = (0.0, 0.0, 0.0, 0.0, 0.0),
        roi_xywh: tuple[int, int, int, int] = (0, 0, 0, 0), binning_xy: tuple[int, int] = (0, 0),
    ) -> None:
        """Write a ``sensor_msgs/CameraInfo`` with ``K`` from ``intrinsics`` and ``P = [K | 0]``.

        ``intrinsics`` is the full sensor's; ``roi_xywh`` (x offset, y offset, width, height;
        zeros for none) and ``binning_xy`` (zeros for none) go into the message as given.
        """
        K = intrinsics.K
        P = np.hstack([K, np.zeros((3, 1))])
        x_offset, y_offset, roi_width, roi_height = roi_xywh
        roi = self._msg("sensor_msgs/msg/RegionOfInterest", x_offset=x_offset, y_offset=y_offset,
                        height=roi_height, width=roi_width, do_rectify=False)
        names = ("D", "K", "R", "P") if self.storage == "ros1" else ("d", "k", "r", "p")
        matrices = (np.asarray(distortion, dtype=np.float64), K.reshape(-1), np.eye(3).reshape(-1),
                    P.reshape(-1))
        message = self._msg(
            "sensor_msgs/msg/CameraInfo", header=self._header(stamp_ns, frame_id),
            height=intrinsics.height, width=intrinsics.width, distortion_model=distortion_model,
            binning_x=binning_xy[0], binning_y=binning_xy[1], roi=roi,
            **dict(zip(names, matrices, strict=True)))
        self.write(topic, "sensor_msgs/msg/CameraInfo", stamp_ns, message)

    def write_transforms(self, stamp_ns: int, transforms: Sequence[tuple[str, str, ArrayLike]],
                         static: bool = False) -> None:
        """Write one ``tf2_msgs/TFMessage`` of ``(parent, child, T_parent_child)`` triples.

        Goes to ``/tf_static`` when ``static`` else ``/tf``, stamped ``stamp_ns``.
        """
        message = self._msg(
            "tf2_msgs/msg/TFMessage",
            transforms=[self._transform_stamped(stamp_ns, p, c, T) for p, c, T in transforms])
        topic = "/tf_static" if static else "/tf"
        self.write(topic, "tf2_msgs/msg/TFMessage", stamp_ns, message)

    def write_odometry(
        self, topic: str, stamp_ns: int, parent: str, child: str, T_parent_child: ArrayLike
    ) -> None:
        """Write a ``nav_msgs/Odometry`` with the pose of ``child`` in ``parent`` (zero twist)."""
        vector = self._msg("geometry_msgs/msg/Vector3", x=0.0, y=0.0, z=0.0)
        twist = self._msg(
            "geometry_msgs/msg/TwistWithCovariance", covariance=np.zeros(36, dtype=np.float64),
            twist=self._msg("geometry_msgs/msg/Twist", linear=vector, angular=vector))
        message = self._msg("nav_msgs/msg/Odometry", header=self._header(stamp_ns, parent),
                            child_frame_id=child, pose=self._pose_with_covariance(T_parent_child),
                            twist=twist)
        self.write(topic, "nav_msgs/msg/Odometry", stamp_ns, message)

    def write_pose(self, topic: str, stamp_ns: int, frame_id: str, T_frame_body: ArrayLike,
                   with_covariance: bool = False) -> None:
        """Write a ``PoseStamped`` (or ``PoseWithCovarianceStamped``) in ``frame_id``."""
        header = self._header(stamp_ns, frame_id)
        if with_covariance:
            pose = self._pose_with_covariance(T_frame_body)
            msgtype = "geometry_msgs/msg/PoseWithCovarianceStamped"
        else:
            pose = self._pose(T_frame_body)
            msgtype = "geometry_msgs/msg/PoseStamped"
        self.write(topic, msgtype, stamp_ns, self._msg(msgtype, header=header, pose=pose))


def _write_depth(writer: BagWriter, frame: PosedFrame, config: FramesBagConfig,
                 static: bool) -> None:
    """The frame's depth image and CameraInfo; with ``static``, its extrinsic on /tf_static."""
    if frame.depth is None:
        raise BagWriteError(f"frame {frame.name} has no depth to write on {config.depth_topic}")
    calibration = frame.depth.calibration
    if static and config.depth_frame != config.camera_frame:
        writer.write_transforms(frame.stamp_ns, [(config.camera_frame, config.depth_frame,
                                                  calibration.T_colour_depth)], static=True)
    stamp = frame.stamp_ns + config.depth_offset_ns
    writer.write_depth_image(str(config.depth_topic), stamp, frame.depth.depth_m,
                             config.depth_frame, config.depth_encoding)
    writer.write_camera_info(config.depth_camera_info_topic, stamp,
                             calibration.depth_intrinsics, config.depth_frame)


def _check_rgb(image_rgb: NDArray[np.uint8]) -> None:
    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise BagWriteError(
            f"image must be (H, W, 3) uint8 RGB, got {image_rgb.dtype} {image_rgb.shape}")


@dataclass(frozen=True)
class FramesBagConfig:
    """How :func:`write_frames_bag` lays out posed frames in a bag.

    Attributes:
        storage: ``mcap``, ``sqlite3`` or ``ros1``.
        image_topic: topic of the images.
        camera_info_topic: topic of the ``CameraInfo`` (one per image).
        transport: ``raw`` (``Image`` with ``encoding``) or ``jpeg`` / ``png``
            (``CompressedImage``).
        encoding: raw image encoding (rgb8, bgr8, rgba8, bgra8, mono8).
        jpeg_quality: 0-100 for ``jpeg``.
        camera_frame: ``header.frame_id`` of the images (the optical frame).
        map_frame: world frame of the poses.
        poses: ``none``, ``tf`` (``/tf`` map -> body), ``odometry``, ``pose`` or
            ``pose_with_covariance`` on ``pose_topic``; written at each image stamp.
        pose_topic: topic for ``odometry`` / ``pose*``.
        body_frame: frame the poses describe; ``None`` means the camera frame itself.
            Otherwise ``T_body_cam`` is written once on ``/tf_static``.
        T_body_cam: (4, 4) extrinsic, camera optical frame to ``body_frame``.
        depth_topic: topic of the frames' depth images (``PosedFrame.depth``); ``None``:
            none written. Their CameraInfo goes on ``depth_camera_info_topic`` and their
            extrinsic on ``/tf_static`` (``camera_frame -> depth_frame``) unless the depth
            frame is the camera frame.
        depth_camera_info_topic: topic of the depth images' CameraInfo.
        depth_frame: ``header.frame_id`` of the depth images.
        depth_encoding: ``16UC1`` (millimetres) or ``32FC1`` (metres).
        depth_offset_ns: the depth images' stamps minus the colour images' (unsynchronised
            sensors).
    """

    storage: BagStorage = "mcap"
    image_topic: str = "/camera/image_raw"
    camera_info_topic: str = "/camera/camera_info"
    transport: ImageTransport = "raw"
    encoding: str = "bgr8"
    jpeg_quality: int = 95
    camera_frame: str = "camera_optical"
    map_frame: str = "map"
    poses: PoseOutput = "tf"
    pose_topic: str = "/pose"
    body_frame: str | None = None
    T_body_cam: tuple[tuple[float, ...], ...] | None = None
    depth_topic: str | None = None
    depth_camera_info_topic: str = "/camera/depth/camera_info"
    depth_frame: str = "camera_depth_optical"
    depth_encoding: Literal["16UC1", "32FC1"] = "16UC1"
    depth_offset_ns: int = 0


def write_frames_bag(
    path: str | Path, frames: Iterable[PosedFrame], config: FramesBagConfig, progress: bool = False
) -> Path:
    """Write posed frames as a bag: images, camera info and (optionally) their poses.

    Each frame's ``stamp_ns`` is its header stamp and bag time, so stamps must increase.
    Poses (camera-to-world ``T_world_cam``, converted to ``T_map_body`` with the extrinsic)
    are written at the image stamps.

    Returns:
        ``path``.

    Raises:
        BagWriteError: a frame without a pose when poses are requested, a missing extrinsic
            for ``body_frame``, or invalid images.
    """
    if config.body_frame is not None and config.T_body_cam is None:
        raise BagWriteError(f"body_frame {config.body_frame!r} needs T_body_cam")
    T_body_cam = np.eye(4) if config.T_body_cam is None else np.asarray(config.T_body_cam)
    T_cam_body = invert_transform(T_body_cam)
    body = config.body_frame or config.camera_frame
    with BagWriter(path, config.storage) as writer:
        first = True
        for frame in tqdm(frames, desc="writing bag", unit="img", disable=not progress):
            stamp = frame.stamp_ns
            if first and config.body_frame is not None and config.poses != "none":
                writer.write_transforms(
                    stamp, [(config.body_frame, config.camera_frame, T_body_cam)], static=True)
            if config.depth_topic is not None:
                _write_depth(writer, frame, config, static=first)
            first = False
            if config.transport == "raw":
                writer.write_image(config.image_topic, stamp, frame.image_rgb,
                                   config.camera_frame, config.encoding)
            else:
                writer.write_compressed_image(config.image_topic, stamp, frame.image_rgb,
                                              config.camera_frame, codec=config.transport,
                                              jpeg_quality=config.jpeg_quality)
            writer.write_camera_info(config.camera_info_topic, stamp, frame.intrinsics,
                                     config.camera_frame)
            if config.poses == "none":
                continue
            if frame.T_world_cam is None:
                raise BagWriteError(f"frame {frame.name} has no pose to write")
            T_map_body = frame.T_world_cam @ T_cam_body
            if config.poses == "tf":
                writer.write_transforms(stamp, [(config.map_frame, body, T_map_body)])
            elif config.poses == "odometry":
                writer.write_odometry(config.pose_topic, stamp, config.map_frame, body, T_map_body)
            else:
                writer.write_pose(config.pose_topic, stamp, config.map_frame, T_map_body,
                                  with_covariance=config.poses == "pose_with_covariance")
    return Path(path)
