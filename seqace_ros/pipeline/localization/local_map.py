"""The sequence mode's local map: verified 2D-3D points carried from frame to frame.

Each point is a map-frame scene coordinate (regressed by the head in some recent frame and an
inlier of that frame's pose) together with its pixel in the LAST localized image, where
optical flow carried it. Points live at most ``buffer_length`` frames after the frame that
regressed them (a rolling buffer), so a wrong prediction can never stay forever.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import invert_transform, transform_points


@dataclass(frozen=True)
class LocalMap:
    """2D-3D points of the last localized frame.

    Attributes:
        points2d_M2: (M, 2) float64 pixels (u, v) in the last localized image.
        scene_points_M3: (M, 3) float64 map-frame points, metres.
        birth_M: (M,) int64 index (in the stream) of the frame whose head regressed each point.
    """

    points2d_M2: NDArray[np.float64]
    scene_points_M3: NDArray[np.float64]
    birth_M: NDArray[np.int64]

    @staticmethod
    def empty() -> LocalMap:
        """A local map without points."""
        return LocalMap(np.zeros((0, 2)), np.zeros((0, 3)), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.birth_M)

    def select(self, keep_M: NDArray[np.bool_] | NDArray[np.int64],
               points2d_M2: NDArray[np.float64] | None = None) -> LocalMap:
        """The points ``keep_M`` (mask or indices), optionally moved to new pixels first.

        Args:
            keep_M: which points to keep.
            points2d_M2: (M, 2) new pixel positions of ALL points (e.g. after tracking), or
                ``None`` to keep their pixels.
        """
        pixels = self.points2d_M2 if points2d_M2 is None else points2d_M2
        return LocalMap(pixels[keep_M], self.scene_points_M3[keep_M], self.birth_M[keep_M])

    def concat(self, other: LocalMap) -> LocalMap:
        """These points followed by ``other``'s."""
        return LocalMap(np.concatenate([self.points2d_M2, other.points2d_M2]),
                        np.concatenate([self.scene_points_M3, other.scene_points_M3]),
                        np.concatenate([self.birth_M, other.birth_M]))


def reprojection_errors_px(
    T_world_cam: NDArray[np.float64], intrinsics: Intrinsics,
    points2d_N2: NDArray[np.float64], scene_points_N3: NDArray[np.float64],
) -> NDArray[np.float64]:
    """(N,) pixel distance between each pixel and its scene point projected by the pose.

    Points behind the camera (or on its plane) get an infinite error.
    """
    pixels_N2, in_front_N = intrinsics.project(
        transform_points(invert_transform(T_world_cam), scene_points_N3))
    errors_N = np.hypot(pixels_N2[:, 0] - points2d_N2[:, 0], pixels_N2[:, 1] - points2d_N2[:, 1])
    return np.where(in_front_N, errors_N, np.inf)


def update_local_map(
    carried: LocalMap, current: LocalMap, T_world_cam: NDArray[np.float64],
    intrinsics: Intrinsics, threshold_px: float, frame_index: int, buffer_length: int,
    max_points: int,
) -> LocalMap:
    """The local map after frame ``frame_index`` was localized at ``T_world_cam``.

    Keeps the points of ``carried`` (already tracked into this frame) and ``current`` (this
    frame's regressed points) that are inliers of the pose, dropping carried points born
    ``buffer_length`` or more frames ago. Beyond ``max_points``, the newest points win.

    Args:
        carried: points tracked into this frame.
        current: this frame's salient patches and their regressed scene coordinates.
        T_world_cam: (4, 4) accepted camera-to-world pose of this frame.
        intrinsics: this frame's camera.
        threshold_px: inlier threshold, pixels.
        frame_index: index of this frame in the stream.
        buffer_length: frames a point may live after the frame that regressed it.
        max_points: cap on the number of points.
    """
    merged = current.concat(carried)
    errors_M = reprojection_errors_px(T_world_cam, intrinsics, merged.points2d_M2,
                                      merged.scene_points_M3)
    keep_M = (errors_M < threshold_px) & (merged.birth_M > frame_index - buffer_length)
    kept = merged.select(keep_M)
    if len(kept) > max_points:
        newest_first = np.argsort(-kept.birth_M, kind="stable")[:max_points]
        kept = kept.select(np.sort(newest_first))
    return kept
