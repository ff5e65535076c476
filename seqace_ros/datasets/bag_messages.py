"""Convert deserialized ROS messages (rosbags or rclpy objects) to library types.

Works by attribute access only, so it accepts rosbags message dataclasses from ROS 1 and
ROS 2 bags alike (ROS 1 ``CameraInfo`` spells its matrices ``K``/``D``, ROS 2 ``k``/``d``)
and, later, live rclpy messages. Quaternion order (x, y, z, w) as in the messages.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.calibration import CameraCalibration, calibration_from_fields
from seqace_ros.core.camera import DEFAULT_MAX_IMAGE_PIXELS
from seqace_ros.core.geometry import transform_from_translation_quaternion
from seqace_ros.core.image_decoding import decode_compressed_image, decode_raw_image

RAW_IMAGE_TYPE = "sensor_msgs/msg/Image"
IMAGE_TYPES = (RAW_IMAGE_TYPE, "sensor_msgs/msg/CompressedImage")
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TF_TYPE = "tf2_msgs/msg/TFMessage"
ODOMETRY_TYPE = "nav_msgs/msg/Odometry"
POSE_TYPES = (
    "geometry_msgs/msg/PoseStamped",
    "geometry_msgs/msg/PoseWithCovarianceStamped",
)


def stamp_ns(header: Any) -> int:
    """Nanoseconds of a ``std_msgs/Header`` stamp (``sec`` and ``nanosec`` fields)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def transform_from_transform_msg(transform: Any) -> NDArray[np.float64]:
    """4x4 transform of a ``geometry_msgs/Transform`` (translation, rotation x y z w)."""
    t = transform.translation
    q = transform.rotation
    return transform_from_translation_quaternion([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])


def transform_from_pose_msg(pose: Any) -> NDArray[np.float64]:
    """4x4 transform of a ``geometry_msgs/Pose`` (position, orientation x y z w)."""
    p = pose.position
    q = pose.orientation
    return transform_from_translation_quaternion([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])


def pose_of_pose_message(message: Any, msgtype: str) -> tuple[int, str, NDArray[np.float64]]:
    """Stamp (ns), world frame and ``T_world_body`` of a PoseStamped / PoseWithCovarianceStamped.

    Raises:
        ValueError: for another message type.
    """
    if msgtype == "geometry_msgs/msg/PoseStamped":
        pose = message.pose
    elif msgtype == "geometry_msgs/msg/PoseWithCovarianceStamped":
        pose = message.pose.pose
    else:
        raise ValueError(f"expected one of {POSE_TYPES}, got {msgtype!r}")
    return stamp_ns(message.header), message.header.frame_id, transform_from_pose_msg(pose)


def calibration_from_camera_info(
    message: Any, origin: str, rectified: bool = False,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> CameraCalibration:
    """Calibration of the images that go with a ``sensor_msgs/CameraInfo``, ROI and binning
    applied (ROS 1 or ROS 2 field names; see :func:`calibration_from_fields`).

    Args:
        message: the CameraInfo.
        origin: where it came from (topic or bag), for error messages.
        rectified: the images are rectified (``image_rect``): intrinsics from ``P``, no
            distortion; otherwise raw images: ``K`` and ``D``.
        max_pixels: most pixels the images may have.

    Raises:
        CalibrationError: invalid intrinsics, non-finite distortion, an unsupported
            distortion model, a ROI outside the sensor, a size the binning does not divide,
            or images of more than ``max_pixels`` pixels.
    """
    K = message.k if hasattr(message, "k") else message.K
    D = message.d if hasattr(message, "d") else message.D
    P = message.p if hasattr(message, "p") else message.P
    roi = message.roi
    return calibration_from_fields(
        width=int(message.width),
        height=int(message.height),
        K_9=np.asarray(K, dtype=np.float64),
        distortion_model=str(message.distortion_model),
        distortion=np.asarray(D, dtype=np.float64),
        origin=origin,
        roi_xywh=(roi.x_offset, roi.y_offset, roi.width, roi.height),
        binning_xy=(message.binning_x, message.binning_y),
        P_12=np.asarray(P, dtype=np.float64) if rectified else None,
        max_pixels=max_pixels)


def image_from_message(
    message: Any, msgtype: str, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 RGB image of an ``Image`` or ``CompressedImage`` message.

    Raises:
        ImageDecodingError: an encoding that is not colour or mono intensity, unsupported
            encoding, inconsistent sizes, more than ``max_pixels`` pixels or undecodable bytes.
        ValueError: for a message type that is not an image.
    """
    if msgtype == RAW_IMAGE_TYPE:
        return decode_raw_image(
            encoding=str(message.encoding),
            height=int(message.height),
            width=int(message.width),
            step=int(message.step),
            data=message.data,
            is_bigendian=bool(message.is_bigendian),
            max_pixels=max_pixels)
    if msgtype == "sensor_msgs/msg/CompressedImage":
        return decode_compressed_image(str(message.format), message.data, max_pixels)
    raise ValueError(f"expected one of {IMAGE_TYPES}, got {msgtype!r}")
