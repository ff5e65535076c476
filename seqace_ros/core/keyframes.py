"""Keyframes stored in a map: posed mapping views with sparse features lifted to 3D.

A keyframe is a mapping frame's camera pose plus the XFeat keypoints of that view, each with
its descriptor and its 3D point in the map frame. Localization matches a query's keypoints
against the keyframes its coarse pose looks at, which gives 2D-3D correspondences from views
where the map is known to be right (see :mod:`seqace_ros.pipeline.localization.refinement`).

Stored in the map file as plain tensors under the ``keyframes.`` prefix: float32 points and
poses, int64 offsets, and the descriptors either product-quantized (uint8 codes with their
codec's float32 rotation and centroids, :mod:`seqace_ros.core.product_quantizer`: 16 bytes a
descriptor by default) or as float16 values (128 bytes); :meth:`Keyframes.from_tensors` checks
every shape, dtype and value before anything uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.product_quantizer import ProductQuantizer, QuantizedDescriptors

TENSOR_PREFIX = "keyframes."
DESCRIPTOR_DIM = 64
#: Tensor names (after :data:`TENSOR_PREFIX`) of keyframes with float16 descriptors ...
STORED_FLOAT16 = ("poses", "offsets", "descriptors", "points")
#: ... and of keyframes with product-quantized ones.
STORED_QUANTIZED = ("poses", "offsets", "points", "descriptor_codes", "descriptor_rotation",
                    "descriptor_centroids", "descriptor_fidelity")


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
        descriptors_ND: (N, 64) float16 L2-normalised XFeat descriptors (with ``quantized``:
            the decoding of its codes, what matching uses).
        points_N3: (N, 3) float32 map-frame points of the keypoints, metres.
        points_from_depth: the points were lifted with sensor depth (RGB-D mapping; right from
            any viewpoint), else they are the head's predictions at the keyframe views (right
            near those views); stored in the map's metadata.
        quantized: the descriptors as stored, product-quantized (see :meth:`quantize`); ``None``:
            stored as float16 values.
    """

    T_world_cam_K44: NDArray[np.float32]
    offsets_K1: NDArray[np.int64]
    descriptors_ND: NDArray[np.float16]
    points_N3: NDArray[np.float32]
    points_from_depth: bool = False
    quantized: QuantizedDescriptors | None = None

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
        if self.quantized is not None and not (
                len(self.quantized) == total
                and np.array_equal(self.quantized.decode(), self.descriptors_ND)):
            raise KeyframeError("keyframe descriptors must be the decoding of their codes")

    def quantize(self, code_bytes: int, seed: int = 0) -> Keyframes:
        """These keyframes with their descriptors product-quantized into ``code_bytes`` codes
        each (a codec fitted to them; ``descriptors_ND`` becomes the decoding).

        Raises:
            ValueError: ``code_bytes`` does not divide 64.
        """
        quantized = QuantizedDescriptors.fit(self.descriptors_ND, code_bytes, seed)
        return replace(self, descriptors_ND=quantized.decode(), quantized=quantized)

    @property
    def similarity_scale(self) -> float:
        """Factor by which the stored descriptors' cosine similarities shrink against those of
        the descriptors the mapping saw: the codes' fidelity, 1 for float16 values. Matching
        multiplies its similarity threshold by it for each stored side."""
        return 1.0 if self.quantized is None else self.quantized.fidelity

    @property
    def descriptor_bytes(self) -> int:
        """Bytes each descriptor is stored in: its codes, or 0 for float16 values."""
        return 0 if self.quantized is None else self.quantized.quantizer.code_bytes

    @property
    def count(self) -> int:
        """Number of keyframes K."""
        return len(self.T_world_cam_K44)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays (what the keyframes add to a map file, headers aside)."""
        descriptors = (self.descriptors_ND.nbytes if self.quantized is None
                       else self.quantized.nbytes)
        return descriptors + sum(a.nbytes for a in (self.T_world_cam_K44, self.offsets_K1,
                                                    self.points_N3))

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
        """The stored arrays as named tensors for the map file (:data:`STORED_FLOAT16` or
        :data:`STORED_QUANTIZED` names)."""
        arrays = {"poses": self.T_world_cam_K44, "offsets": self.offsets_K1,
                  "points": self.points_N3}
        if self.quantized is None:
            arrays["descriptors"] = self.descriptors_ND
        else:
            arrays |= {"descriptor_codes": self.quantized.codes_NM,
                       "descriptor_rotation": self.quantized.quantizer.rotation_DD,
                       "descriptor_centroids": self.quantized.quantizer.centroids_MCS,
                       "descriptor_fidelity": np.array([self.quantized.fidelity], np.float32)}
        return {TENSOR_PREFIX + name: torch.from_numpy(np.ascontiguousarray(value))
                for name, value in arrays.items()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Keyframes | None:
        """The keyframes in a map file's tensors, ``None`` when it has none; quantized
        descriptors are decoded here.

        Raises:
            KeyframeError: when some keyframe tensors are missing, do not fit together or
                hold a corrupt codec.
        """
        present = {name for name in (*STORED_FLOAT16, *STORED_QUANTIZED)
                   if TENSOR_PREFIX + name in tensors}
        if not present:
            return None
        if present not in (set(STORED_FLOAT16), set(STORED_QUANTIZED)):
            raise KeyframeError(f"keyframe tensors do not form a set: have {sorted(present)}, "
                                f"need {STORED_FLOAT16} or {STORED_QUANTIZED}")
        arrays = {name: tensors[TENSOR_PREFIX + name].numpy() for name in present}
        geometry = (arrays["poses"], arrays["offsets"])
        if "descriptors" in arrays:
            return cls(*geometry, arrays["descriptors"], arrays["points"])
        try:
            quantized = QuantizedDescriptors(
                ProductQuantizer(arrays["descriptor_rotation"], arrays["descriptor_centroids"]),
                arrays["descriptor_codes"], float(arrays["descriptor_fidelity"].reshape(-1)[0]))
            descriptors = quantized.decode()
        except ValueError as error:
            raise KeyframeError(f"corrupt descriptor codes ({error})") from error
        return cls(*geometry, descriptors, arrays["points"], quantized=quantized)


def same_keyframes(a: Keyframes | None, b: Keyframes | None) -> bool:
    """Whether two keyframe sets hold equal arrays (two ``None`` are the same)."""
    if a is None or b is None:
        return a is b
    if (a.quantized is None) != (b.quantized is None) or (
            a.quantized is not None and b.quantized is not None
            and not a.quantized.same_as(b.quantized)):
        return False
    return all(np.array_equal(getattr(a, f.name), getattr(b, f.name))
               for f in fields(a) if f.name != "quantized")
