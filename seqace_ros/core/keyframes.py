"""Keyframes stored in a map: posed mapping views with sparse features lifted to 3D.

A keyframe is a mapping frame's camera pose plus the XFeat keypoints of that view, each with
its descriptor and its 3D point in the map frame. Localization matches a query's keypoints
against the keyframes its coarse pose looks at, which gives 2D-3D correspondences from views
where the map is known to be right (see :mod:`seqace_ros.pipeline.localization.refinement`).

Stored in the map file as plain tensors under the ``keyframes.`` prefix (float16 descriptors,
float32 points and poses, int64 offsets); :meth:`Keyframes.from_tensors` checks every shape,
dtype and value before anything uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.errors import SeqaceError

TENSOR_PREFIX = "keyframes."
DESCRIPTOR_DIM = 64


def pose_distances(T_world_cam_F44: NDArray[np.floating], T_world_cam_44: NDArray[np.floating],
                   rotation_weight_m: float) -> NDArray[np.float64]:
    """Distance (F,) from each of F camera-to-world poses to one pose: camera-centre distance
    in metres plus ``rotation_weight_m`` times the angle (radians) between optical axes."""
    centres = np.linalg.norm(T_world_cam_F44[:, :3, 3] - T_world_cam_44[:3, 3], axis=1)
    cosines = np.clip(T_world_cam_F44[:, :3, 2] @ T_world_cam_44[:3, 2], -1.0, 1.0)
    return centres + rotation_weight_m * np.arccos(cosines)


class KeyframeError(SeqaceError, ValueError):
    """Keyframe arrays that do not fit together (shapes, dtypes, offsets, non-finite values)."""


@dataclass(frozen=True)
class Keyframes:
    """K keyframes holding N keypoints in all.

    Attributes:
        T_world_cam_K44: (K, 4, 4) float32 camera-to-world poses (OpenCV camera axes).
        offsets_K1: (K + 1,) int64: keyframe k's keypoints are rows ``offsets[k]:offsets[k+1]``.
        descriptors_ND: (N, 64) float16 L2-normalised XFeat descriptors.
        points_N3: (N, 3) float32 map-frame points of the keypoints, metres.
        points_from_depth: the points were lifted with sensor depth (RGB-D mapping; right from
            any viewpoint), else they are the head's predictions at the keyframe views (right
            near those views); stored in the map's metadata.
    """

    T_world_cam_K44: NDArray[np.float32]
    offsets_K1: NDArray[np.int64]
    descriptors_ND: NDArray[np.float16]
    points_N3: NDArray[np.float32]
    points_from_depth: bool = False

    def __post_init__(self) -> None:
        count = len(self.T_world_cam_K44)
        if self.T_world_cam_K44.shape != (count, 4, 4) or count < 1:
            raise KeyframeError(f"poses must be (K >= 1, 4, 4), got {self.T_world_cam_K44.shape}")
        offsets = self.offsets_K1
        if offsets.shape != (count + 1,) or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            raise KeyframeError(f"offsets must be {count + 1} non-decreasing values from 0")
        total = int(offsets[-1])
        if self.descriptors_ND.shape != (total, DESCRIPTOR_DIM):
            raise KeyframeError(f"descriptors must be ({total}, {DESCRIPTOR_DIM}), got "
                                f"{self.descriptors_ND.shape}")
        if self.points_N3.shape != (total, 3):
            raise KeyframeError(f"points must be ({total}, 3), got {self.points_N3.shape}")
        dtypes = (self.T_world_cam_K44.dtype, self.offsets_K1.dtype, self.descriptors_ND.dtype,
                  self.points_N3.dtype)
        if dtypes != (np.float32, np.int64, np.float16, np.float32):
            raise KeyframeError(f"dtypes must be float32, int64, float16, float32; got {dtypes}")
        for name, values in (("poses", self.T_world_cam_K44), ("descriptors", self.descriptors_ND),
                             ("points", self.points_N3)):
            if not np.all(np.isfinite(values)):
                raise KeyframeError(f"keyframe {name} hold NaN or inf")

    @property
    def count(self) -> int:
        """Number of keyframes K."""
        return len(self.T_world_cam_K44)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (what the keyframes add to a map file, headers aside)."""
        return sum(a.nbytes for a in (self.T_world_cam_K44, self.offsets_K1,
                                      self.descriptors_ND, self.points_N3))

    def covisible(self, T_world_cam: NDArray[np.floating], intrinsics: Intrinsics, count: int,
                  candidates: int, max_view_angle_deg: float,
                  rotation_weight_m: float) -> NDArray[np.int64]:
        """Of the ``candidates`` keyframes nearest to the (4, 4) camera-to-world pose
        (:func:`pose_distances`), the ``count`` whose views a camera at the pose shares most:
        the largest fraction of their points seen from the pose first.

        A keyframe point is seen from the pose when it lies in front of the camera, projects
        into its image (``intrinsics``: size and focals) and the viewing rays to it from the
        keyframe's centre and from the pose's centre differ by less than
        ``max_view_angle_deg``: a surface seen from far off its keyframe's direction looks too
        different to match. Candidates with equal fractions (none seen, for a pose that looks
        away from every keyframe point) keep their pose-distance order. Only nearby
        keyframes are candidates: keyframes from far along the mapping run see the same
        surfaces but carry that run's pose drift.
        """
        T = np.asarray(T_world_cam, dtype=np.float64)
        distances_K = pose_distances(self.T_world_cam_K44.astype(np.float64), T,
                                     rotation_weight_m)
        nearest_C = np.argsort(distances_K, kind="stable")[:candidates]
        points_per_keyframe_K = np.diff(self.offsets_K1)
        owner_N = np.repeat(np.arange(self.count), points_per_keyframe_K)
        rows_N = np.isin(owner_N, nearest_C)
        owner_N = owner_N[rows_N]
        points_N3 = self.points_N3[rows_N].astype(np.float64)
        pixels_N2, front = intrinsics.project((points_N3 - T[:3, 3]) @ T[:3, :3])
        u_N, v_N = pixels_N2.T  # NaN behind the camera, which no comparison passes
        in_image = (front & (u_N >= 0) & (u_N < intrinsics.width)
                    & (v_N >= 0) & (v_N < intrinsics.height))
        from_keyframe_N3 = points_N3 - self.T_world_cam_K44[owner_N, :3, 3]
        from_pose_N3 = points_N3 - T[:3, 3]
        cosines = np.einsum("ij,ij->i", from_keyframe_N3, from_pose_N3) / np.maximum(
            np.linalg.norm(from_keyframe_N3, axis=1) * np.linalg.norm(from_pose_N3, axis=1),
            1e-12)
        seen = in_image & (cosines > np.cos(np.radians(max_view_angle_deg)))
        seen_fraction_C = (np.bincount(owner_N[seen], minlength=self.count)[nearest_C]
                           / np.maximum(points_per_keyframe_K[nearest_C], 1))
        order = np.lexsort((np.arange(len(nearest_C)), -seen_fraction_C))
        return nearest_C[order][:count].astype(np.int64)

    def rows(self, k: int) -> slice:
        """Rows of keyframe ``k`` in ``descriptors_ND`` and ``points_N3``."""
        return slice(int(self.offsets_K1[k]), int(self.offsets_K1[k + 1]))

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The arrays as named tensors for the map file."""
        arrays = {"poses": self.T_world_cam_K44, "offsets": self.offsets_K1,
                  "descriptors": self.descriptors_ND, "points": self.points_N3}
        return {TENSOR_PREFIX + name: torch.from_numpy(np.ascontiguousarray(value))
                for name, value in arrays.items()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Keyframes | None:
        """The keyframes in a map file's tensors, ``None`` when it has none.

        Raises:
            KeyframeError: when some keyframe tensors are missing or do not fit together.
        """
        names = ("poses", "offsets", "descriptors", "points")
        present = [name for name in names if TENSOR_PREFIX + name in tensors]
        if not present:
            return None
        if len(present) != len(names):
            raise KeyframeError(f"keyframe tensors incomplete: have {present}, need {names}")
        arrays = [tensors[TENSOR_PREFIX + name].numpy() for name in names]
        return cls(*arrays)


def same_keyframes(a: Keyframes | None, b: Keyframes | None) -> bool:
    """Whether two keyframe sets hold equal arrays (two ``None`` are the same)."""
    if a is None or b is None:
        return a is b
    return all(np.array_equal(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
