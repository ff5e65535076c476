"""A rosbag2 (mcap) with a TF chain ``map -> odom -> base_link -> camera_optical``, for tests.

Shared by the bag-reader tests and the bag-mapping comparison. Images are stamped
``T0_NS + i * FRAME_PERIOD_NS``; the camera follows a continuous trajectory through given
poses (linear + slerp pieces), ``map -> odom`` is a slow drift published at 10 Hz,
``odom -> base_link`` is published at its own rate (45 Hz by default, so poses and images
never share a stamp), and ``base_link -> camera_optical`` is a static extrinsic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqace_ros.core.geometry import interpolate_transform, invert_transform, make_transform
from seqace_ros.datasets.bag_writer import BagWriter
from seqace_ros.datasets.base import PosedFrame

T0_NS = 1_700_000_000 * 1_000_000_000
FRAME_PERIOD_NS = 33_333_333  # the dev frames were recorded at 30 Hz
T_BASE_CAM = make_transform(
    np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]), [0.12, -0.03, 0.25]
)
T_BASE_CAM_ROWS = tuple(tuple(row) for row in T_BASE_CAM.tolist())


def T_map_cam_at(T_world_cam_N44: np.ndarray, stamp_ns: int) -> np.ndarray:
    """The continuous trajectory through poses (N, 4, 4) stamped ``T0_NS + i * FRAME_PERIOD_NS``.

    Linear translation and slerp between consecutive poses; held at both ends.
    """
    position = np.clip((stamp_ns - T0_NS) / FRAME_PERIOD_NS, 0, len(T_world_cam_N44) - 1)
    k = min(int(position), len(T_world_cam_N44) - 2)
    return interpolate_transform(T_world_cam_N44[k], T_world_cam_N44[k + 1], position - k)


def T_map_odom_at(stamp_ns: int) -> np.ndarray:
    """A slow, smooth odometry drift."""
    t = (stamp_ns - T0_NS) / 1e9
    angle = 0.02 * np.sin(0.7 * t)
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return make_transform(R, [0.05 * t, 0.02 * np.sin(0.5 * t), 0.0])


def write_tf_chain_bag(
    path: Path,
    frames: list[PosedFrame],
    T_world_cam_N44: np.ndarray,
    odom_base_period_ns: int = 22_222_222,
) -> None:
    """mcap, raw bgr8 ``frames`` on /camera/image_raw, TF chain from ``T_world_cam_N44``."""
    start, end = frames[0].stamp_ns - 50_000_000, frames[-1].stamp_ns + 50_000_000
    events: list[tuple[int, str]] = [(f.stamp_ns, "image") for f in frames]
    events += [(int(t), "map_odom") for t in np.arange(start, end, 100_000_000)]
    events += [
        (int(t), "odom_base") for t in np.arange(start + 7_000_000, end, odom_base_period_ns)
    ]
    by_stamp = {f.stamp_ns: f for f in frames}
    with BagWriter(path, "mcap") as writer:
        writer.write_transforms(start, [("base_link", "camera_optical", T_BASE_CAM)], static=True)
        for stamp, kind in sorted(events):
            if kind == "image":
                frame = by_stamp[stamp]
                writer.write_image("/camera/image_raw", stamp, frame.image_rgb, "camera_optical")
                writer.write_camera_info(
                    "/camera/camera_info", stamp, frame.intrinsics, "camera_optical"
                )
            elif kind == "map_odom":
                writer.write_transforms(stamp, [("map", "odom", T_map_odom_at(stamp))])
            else:
                T_odom_base = (
                    invert_transform(T_map_odom_at(stamp))
                    @ T_map_cam_at(T_world_cam_N44, stamp)
                    @ invert_transform(T_BASE_CAM)
                )
                writer.write_transforms(stamp, [("odom", "base_link", T_odom_base)])
