"""Pose refinement against the map's keyframes (the PixLoc / GS-CPR stage, by matching).

The scene head is right where the mapping views were and drifts away from them; a coarse
pose from it is still good enough to say which mapped views the query looks at. Refinement
takes the ``keyframes`` keyframes nearest to the coarse pose (camera distance plus viewing
direction, :meth:`~seqace_ros.core.keyframes.Keyframes.nearest`), matches the query's XFeat
keypoints to theirs (mutual nearest neighbours), and solves a new pose from those 2D-3D
matches with the C++ RANSAC PnP solver. The keyframes' 3D points come from the head at the
keyframe views, where it is accurate (:mod:`seqace_ros.pipeline.mapping.keyframes`).

The refined pose replaces the coarse one only when the matches vouch for it: enough RANSAC
inliers, a move from the coarse pose within the gate, and the coarse pose explaining clearly
fewer of the matches than the refined one (``max_coarse_agreement``): where the coarse pose
already fits the keyframes, it is kept (its many patches make it the more precise of the two).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import pose_error
from seqace_ros.core.keyframes import Keyframes
from seqace_ros.core.sparse_features import SparseFeatures, mutual_nearest_neighbours
from seqace_ros.pipeline.localization.local_map import reprojection_errors_px
from seqace_ros.ransac import RansacOptions, solve_pnp


@dataclass(frozen=True)
class RefinementConfig:
    """Settings of the refinement stage.

    Attributes:
        keyframes: keyframes matched per query (nearest to the coarse pose).
        keypoints: XFeat keypoints detected on the query.
        rotation_weight_m: metres one radian of viewing-direction difference counts as when
            ranking keyframes.
        min_similarity: minimum descriptor cosine similarity of a match.
        threshold_px: RANSAC inlier threshold (original-image pixels).
        max_hypotheses: RANSAC hypotheses.
        min_inliers: fewer match inliers than this keeps the coarse pose.
        max_translation_m: a refined pose farther than this from the coarse one is rejected.
        max_rotation_deg: a refined pose turned more than this from the coarse one is rejected.
        max_coarse_agreement: the refined pose is used only when the coarse pose explains
            (within ``threshold_px``) fewer than this fraction of the refined pose's inliers.
    """

    keyframes: int = 4
    keypoints: int = 2048
    rotation_weight_m: float = 0.5
    min_similarity: float = 0.82
    threshold_px: float = 8.0
    max_hypotheses: int = 64
    min_inliers: int = 30
    max_translation_m: float = 0.3
    max_rotation_deg: float = 10.0
    max_coarse_agreement: float = 0.9

    def __post_init__(self) -> None:
        if self.keyframes < 1 or self.keypoints < 16 or self.min_inliers < 4:
            raise ValueError(
                "refinement needs keyframes >= 1, keypoints >= 16, min_inliers >= 4; got "
                f"{self.keyframes}, {self.keypoints}, {self.min_inliers}")
        if min(self.threshold_px, self.max_translation_m, self.max_rotation_deg) <= 0:
            raise ValueError("refinement threshold_px and the gate bounds must be positive")
        if not 0.0 < self.max_coarse_agreement <= 1.0 or self.rotation_weight_m < 0:
            raise ValueError("need 0 < max_coarse_agreement <= 1 and rotation_weight_m >= 0")


@dataclass(frozen=True)
class Refinement:
    """What refinement did with one coarse pose.

    Attributes:
        T_world_cam: (4, 4) pose to use: the refined pose when accepted, else the coarse one.
        accepted: the refined pose replaced the coarse one.
        reason: why it was not (``""`` when accepted).
        matches: 2D-3D matches found in the keyframes.
        inliers: RANSAC inliers among them (0 when no pose was solved).
    """

    T_world_cam: NDArray[np.float64]
    accepted: bool
    reason: str
    matches: int
    inliers: int


def keyframe_matches(
    query: SparseFeatures, keyframes: Keyframes, nearest_K: NDArray[np.int64],
    min_similarity: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Query pixels (M, 2) and map points (M, 3) of the mutual nearest-neighbour matches
    between the query's keypoints and each of the keyframes ``nearest_K``."""
    pixels, points = [np.zeros((0, 2))], [np.zeros((0, 3))]
    for k in nearest_K:
        rows = keyframes.rows(int(k))
        index_query, index_keyframe = mutual_nearest_neighbours(
            query.descriptors_ND, keyframes.descriptors_ND[rows], min_similarity)
        pixels.append(query.keypoints_N2[index_query].astype(np.float64))
        points.append(keyframes.points_N3[rows][index_keyframe].astype(np.float64))
    return np.concatenate(pixels), np.concatenate(points)


def refine_pose(
    T_world_cam: NDArray[np.float64], query: SparseFeatures, intrinsics: Intrinsics,
    keyframes: Keyframes, config: RefinementConfig, seed: int | None = 0,
) -> Refinement:
    """Refine the coarse (4, 4) camera-to-world pose of the image whose keypoints are
    ``query`` against ``keyframes`` (see the module docstring)."""
    nearest_K = keyframes.nearest(T_world_cam, config.keyframes, config.rotation_weight_m)
    pixels_M2, points_M3 = keyframe_matches(query, keyframes, nearest_K, config.min_similarity)
    matches = len(pixels_M2)

    def keep(reason: str, inliers: int = 0) -> Refinement:
        return Refinement(T_world_cam, False, reason, matches, inliers)

    if matches < config.min_inliers:
        return keep(f"{matches} keyframe matches (need {config.min_inliers})")
    options = RansacOptions(threshold_px=config.threshold_px,
                            max_hypotheses=config.max_hypotheses, seed=seed)
    solved = solve_pnp(pixels_M2, points_M3, intrinsics.as_tuple, options)
    inliers = int(np.sum(solved.inliers)) if solved.success else 0
    if inliers < config.min_inliers:
        return keep(f"{inliers} match inliers (need {config.min_inliers})", inliers)
    T_refined = np.asarray(solved.T_world_cam, dtype=np.float64)
    moved_m, turned_deg = pose_error(T_refined, T_world_cam)
    if moved_m > config.max_translation_m or turned_deg > config.max_rotation_deg:
        return keep(f"refined pose {moved_m:.2f} m / {turned_deg:.1f} deg from the coarse one",
                    inliers)
    coarse_inliers = int(np.sum(reprojection_errors_px(
        T_world_cam, intrinsics, pixels_M2, points_M3) < config.threshold_px))
    if coarse_inliers >= config.max_coarse_agreement * inliers:
        return keep(f"coarse pose explains {coarse_inliers} of {inliers} match inliers", inliers)
    return Refinement(T_refined, True, "", matches, inliers)
