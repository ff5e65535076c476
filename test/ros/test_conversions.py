"""ROS message <-> numpy conversions (rclpy message classes, no DDS)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from ros_harness import import_ros_module

sensor_msgs = import_ros_module("sensor_msgs.msg")
serialization = import_ros_module("rclpy.serialization")

pytestmark = pytest.mark.ros

from seqace_ros.core.calibration import CalibrationError  # noqa: E402
from seqace_ros.core.camera import Intrinsics  # noqa: E402
from seqace_ros.core.geometry import make_transform, pose_error  # noqa: E402
from seqace_ros.core.image_decoding import ImageDecodingError  # noqa: E402
from seqace_ros.datasets.bag import BagConfig, BagDataset  # noqa: E402
from seqace_ros.datasets.bag_messages import transform_from_pose_msg  # noqa: E402
from seqace_ros.datasets.bag_writer import BagWriter  # noqa: E402
from seqace_ros.ros import conversions  # noqa: E402

INTRINSICS = Intrinsics(fx=525.0, fy=526.0, cx=319.5, cy=239.5, width=640, height=480)


def random_rgb(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def roundtrip(msg: object) -> object:
    """Serialize and deserialize, as DDS would: catches fields of the wrong type or size."""
    return serialization.deserialize_message(serialization.serialize_message(msg), type(msg))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_image_round_trip(encoding: str) -> None:
    image = random_rgb()
    msg = conversions.image_msg_from_rgb(image, encoding, 1_234_567_890_123, "cam_optical")
    assert msg.encoding == encoding
    assert msg.step == 64 * (4 if encoding.endswith("a8") else 3)
    if encoding.startswith("bgr"):
        assert bytes(msg.data[:3]) == bytes(image[0, 0, ::-1])
    decoded = conversions.image_rgb_from_msg(roundtrip(msg))
    np.testing.assert_array_equal(decoded, image)
    assert conversions.header_stamp_ns(msg.header) == 1_234_567_890_123
    assert msg.header.frame_id == "cam_optical"


def test_mono8_encodes_luma_and_decodes_to_grey_rgb() -> None:
    image = random_rgb()
    msg = conversions.image_msg_from_rgb(image, "mono8", 0, "cam")
    decoded = conversions.image_rgb_from_msg(msg)
    expected = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    assert np.abs(decoded[:, :, 0].astype(int) - expected.astype(int)).max() <= 1
    np.testing.assert_array_equal(decoded[:, :, 0], decoded[:, :, 2])


def test_mono16_and_padded_rows_decode() -> None:
    values = np.arange(12, dtype="<u2").reshape(3, 4) * 1000
    padded = np.zeros((3, 10), dtype=np.uint8)  # step 10 > 4 * 2 bytes
    padded[:, :8] = values.view(np.uint8).reshape(3, 8)
    msg = sensor_msgs.Image(
        height=3, width=4, encoding="mono16", is_bigendian=0, step=10, data=padded.tobytes()
    )
    decoded = conversions.image_rgb_from_msg(msg)
    assert decoded.shape == (3, 4, 3)
    assert decoded[2, 3, 0] == 255
    assert decoded[0, 0, 0] == 0


@pytest.mark.parametrize(("codec", "max_mean_error"), [(".png", 0.0), (".jpg", 3.0)])
def test_compressed_image_decodes(codec: str, max_mean_error: float) -> None:
    ramp = np.linspace(0, 255, 64, dtype=np.float64)
    image = np.stack(
        [np.tile(ramp, (48, 1)), np.tile(ramp[::-1], (48, 1)), np.full((48, 64), 90.0)], -1
    ).astype(np.uint8)
    ok, encoded = cv2.imencode(codec, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    msg = sensor_msgs.CompressedImage(format=f"bgr8; {codec[1:]} compressed bgr8",
                                      data=encoded.tobytes())
    decoded = conversions.image_rgb_from_msg(roundtrip(msg))
    assert decoded.shape == image.shape
    # channel order: red ramps up to the right, green down
    assert decoded[0, -1, 0] > 240
    assert decoded[0, -1, 1] < 15
    assert np.abs(decoded.astype(int) - image.astype(int)).mean() <= max_mean_error


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"encoding": "yuv422_yuy2"}, "unsupported image encoding 'yuv422_yuy2'"),
        ({"step": 100}, "needs step >= 192 bytes, got 100"),
        ({"data": b"\0" * 10}, "needs 9216 bytes, got 10"),
        ({"height": 0, "width": 0, "step": 0, "data": b""}, "must be positive, got 0x0"),
    ],
)
def test_bad_raw_images_raise_typed_errors(fields: dict, match: str) -> None:
    msg = conversions.image_msg_from_rgb(random_rgb(), "rgb8", 0, "cam")
    for name, value in fields.items():
        setattr(msg, name, value)
    with pytest.raises(ImageDecodingError, match=match):
        conversions.image_rgb_from_msg(msg)


def test_bad_compressed_image_raises() -> None:
    with pytest.raises(ImageDecodingError, match="cannot decode compressed image"):
        conversions.image_rgb_from_msg(sensor_msgs.CompressedImage(format="jpeg", data=b"nope"))
    with pytest.raises(ImageDecodingError, match="no data"):
        conversions.image_rgb_from_msg(sensor_msgs.CompressedImage(format="jpeg", data=b""))


def test_image_msg_from_rgb_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="cannot encode to 'yuv'"):
        conversions.image_msg_from_rgb(random_rgb(), "yuv", 0, "cam")
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        conversions.image_msg_from_rgb(np.zeros((4, 4), np.uint8), "rgb8", 0, "cam")


def test_camera_info_round_trip() -> None:
    msg = roundtrip(conversions.camera_info_msg(INTRINSICS, 5, "cam"))
    calibration = conversions.calibration_from_camera_info_msg(msg, "camera_info")
    assert calibration.intrinsics == INTRINSICS
    assert calibration.is_pinhole


def test_camera_info_with_nan_or_zero_focal_raises() -> None:
    msg = conversions.camera_info_msg(INTRINSICS, 5, "cam")
    k = list(msg.k)
    k[2] = math.nan
    msg.k = k
    with pytest.raises(CalibrationError, match=r"camera_info: intrinsics must be finite"):
        conversions.calibration_from_camera_info_msg(msg, "camera_info")
    msg = conversions.camera_info_msg(INTRINSICS, 5, "cam")
    msg.k = [0.0] * 9
    with pytest.raises(CalibrationError, match="focal lengths must be positive"):
        conversions.calibration_from_camera_info_msg(msg, "camera_info")


@pytest.mark.parametrize("storage", ["mcap", "ros1"])
def test_bag_camera_info_with_roi_and_binning_matches_the_node(
    tmp_path: Path, storage: str
) -> None:
    roi_xywh, binning_xy = (100, 40, 320, 240), (2, 4)
    msg = conversions.camera_info_msg(INTRINSICS, 5, "cam")
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = roi_xywh
    msg.binning_x, msg.binning_y = binning_xy
    node_calibration = conversions.calibration_from_camera_info_msg(roundtrip(msg), "ci")
    sensor_roi = Intrinsics(525.0, 526.0, 219.5, 199.5, 320, 240)
    assert node_calibration.intrinsics == sensor_roi.resized(160, 60)

    path = tmp_path / ("b.bag" if storage == "ros1" else "b")
    with BagWriter(path, storage) as writer:  # type: ignore[arg-type]
        for i in range(3):
            stamp = (100 + i) * 1_000_000_000
            writer.write_image("/camera/image_raw", stamp, random_rgb(60, 160, seed=i), "cam")
            writer.write_camera_info(
                "/camera/camera_info",
                stamp,
                INTRINSICS,
                "cam",
                roi_xywh=roi_xywh,
                binning_xy=binning_xy,
            )
            writer.write_transforms(stamp, [("map", "cam", make_transform(np.eye(3), [i, 0, 0]))])
    config = BagConfig(image_topic="/camera/image_raw", progress=False)
    with BagDataset(path, config) as dataset:
        assert dataset.calibration == node_calibration
        assert dataset[0].intrinsics == node_calibration.intrinsics


def test_pose_and_transform_quaternion_order() -> None:
    # 90 degrees about z: quaternion (x, y, z, w) = (0, 0, sin 45, cos 45).
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    T = make_transform(R, [1.0, 2.0, 3.0])
    pose = conversions.pose_msg(T)
    assert (pose.position.x, pose.position.y, pose.position.z) == (1.0, 2.0, 3.0)
    s = math.sqrt(0.5)
    q = pose.orientation
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], [0.0, 0.0, s, s], atol=1e-12)
    transform = conversions.transform_msg(T).rotation
    np.testing.assert_allclose(
        [transform.x, transform.y, transform.z, transform.w], [0.0, 0.0, s, s], atol=1e-12
    )


def test_transform_stamped_round_trip() -> None:
    rng = np.random.default_rng(3)
    R, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    R *= np.sign(np.linalg.det(R))
    T = make_transform(R, rng.normal(size=3))
    msg = roundtrip(conversions.transform_stamped_msg(T, "odom", "camera", 42_000_000_001))
    parent, child, stamp, T_back = conversions.transform_from_stamped_msg(msg)
    assert (parent, child, stamp) == ("odom", "camera", 42_000_000_001)
    np.testing.assert_allclose(T_back, T, atol=1e-12)


def test_pose_with_covariance_layout() -> None:
    T = make_transform(np.eye(3), [0.5, -1.0, 2.0])
    covariance = np.arange(36, dtype=np.float64).reshape(6, 6)
    msg = roundtrip(conversions.pose_with_covariance_stamped_msg(T, covariance, "map", 7))
    assert msg.header.frame_id == "map"
    assert conversions.header_stamp_ns(msg.header) == 7
    assert list(msg.pose.covariance) == list(range(36))  # row-major: [0, 1] is x-y
    translation_m, rotation_deg = pose_error(transform_from_pose_msg(msg.pose.pose), T)
    assert translation_m < 1e-12
    assert rotation_deg < 1e-6
    with pytest.raises(ValueError, match=r"\(6, 6\)"):
        conversions.pose_with_covariance_stamped_msg(T, np.eye(3), "map", 7)


def test_point_cloud_round_trip() -> None:
    points = np.random.default_rng(0).normal(size=(100, 3))
    msg = roundtrip(conversions.point_cloud2_msg(points, "map", 9))
    assert (msg.width, msg.height, msg.point_step, len(msg.data)) == (100, 1, 12, 1200)
    np.testing.assert_allclose(conversions.points_from_point_cloud2_msg(msg), points, rtol=1e-6)
    empty = roundtrip(conversions.point_cloud2_msg(np.zeros((0, 3)), "map", 9))
    assert conversions.points_from_point_cloud2_msg(empty).shape == (0, 3)


def test_time_msg() -> None:
    stamp = conversions.time_msg(1_700_000_000_123_456_789)
    assert (stamp.sec, stamp.nanosec) == (1_700_000_000, 123_456_789)
    with pytest.raises(ValueError, match="negative"):
        conversions.time_msg(-1)
