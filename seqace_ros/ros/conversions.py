"""Every ROS message <-> numpy conversion of the live nodes, in one place.

Library conventions on the numpy side: 4x4 float64 transforms ``T_parent_child`` (maps points
from ``child`` to ``parent``), camera poses ``T_map_cam`` with OpenCV optical axes (the ROS
``*_optical_frame`` convention, REP-103), RGB uint8 images, integer nanosecond stamps.
Quaternions in messages are (x, y, z, w); the reordering happens only through
:mod:`seqace_ros.core.geometry`, called from here. Image decoding and ``CameraInfo``
calibration are shared with the bag reader (:mod:`seqace_ros.datasets.bag_messages`, on
:mod:`seqace_ros.core.image_decoding` and :mod:`seqace_ros.core.calibration`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import (
    Pose,
    PoseStamped,
    PoseWithCovarianceStamped,
    Transform,
    TransformStamped,
)
from numpy.typing import NDArray
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from seqace_ros.core.calibration import CameraCalibration
from seqace_ros.core.camera import DEFAULT_MAX_IMAGE_PIXELS, Intrinsics
from seqace_ros.core.geometry import translation_quaternion_from_transform
from seqace_ros.datasets.bag_messages import (
    calibration_from_camera_info,
    image_from_message,
    pose_of_pose_message,
    transform_from_transform_msg,
)
from seqace_ros.datasets.bag_messages import stamp_ns as header_stamp_ns

_NS_PER_S = 1_000_000_000
_ENCODE_RGB: dict[str, tuple[int, ...]] = {
    # encoding -> channel order taken from the RGB image
    "rgb8": (0, 1, 2),
    "bgr8": (2, 1, 0),
    "rgba8": (0, 1, 2),
    "bgra8": (2, 1, 0),
}


def time_msg(stamp_ns: int) -> Time:
    """``builtin_interfaces/Time`` of an integer nanosecond stamp (>= 0)."""
    if stamp_ns < 0:
        raise ValueError(f"ROS time stamps cannot be negative, got {stamp_ns} ns")
    sec, nanosec = divmod(int(stamp_ns), _NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


def image_rgb_from_msg(
    msg: Image | CompressedImage, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 RGB image of a raw or compressed image message.

    Raw encodings: rgb8, bgr8, rgba8, bgra8, mono8, mono16 (scaled to 8 bits); compressed:
    JPEG or PNG.

    Raises:
        ImageDecodingError: an encoding that is not colour or mono intensity (16UC1 depth,
            other generic types, compressed depth), unknown encoding, zero size, more than
            ``max_pixels`` pixels (compressed: as its header declares, before decoding),
            ``step`` or ``data`` length that do not match the width and height, or
            undecodable compressed bytes.
    """
    if isinstance(msg, CompressedImage):
        return image_from_message(msg, "sensor_msgs/msg/CompressedImage", max_pixels)
    return image_from_message(msg, "sensor_msgs/msg/Image", max_pixels)


def calibration_from_camera_info_msg(
    msg: CameraInfo, origin: str, rectified: bool = False,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> CameraCalibration:
    """Calibration of the images that go with a ``CameraInfo``, ROI and binning applied.

    The bag reader's conversion (:func:`calibration_from_camera_info`), so a bag and the live
    topic of one camera give the same calibration.

    Args:
        msg: the CameraInfo.
        origin: its topic, for error messages.
        rectified: the images are rectified: intrinsics from ``P``, no distortion.
        max_pixels: most pixels the images may have.

    Raises:
        CalibrationError: non-finite or non-positive K entries, skew, a bottom row of K or P
            other than 0 0 1, non-finite distortion, a zero size, an unsupported distortion
            model, a ROI outside the sensor, a size binning does not divide, or images of more
            than ``max_pixels`` pixels.
    """
    return calibration_from_camera_info(msg, origin, rectified, max_pixels)


def image_msg_from_rgb(
    image_rgb: NDArray[np.uint8], encoding: str, stamp_ns: int, frame_id: str
) -> Image:
    """A ``sensor_msgs/Image`` of an (H, W, 3) uint8 RGB image in ``encoding``.

    Args:
        image_rgb: (H, W, 3) uint8 RGB.
        encoding: rgb8, bgr8, rgba8, bgra8 (alpha 255) or mono8 (luma, ITU-R BT.601).
        stamp_ns: header stamp, nanoseconds.
        frame_id: header frame (the camera's optical frame).

    Raises:
        ValueError: another encoding or a non (H, W, 3) uint8 image.
    """
    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(
            f"expected an (H, W, 3) uint8 RGB image, got {image_rgb.shape} {image_rgb.dtype}"
        )
    height, width = image_rgb.shape[:2]
    if encoding in _ENCODE_RGB:
        pixels = image_rgb[:, :, list(_ENCODE_RGB[encoding])]
        if encoding.endswith("a8"):
            alpha = np.full((height, width, 1), 255, dtype=np.uint8)
            pixels = np.concatenate([pixels, alpha], axis=2)
    elif encoding == "mono8":
        luma = image_rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        pixels = np.rint(luma).astype(np.uint8)[:, :, None]
    else:
        raise ValueError(
            f"cannot encode to {encoding!r}; choose from {[*_ENCODE_RGB, 'mono8']}"
        )
    pixels = np.ascontiguousarray(pixels)
    return Image(
        header=Header(stamp=time_msg(stamp_ns), frame_id=frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * pixels.shape[2],
        data=pixels.tobytes(),
    )


def camera_info_msg(intrinsics: Intrinsics, stamp_ns: int, frame_id: str) -> CameraInfo:
    """A distortion-free ``sensor_msgs/CameraInfo`` (plumb_bob, zero coefficients)."""
    fx, fy, cx, cy = intrinsics.as_tuple
    return CameraInfo(
        header=Header(stamp=time_msg(stamp_ns), frame_id=frame_id),
        width=intrinsics.width,
        height=intrinsics.height,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    )


def pose_msg(T_frame_body: NDArray[np.float64]) -> Pose:
    """``geometry_msgs/Pose`` of a 4x4 transform (the body's pose in the frame)."""
    t_3, q_xyzw = translation_quaternion_from_transform(T_frame_body)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in t_3)
    o = pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in q_xyzw)
    return pose


def transform_msg(T_parent_child: NDArray[np.float64]) -> Transform:
    """``geometry_msgs/Transform`` of a 4x4 transform."""
    t_3, q_xyzw = translation_quaternion_from_transform(T_parent_child)
    transform = Transform()
    tr = transform.translation
    tr.x, tr.y, tr.z = (float(v) for v in t_3)
    r = transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in q_xyzw)
    return transform


def transform_stamped_msg(
    T_parent_child: NDArray[np.float64], parent: str, child: str, stamp_ns: int
) -> TransformStamped:
    """``geometry_msgs/TransformStamped`` ``parent -> child`` at ``stamp_ns``."""
    return TransformStamped(
        header=Header(stamp=time_msg(stamp_ns), frame_id=parent),
        child_frame_id=child,
        transform=transform_msg(T_parent_child),
    )


def transform_from_stamped_msg(
    msg: TransformStamped,
) -> tuple[str, str, int, NDArray[np.float64]]:
    """(parent, child, stamp ns, ``T_parent_child``) of a ``TransformStamped``.

    Raises:
        ValueError: a zero or non-finite quaternion.
    """
    return (
        msg.header.frame_id,
        msg.child_frame_id,
        header_stamp_ns(msg.header),
        transform_from_transform_msg(msg.transform),
    )


def pose_with_covariance_stamped_msg(
    T_frame_cam: NDArray[np.float64],
    covariance_66: NDArray[np.float64],
    frame_id: str,
    stamp_ns: int,
) -> PoseWithCovarianceStamped:
    """``PoseWithCovarianceStamped`` of a camera pose and its 6x6 covariance.

    Args:
        T_frame_cam: (4, 4) camera pose in ``frame_id``.
        covariance_66: (6, 6) covariance in ROS order (x, y, z, rotation about X, Y, Z of
            ``frame_id``), metres^2 and radians^2; stored row-major.
        frame_id: header frame (the map frame).
        stamp_ns: header stamp (the image stamp), nanoseconds.
    """
    covariance = np.asarray(covariance_66, dtype=np.float64)
    if covariance.shape != (6, 6):
        raise ValueError(f"covariance must be (6, 6), got {covariance.shape}")
    msg = PoseWithCovarianceStamped(header=Header(stamp=time_msg(stamp_ns), frame_id=frame_id))
    msg.pose.pose = pose_msg(T_frame_cam)
    msg.pose.covariance = covariance.reshape(36).tolist()
    return msg


def pose_from_pose_with_covariance_stamped_msg(
    msg: PoseWithCovarianceStamped,
) -> tuple[int, str, NDArray[np.float64]]:
    """(stamp ns, header frame, ``T_frame_body``) of a ``PoseWithCovarianceStamped``.

    Raises:
        ValueError: a non-finite position, or a zero or non-finite quaternion.
    """
    stamp_ns, frame_id, T_frame_body = pose_of_pose_message(
        msg, "geometry_msgs/msg/PoseWithCovarianceStamped")
    if not np.isfinite(T_frame_body).all():
        raise ValueError(f"pose position must be finite, got {T_frame_body[:3, 3].tolist()}")
    return stamp_ns, frame_id, T_frame_body


def pose_stamped_msg(
    T_frame_body: NDArray[np.float64], frame_id: str, stamp_ns: int
) -> PoseStamped:
    """``PoseStamped`` of a 4x4 pose (an entry of a ``nav_msgs/Path``)."""
    return PoseStamped(
        header=Header(stamp=time_msg(stamp_ns), frame_id=frame_id), pose=pose_msg(T_frame_body)
    )


def point_cloud2_msg(
    points_N3: NDArray[np.float64], frame_id: str, stamp_ns: int
) -> PointCloud2:
    """Unordered ``PointCloud2`` with float32 x, y, z fields (little endian, 12-byte points)."""
    points = np.ascontiguousarray(np.asarray(points_N3, dtype=np.float32).reshape(-1, 3))
    fields = [
        PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, name in enumerate("xyz")
    ]
    return PointCloud2(
        header=Header(stamp=time_msg(stamp_ns), frame_id=frame_id),
        height=1,
        width=len(points),
        fields=fields,
        is_bigendian=False,
        point_step=12,
        row_step=12 * len(points),
        data=points.astype("<f4").tobytes(),
        is_dense=True,
    )


def points_from_point_cloud2_msg(msg: PointCloud2) -> NDArray[np.float32]:
    """(N, 3) float32 x, y, z of a ``PointCloud2`` with float32 x, y, z fields.

    Raises:
        ValueError: a cloud without float32 ``x``, ``y``, ``z`` fields.
    """
    offsets = {f.name: f.offset for f in msg.fields if f.datatype == PointField.FLOAT32}
    missing = [name for name in "xyz" if name not in offsets]
    if missing:
        raise ValueError(f"PointCloud2 lacks float32 fields {missing}")
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(-1, msg.point_step)
    endian = ">" if msg.is_bigendian else "<"
    columns: Sequence[NDArray[np.float32]] = [
        raw[:, offsets[name] : offsets[name] + 4].copy().view(f"{endian}f4").reshape(-1)
        for name in "xyz"
    ]
    return np.column_stack(columns).astype(np.float32)
