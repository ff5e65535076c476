"""Pose refinement against the map's keyframes (the PixLoc / GS-CPR stage, by matching).

The scene head is right where the mapping views were and drifts away from them; a coarse
pose from it is still good enough to say which mapped views the query looks at. Refinement
takes keyframes that see what the query sees under the coarse pose, matches the query's XFeat
keypoints to theirs (mutual nearest neighbours), and solves a new pose from those 2D-3D
matches with the C++ RANSAC PnP solver. The keyframes' 3D points come from sensor depth in
RGB-D maps, else from the head at the keyframe views, where it is accurate
(:mod:`seqace_ros.pipeline.mapping.keyframes`), and that decides which keyframes are taken
(:meth:`~seqace_ros.core.keyframes.Keyframes.covisible`): sensor-depth points are right from
any viewpoint, so of the ``candidates`` keyframes nearest to the coarse pose (camera distance
plus viewing direction) the ``keyframes`` whose views the query shares most (the fraction of
their points it sees, from within ``max_view_angle_deg`` of the keyframe's direction); the
head's points are right near their own view only, so the ``keyframes`` nearest ones.

The refined pose replaces the coarse one only when the evidence prefers it: enough RANSAC
inliers, a move from the coarse pose within the gate, more keyframe matches within
``agreement_px`` than the coarse pose explains, and at least ``min_patch_fraction`` of the
image's own head correspondences that the coarse pose explains (within
``patch_threshold_px``): the keyframes decide, the head can veto. Where the coarse pose already
fits the matches, it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
        keyframes: keyframes matched per query (those that see most of the query's view under
            the coarse pose).
        candidates: keyframes nearest to the coarse pose that the matched ones are chosen from
            (keyframes with sensor-depth points; otherwise the nearest are matched).
        keypoints: XFeat keypoints detected on the query.
        max_view_angle_deg: a keyframe point counts as seen by the query when the viewing
            rays to it from the keyframe and from the coarse pose differ by less than this.
        rotation_weight_m: metres one radian of viewing-direction difference counts as when
            ranking keyframes by pose distance.
        min_similarity: minimum descriptor cosine similarity of a match.
        threshold_px: RANSAC inlier threshold. This and the other ``_px`` settings are in
            pixels of the network input, the image scaled to the map's image height (see
            :meth:`in_image_pixels`).
        max_hypotheses: RANSAC hypotheses.
        min_inliers: fewer match inliers than this keeps the coarse pose.
        max_translation_m: a refined pose farther than this from the coarse one is rejected.
        max_rotation_deg: a refined pose turned more than this from the coarse one is rejected.
        agreement_px: a keyframe match agrees with a pose within this reprojection error.
        patch_threshold_px: a head correspondence agrees with a pose within this error.
        min_patch_fraction: a refined pose must explain at least this fraction of the head
            correspondences the coarse pose explains.
    """

    keyframes: int = 4
    candidates: int = 12
    keypoints: int = 2048
    max_view_angle_deg: float = 60.0
    rotation_weight_m: float = 0.5
    min_similarity: float = 0.82
    threshold_px: float = 8.0
    max_hypotheses: int = 64
    min_inliers: int = 30
    max_translation_m: float = 0.3
    max_rotation_deg: float = 10.0
    agreement_px: float = 4.0
    patch_threshold_px: float = 10.0
    min_patch_fraction: float = 0.8

    def __post_init__(self) -> None:
        if self.keyframes < 1 or self.keypoints < 16 or self.min_inliers < 4:
            raise ValueError(
                "refinement needs keyframes >= 1, keypoints >= 16, min_inliers >= 4; got "
                f"{self.keyframes}, {self.keypoints}, {self.min_inliers}")
        if self.candidates < self.keyframes:
            raise ValueError(f"refinement needs candidates >= keyframes, got {self.candidates} "
                             f"< {self.keyframes}")
        if min(self.threshold_px, self.max_translation_m, self.max_rotation_deg,
               self.agreement_px, self.patch_threshold_px) <= 0:
            raise ValueError("refinement thresholds and gate bounds must be positive")
        if not 0.0 <= self.min_patch_fraction <= 1.0:
            raise ValueError(
                f"min_patch_fraction must be in [0, 1], got {self.min_patch_fraction}")
        if not 0.0 < self.max_view_angle_deg <= 180.0:
            raise ValueError(
                f"max_view_angle_deg must be in (0, 180], got {self.max_view_angle_deg}")
        if self.rotation_weight_m < 0:
            raise ValueError(f"rotation_weight_m must be >= 0, got {self.rotation_weight_m}")

    def in_image_pixels(self, scale: float) -> RefinementConfig:
        """These settings with the pixel thresholds multiplied by ``scale``, the image's
        height over the map's image height: in the pixels of the image itself."""
        return replace(self, threshold_px=self.threshold_px * scale,
                       agreement_px=self.agreement_px * scale,
                       patch_threshold_px=self.patch_threshold_px * scale)


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


class KeyframeMatcher:
    """The map's keyframes and the matches of the current query's keypoints with them.

    Each keyframe is matched at most once per query: sequence mode refines both a frame's
    single-frame pose and its sequence pose, which mostly pick the same keyframes. A query is
    recognised by identity (the same :class:`SparseFeatures` object), so the cache holds one
    query's matches; a localizer and its matcher serve one thread.

    Args:
        keyframes: the map's keyframes.
    """

    def __init__(self, keyframes: Keyframes) -> None:
        self.keyframes = keyframes
        self._query: SparseFeatures | None = None
        self._matches: dict[tuple[int, float], tuple[NDArray[np.float64],
                                                     NDArray[np.float64]]] = {}

    def matches(
        self, query: SparseFeatures, keyframes_K: NDArray[np.int64], min_similarity: float,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Query pixels (M, 2) and map points (M, 3, metres) of the mutual nearest-neighbour
        matches between ``query``'s keypoints and each of the keyframes ``keyframes_K``."""
        if query is not self._query:
            self._query, self._matches = query, {}
        pixels, points = [np.zeros((0, 2))], [np.zeros((0, 3))]
        for k in keyframes_K:
            key = (int(k), min_similarity)
            if key not in self._matches:
                rows = self.keyframes.rows(int(k))
                index_query, index_keyframe = mutual_nearest_neighbours(
                    query.descriptors_ND, self.keyframes.descriptors_ND[rows], min_similarity)
                self._matches[key] = (
                    query.keypoints_N2[index_query].astype(np.float64),
                    self.keyframes.points_N3[rows][index_keyframe].astype(np.float64))
            pixels.append(self._matches[key][0])
            points.append(self._matches[key][1])
        return np.concatenate(pixels), np.concatenate(points)


def refine_pose(
    T_world_cam: NDArray[np.float64], query: SparseFeatures, intrinsics: Intrinsics,
    matcher: KeyframeMatcher, config: RefinementConfig, points2d_N2: NDArray[np.float64],
    scene_points_N3: NDArray[np.float64], seed: int | None = 0,
) -> Refinement:
    """Refine the coarse (4, 4) camera-to-world pose of the image whose keypoints are
    ``query`` against the keyframes of ``matcher`` (see the module docstring).

    Args:
        T_world_cam: the coarse pose.
        query: the image's XFeat keypoints (original-image pixels).
        intrinsics: its pinhole camera.
        matcher: the map's keyframes, with this query's matches so far.
        config: refinement settings.
        points2d_N2: (N, 2) pixels of the image's head correspondences.
        scene_points_N3: (N, 3) their map points (metres).
        seed: RANSAC seed.
    """
    keyframes = matcher.keyframes
    candidates = config.candidates if keyframes.points_from_depth else config.keyframes
    chosen_K = keyframes.covisible(T_world_cam, intrinsics, config.keyframes, candidates,
                                   config.max_view_angle_deg, config.rotation_weight_m)
    pixels_M2, points_M3 = matcher.matches(query, chosen_K, config.min_similarity)
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

    def agreeing(T: NDArray[np.float64]) -> tuple[int, int]:
        """(keyframe matches, head correspondences) that pose ``T`` explains."""
        matched = reprojection_errors_px(T, intrinsics, pixels_M2, points_M3)
        patches = reprojection_errors_px(T, intrinsics, points2d_N2, scene_points_N3)
        return (int(np.sum(matched < config.agreement_px)),
                int(np.sum(patches < config.patch_threshold_px)))

    (coarse_matches, coarse_patches), (refined_matches, refined_patches) = (
        agreeing(T_world_cam), agreeing(T_refined))
    if coarse_matches >= refined_matches:
        return keep(f"coarse pose explains {coarse_matches} keyframe matches, the refined one "
                    f"{refined_matches}", inliers)
    if refined_patches < config.min_patch_fraction * coarse_patches:
        return keep(f"refined pose explains {refined_patches} head correspondences, the coarse "
                    f"one {coarse_patches}", inliers)
    return Refinement(T_refined, True, "", matches, inliers)
