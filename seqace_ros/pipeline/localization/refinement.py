"""Pose refinement against the map's keyframes (the PixLoc / GS-CPR stage, by matching).

The scene head is right where the mapping views were and drifts away from them; a coarse
pose from it is still good enough to say which mapped views the query looks at. Refinement
takes keyframes that see what the query sees under the coarse pose, matches the query's XFeat
keypoints to theirs (mutual nearest neighbours), and solves a new pose from those 2D-3D
matches jointly with the image's own head correspondences in the C++ RANSAC PnP solver. The
keyframes' 3D points come from sensor depth in RGB-D maps, else from the head at the keyframe
views, where it is accurate (:mod:`seqace_ros.pipeline.mapping.keyframes`), and that decides
which keyframes are taken (:meth:`~seqace_ros.core.keyframes.Keyframes.covisible`):
sensor-depth points are right from any viewpoint, so of the ``candidates`` keyframes nearest to
the coarse pose (camera distance plus viewing direction) the ``keyframes`` whose views the
query shares most (the fraction of their points it sees, from within ``max_view_angle_deg`` of
the keyframe's direction); the head's points are right near their own view only, so the
``keyframes`` nearest ones.

The joint solve weighs the two sources by inverse variance: each keyframe match counts
``(sigma_head / sigma_keyframes)**2`` times a head correspondence, where each sigma is the RMS
reprojection error of that source's inliers under its own pose (the head's under the coarse
pose, the matches' under a pose solved from them alone). Where the keyframes' 3D is exact
(a synthetic scene) their matches dominate; where depth lifting is less precise than the head
(7-Scenes' unregistered colour and depth) the head keeps its say. One RANSAC threshold serves
both sources, so where the matches are far more precise than it, imprecise matches within it
still weigh in: where ``polish_sigmas`` robust standard deviations of the matches' residuals
are tighter than the threshold, the pose is solved once more from the matches alone, those
within the tighter ``polish_keep_sigmas`` of the joint pose (:func:`tighten_matches`). The
refined pose replaces the coarse one unless the matches are too few, their own solve has too
few inliers, or the joint pose moved beyond the gate.

Sensor-depth keyframe points are matched only up to a depth: where two keyframes' points of
the same keypoint disagree by a median of ``max_point_disagreement_m``
(:mod:`seqace_ros.core.keyframe_agreement`, measured once per map), or ``max_point_depth_m``
when that is set and nearer. Farther points carry depth-sensor and mapping-pose errors that
grow with distance; with exact depth they agree at every depth and all are used. A query that
sees mostly far surfaces has too few near points to solve from: when the near matches' own
solve has fewer than ``min_near_inliers`` inliers, the far points are matched too
(:func:`match_keyframes`); a biased point still places the camera within centimetres, where
no point leaves it at the head's error.

Where the head finds no pose at all, or the keyframes near its pose do not confirm it (the
refinement is rejected), :func:`recover_pose` solves one from the keyframes alone: the query's
``voters`` strongest keypoints each vote for the keyframe that holds their nearest descriptor
among the ``vote_keypoints`` strongest of each keyframe,
the ``keyframes`` with most votes are matched as above, and their matches give the pose when at
least ``min_recovery_inliers`` of them agree (a place the head has not learnt but the keyframes
saw). The localizer takes a recovered pose over a rejected head pose only when it has more
inliers (:meth:`~seqace_ros.pipeline.localization.single.Localizer.localize`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import torch
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import pose_error
from seqace_ros.core.keyframe_agreement import (
    DepthAgreement,
    measure_depth_agreement,
    point_depths,
)
from seqace_ros.core.keyframes import Keyframes
from seqace_ros.core.sparse_features import SparseFeatures, mutual_nearest_neighbours
from seqace_ros.pipeline.localization.local_map import reprojection_errors_px
from seqace_ros.ransac import PnPResult, RansacOptions, solve_pnp


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
        threshold_px: RANSAC inlier threshold of both solves (and of the inliers whose
            errors give the weights), in pixels of the network input, the image scaled to the
            map's image height (see :meth:`in_image_pixels`).
        max_hypotheses: RANSAC hypotheses per solve.
        min_inliers: fewer match inliers than this (in the matches' own solve) keeps the
            coarse pose.
        max_translation_m: a refined pose farther than this from the coarse one is rejected.
        max_rotation_deg: a refined pose turned more than this from the coarse one is rejected.
        max_weight_ratio: the keyframe matches' inverse-variance weight is clipped to
            ``[1 / max_weight_ratio, max_weight_ratio]`` (a source whose inliers fit almost
            exactly would otherwise silence the other).
        polish_sigmas: where this many robust standard deviations (1.4826 times the median
            residual) of the keyframe matches under the joint pose is tighter than
            ``threshold_px`` (the matches are far more precise than the threshold), the pose
            is solved again from the matches within ``polish_keep_sigmas`` of them alone (see
            :func:`tighten_matches`); 0: never.
        polish_keep_sigmas: the keyframe matches that solve keeps, in robust standard
            deviations (at most ``polish_sigmas``).
        max_point_depth_m: keyframe points deeper than this in their own keyframe's camera
            (metres along its optical axis) are left out of the matches; 0: no limit. Far
            points carry the errors of depth sensors and of mapping poses that grow with
            distance (rtabmap's ``Vis/MaxDepth`` does the same for its features).
        max_point_disagreement_m: sensor-depth keyframe points are also left out beyond the
            depth where neighbouring keyframes' points of the same keypoint disagree by a
            median of this many metres
            (:meth:`~seqace_ros.core.keyframe_agreement.DepthAgreement.depth_limit`); 0: off.
        min_near_inliers: with a depth limit, the points beyond it are matched too when the
            near points' own solve has fewer inliers than this (a view of far surfaces);
            0: never.
        recover: where the head finds no pose, or its pose is not confirmed by the
            keyframes (refinement rejected), solve one from the keyframes the query's
            keypoints vote for (:func:`recover_pose`; over a rejected head pose only when it
            has more inliers).
        voters: strongest query keypoints that vote for keyframes in recovery.
        vote_keypoints: strongest keypoints of each keyframe that the voters are compared
            with (the votes' cost grows with the keyframe descriptors they search).
        min_recovery_inliers: a recovered pose needs at least this many match inliers.
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
    max_weight_ratio: float = 16.0
    polish_sigmas: float = 3.0
    polish_keep_sigmas: float = 1.5
    max_point_depth_m: float = 0.0
    max_point_disagreement_m: float = 0.02
    min_near_inliers: int = 100
    recover: bool = True
    voters: int = 512
    vote_keypoints: int = 128
    min_recovery_inliers: int = 100

    def __post_init__(self) -> None:
        if self.keyframes < 1 or self.keypoints < 16 or self.min_inliers < 4:
            raise ValueError(
                "refinement needs keyframes >= 1, keypoints >= 16, min_inliers >= 4; got "
                f"{self.keyframes}, {self.keypoints}, {self.min_inliers}")
        if self.candidates < self.keyframes:
            raise ValueError(f"refinement needs candidates >= keyframes, got {self.candidates} "
                             f"< {self.keyframes}")
        if min(self.threshold_px, self.max_translation_m, self.max_rotation_deg) <= 0:
            raise ValueError("refinement thresholds and gate bounds must be positive")
        if self.min_near_inliers < 0:
            raise ValueError(f"min_near_inliers must be >= 0, got {self.min_near_inliers}")
        if (self.voters < 1 or self.vote_keypoints < 1
                or self.min_recovery_inliers < self.min_inliers):
            raise ValueError(
                "refinement needs voters >= 1, vote_keypoints >= 1 and min_recovery_inliers >= "
                f"min_inliers; got {self.voters}, {self.vote_keypoints}, "
                f"{self.min_recovery_inliers} (min_inliers {self.min_inliers})")
        if not (self.max_point_depth_m >= 0.0 and self.max_point_disagreement_m >= 0.0):
            raise ValueError("max_point_depth_m and max_point_disagreement_m must be >= 0, got "
                             f"{self.max_point_depth_m}, {self.max_point_disagreement_m}")
        if self.max_weight_ratio < 1.0:
            raise ValueError(f"max_weight_ratio must be >= 1, got {self.max_weight_ratio}")
        if self.polish_sigmas < 0.0:
            raise ValueError(f"polish_sigmas must be >= 0, got {self.polish_sigmas}")
        if self.polish_sigmas > 0.0 and not 0.0 < self.polish_keep_sigmas <= self.polish_sigmas:
            raise ValueError("polish_keep_sigmas must be in (0, polish_sigmas], got "
                             f"{self.polish_keep_sigmas} (polish_sigmas {self.polish_sigmas})")
        if not 0.0 < self.max_view_angle_deg <= 180.0:
            raise ValueError(
                f"max_view_angle_deg must be in (0, 180], got {self.max_view_angle_deg}")
        if self.rotation_weight_m < 0:
            raise ValueError(f"rotation_weight_m must be >= 0, got {self.rotation_weight_m}")

    def in_image_pixels(self, scale: float) -> RefinementConfig:
        """These settings with the pixel threshold multiplied by ``scale``, the image's
        height over the map's image height: in the pixels of the image itself."""
        return replace(self, threshold_px=self.threshold_px * scale)

    def ransac_options(self, seed: int | None) -> RansacOptions:
        """The options of refinement's and recovery's PnP solves."""
        return RansacOptions(threshold_px=self.threshold_px, max_hypotheses=self.max_hypotheses,
                             seed=seed)


@dataclass(frozen=True)
class Refinement:
    """What refinement did with one coarse pose.

    Attributes:
        T_world_cam: (4, 4) pose to use: the refined pose when accepted, else the coarse one.
        accepted: the refined pose replaced the coarse one.
        reason: why it was not (``""`` when accepted).
        matches: 2D-3D matches found in the keyframes.
        inliers: inliers among them: of the joint pose when one was solved, else of the
            matches' own solve (0 when none was solved).
        keyframe_weight: weight of a keyframe match relative to a head correspondence in the
            joint solve (0 when there was none).
        max_depth_m: keyframe points deeper than this (metres, in their keyframe's camera)
            were not matched; 0: no limit.
    """

    T_world_cam: NDArray[np.float64]
    accepted: bool
    reason: str
    matches: int
    inliers: int
    keyframe_weight: float = 0.0
    max_depth_m: float = 0.0

    def describe(self) -> str:
        """One line for diagnostics: what became of the coarse pose and why."""
        within = f"; keyframe points within {self.max_depth_m:g} m" if self.max_depth_m else ""
        if self.accepted:
            return (f"refined: {self.inliers} of {self.matches} keyframe matches agree "
                    f"(match weight {self.keyframe_weight:.2g}{within})")
        return f"kept the head's pose: {self.reason}"


class KeyframeMatcher:
    """The map's keyframes and the matches of the current query's keypoints with them.

    Each keyframe is matched at most once per query: sequence mode may refine both a frame's
    single-frame pose and its sequence pose, which mostly pick the same keyframes. A query is
    recognised by identity (the same :class:`SparseFeatures` object), so the cache holds one
    query's matches; a localizer and its matcher serve one thread.

    Args:
        keyframes: the map's keyframes.
    """

    #: Keyframe descriptors compared with the voters at once (bounds the similarity matrix).
    VOTE_BLOCK = 8192

    def __init__(self, keyframes: Keyframes) -> None:
        self.keyframes = keyframes
        self._owner_N = np.repeat(np.arange(keyframes.count), np.diff(keyframes.offsets_K1))
        self._depth_N = point_depths(keyframes)
        self._query: SparseFeatures | None = None
        self._matches: dict[tuple[int, float], tuple[NDArray[np.float64], NDArray[np.float64],
                                                     NDArray[np.float64]]] = {}
        self._vote_index: dict[int, tuple[torch.Tensor, NDArray[np.int64]]] = {}

    @cached_property
    def depth_agreement(self) -> DepthAgreement | None:
        """How the keyframes' points agree by depth (measured on first use: a descriptor
        match per keyframe and neighbour); None for keyframes whose points are the head's, not
        sensor depth."""
        if not self.keyframes.points_from_depth:
            return None
        return measure_depth_agreement(self.keyframes)

    def depth_limit(self, config: RefinementConfig) -> float:
        """Depth (metres) beyond which ``config`` leaves this map's keyframe points out: the
        nearer of ``max_point_depth_m`` and the depth where the points disagree by
        ``max_point_disagreement_m`` (sensor-depth points only); 0: no limit."""
        limits = [config.max_point_depth_m]
        if config.max_point_disagreement_m > 0 and self.depth_agreement is not None:
            limits.append(self.depth_agreement.depth_limit(config.max_point_disagreement_m))
        positive = [limit for limit in limits if limit > 0]
        return min(positive, default=0.0)

    def _voting_descriptors(self, per_keyframe: int) -> tuple[torch.Tensor, NDArray[np.int64]]:
        """(V, 64) float32 descriptors of the ``per_keyframe`` strongest keypoints of each
        keyframe (a keyframe's rows are in descending detection score) and the (V,) keyframe
        of each; made on the first vote (recovery only: refinement matches per keyframe)."""
        if per_keyframe not in self._vote_index:
            rank_N = np.arange(len(self._owner_N)) - self.keyframes.offsets_K1[self._owner_N]
            strongest = rank_N < per_keyframe
            self._vote_index[per_keyframe] = (
                torch.from_numpy(self.keyframes.descriptors_ND[strongest].astype(np.float32)),
                self._owner_N[strongest])
        return self._vote_index[per_keyframe]

    def voted(self, query: SparseFeatures, count: int, min_similarity: float,
              voters: int, per_keyframe: int) -> NDArray[np.int64]:
        """Up to ``count`` keyframes, most votes first: each of the query's ``voters``
        strongest keypoints votes for the keyframe holding its nearest descriptor among the
        ``per_keyframe`` strongest of each keyframe, when their cosine similarity exceeds
        ``min_similarity`` (times the keyframes' ``similarity_scale``); keyframes without
        votes are left out."""
        descriptors_VD, owner_V = self._voting_descriptors(per_keyframe)
        voters_QD = torch.from_numpy(np.ascontiguousarray(query.descriptors_ND[:voters],
                                                          np.float32))
        best_Q = torch.full((len(voters_QD),), -2.0)
        index_Q = torch.zeros(len(voters_QD), dtype=torch.int64)
        for start in range(0, len(descriptors_VD), self.VOTE_BLOCK):
            block_similarity, block_index = (
                voters_QD @ descriptors_VD[start:start + self.VOTE_BLOCK].T).max(dim=1)
            better = block_similarity > best_Q
            best_Q = torch.where(better, block_similarity, best_Q)
            index_Q = torch.where(better, block_index + start, index_Q)
        threshold = min_similarity * self.keyframes.similarity_scale
        owners = owner_V[index_Q.numpy()[best_Q.numpy() > threshold]]
        votes_K = np.bincount(owners, minlength=self.keyframes.count)
        order = np.argsort(-votes_K, kind="stable")[:count]
        return order[votes_K[order] > 0].astype(np.int64)

    def matches(
        self, query: SparseFeatures, keyframes_K: NDArray[np.int64], min_similarity: float,
        max_depth_m: float = 0.0,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Query pixels (M, 2) and map points (M, 3, metres) of the mutual nearest-neighbour
        matches between ``query``'s keypoints and each of the keyframes ``keyframes_K`` (cosine
        similarity above ``min_similarity`` times the keyframes' ``similarity_scale``),
        without the points deeper than ``max_depth_m`` in their keyframe's camera (0: all)."""
        if query is not self._query:
            self._query, self._matches = query, {}
        pixels, points = [np.zeros((0, 2))], [np.zeros((0, 3))]
        for k in keyframes_K:
            key = (int(k), min_similarity)
            if key not in self._matches:
                rows = self.keyframes.rows(int(k))
                index_query, index_keyframe = mutual_nearest_neighbours(
                    query.descriptors_ND, self.keyframes.descriptors_ND[rows],
                    min_similarity * self.keyframes.similarity_scale)
                self._matches[key] = (
                    query.keypoints_N2[index_query].astype(np.float64),
                    self.keyframes.points_N3[rows][index_keyframe].astype(np.float64),
                    self._depth_N[rows][index_keyframe])
            matched_pixels, matched_points, depths = self._matches[key]
            near = depths <= max_depth_m if max_depth_m > 0 else slice(None)
            pixels.append(matched_pixels[near])
            points.append(matched_points[near])
        return np.concatenate(pixels), np.concatenate(points)


@dataclass(frozen=True)
class KeyframeMatches:
    """A query's matches with some keyframes and the pose solved from them alone.

    Attributes:
        pixels_M2: (M, 2) query pixels of the matches.
        points_M3: (M, 3) their map points (metres).
        solved: RANSAC PnP on the matches alone; None when there were fewer than the
            refinement's ``min_inliers`` matches to solve from.
        max_depth_m: keyframe points deeper than this were left out (metres); 0: none.
    """

    pixels_M2: NDArray[np.float64]
    points_M3: NDArray[np.float64]
    solved: PnPResult | None
    max_depth_m: float

    @property
    def inliers(self) -> int:
        """Inliers of the matches' own solve (0 without a pose)."""
        if self.solved is None or not self.solved.success:
            return 0
        return int(np.sum(self.solved.inliers))


def match_keyframes(
    query: SparseFeatures, keyframes_K: NDArray[np.int64], intrinsics: Intrinsics,
    matcher: KeyframeMatcher, config: RefinementConfig, seed: int | None,
) -> KeyframeMatches:
    """Match ``query`` with the keyframes ``keyframes_K`` up to the map's keyframe depth limit
    (:meth:`KeyframeMatcher.depth_limit`) and solve a pose from the matches alone; when that
    solve has fewer than ``config.min_near_inliers`` inliers, match the points beyond the
    limit too and keep that solve if it has more inliers."""

    def matched(max_depth_m: float) -> KeyframeMatches:
        pixels_M2, points_M3 = matcher.matches(query, keyframes_K, config.min_similarity,
                                               max_depth_m)
        solved = (solve_pnp(pixels_M2, points_M3, intrinsics.as_tuple,
                            config.ransac_options(seed))
                  if len(pixels_M2) >= config.min_inliers else None)
        return KeyframeMatches(pixels_M2, points_M3, solved, max_depth_m)

    near = matched(matcher.depth_limit(config))
    if near.max_depth_m == 0 or near.inliers >= config.min_near_inliers:
        return near
    everything = matched(0.0)
    return everything if everything.inliers > near.inliers else near


def inlier_rms_px(errors_px: NDArray[np.float64], threshold_px: float) -> float | None:
    """RMS of the reprojection errors (pixels) below ``threshold_px``; None without any."""
    inlying = errors_px[errors_px < threshold_px]
    return float(np.sqrt(np.mean(inlying ** 2))) if len(inlying) else None


def keyframe_weight(head_rms_px: float | None, keyframe_rms_px: float,
                    max_ratio: float) -> float:
    """Inverse-variance weight of a keyframe match relative to a head correspondence,
    ``(head_rms / keyframe_rms)**2`` clipped to ``[1 / max_ratio, max_ratio]`` (1 without head
    inliers: the matches then solve alone)."""
    if head_rms_px is None:
        return 1.0
    ratio = (head_rms_px / max(keyframe_rms_px, 1e-9)) ** 2
    return float(np.clip(ratio, 1.0 / max_ratio, max_ratio))


#: Standard deviation per median absolute residual of normally distributed errors.
MEDIAN_TO_SIGMA = 1.4826


def tighten_matches(
    T_world_cam: NDArray[np.float64], pixels_M2: NDArray[np.float64],
    points_M3: NDArray[np.float64], intrinsics: Intrinsics, config: RefinementConfig,
    seed: int | None,
) -> NDArray[np.float64] | None:
    """The pose solved again from the keyframe matches (``pixels_M2`` (M, 2), ``points_M3``
    (M, 3)) alone, those within ``config.polish_keep_sigmas`` robust standard deviations of
    their residuals under the joint pose ``T_world_cam`` (4, 4).

    The robust standard deviation is :data:`MEDIAN_TO_SIGMA` times the median residual of the
    matches within ``config.threshold_px``. Two bounds, because they answer two questions:
    whether the matches are far more precise than the threshold (``config.polish_sigmas`` of
    them tighter than it: exact keyframe depth), and which matches to solve from then (the
    tighter ``polish_keep_sigmas``, which leaves out matches a pixel or two off that the wider
    bound still holds). The head's correspondences are left out of that solve: their error is
    the map's bias near the query, which their inverse-variance weight in the joint solve does
    not model, and precise matches need no help from them. None when ``config.polish_sigmas``
    is 0, its bound is not tighter than the threshold (the matches are about as imprecise as
    the threshold allows: nothing to tighten), fewer than ``config.min_inliers`` matches are
    kept, or the solve fails.
    """
    errors_M = reprojection_errors_px(T_world_cam, intrinsics, pixels_M2, points_M3)
    inlying_M = errors_M < config.threshold_px
    if config.polish_sigmas <= 0 or not inlying_M.any():
        return None
    sigma_px = MEDIAN_TO_SIGMA * float(np.median(errors_M[inlying_M]))
    if config.polish_sigmas * sigma_px >= config.threshold_px:
        return None
    kept_M = errors_M < config.polish_keep_sigmas * sigma_px
    if kept_M.sum() < config.min_inliers:
        return None
    solved = solve_pnp(pixels_M2[kept_M], points_M3[kept_M], intrinsics.as_tuple,
                       config.ransac_options(seed))
    return np.asarray(solved.T_world_cam, dtype=np.float64) if solved.success else None


def refine_pose(
    T_world_cam: NDArray[np.float64], query: SparseFeatures, intrinsics: Intrinsics,
    matcher: KeyframeMatcher, config: RefinementConfig, points2d_N2: NDArray[np.float64],
    scene_points_N3: NDArray[np.float64], seed: int | None = 0,
) -> Refinement:
    """Refine the coarse (4, 4) camera-to-world pose of the image whose keypoints are
    ``query`` against the keyframes of ``matcher``, jointly with the image's head
    correspondences (see the module docstring).

    Args:
        T_world_cam: the coarse pose.
        query: the image's XFeat keypoints (original-image pixels).
        intrinsics: its pinhole camera.
        matcher: the map's keyframes, with this query's matches so far.
        config: refinement settings (pixel threshold in this image's pixels).
        points2d_N2: (N, 2) pixels of the image's head correspondences (N may be 0).
        scene_points_N3: (N, 3) their map points (metres).
        seed: RANSAC seed.
    """
    keyframes = matcher.keyframes
    candidates = config.candidates if keyframes.points_from_depth else config.keyframes
    chosen_K = keyframes.covisible(T_world_cam, intrinsics, config.keyframes, candidates,
                                   config.max_view_angle_deg, config.rotation_weight_m)
    found = match_keyframes(query, chosen_K, intrinsics, matcher, config, seed)
    matches = len(found.pixels_M2)

    def keep(reason: str, inliers: int = 0, weight: float = 0.0) -> Refinement:
        return Refinement(T_world_cam, False, reason, matches, inliers, weight,
                          found.max_depth_m)

    if found.solved is None:
        return keep(f"{matches} keyframe matches (need {config.min_inliers})")
    inliers = found.inliers
    if inliers < config.min_inliers:
        return keep(f"{inliers} match inliers (need {config.min_inliers})", inliers)
    head_rms = inlier_rms_px(
        reprojection_errors_px(T_world_cam, intrinsics, points2d_N2, scene_points_N3),
        config.threshold_px)
    weight = keyframe_weight(head_rms, found.solved.stats.rmse_px, config.max_weight_ratio)
    joint = solve_pnp(np.concatenate([found.pixels_M2, points2d_N2]),
                      np.concatenate([found.points_M3, scene_points_N3]), intrinsics.as_tuple,
                      config.ransac_options(seed),
                      np.concatenate([np.full(matches, weight), np.ones(len(points2d_N2))]))
    if not joint.success:
        return keep("the joint solve found no pose", inliers, weight)
    inliers = int(np.sum(joint.inliers[:matches]))
    T_refined = np.asarray(joint.T_world_cam, dtype=np.float64)
    tightened = tighten_matches(T_refined, found.pixels_M2, found.points_M3, intrinsics, config,
                                seed)
    if tightened is not None:
        T_refined = tightened
    moved_m, turned_deg = pose_error(T_refined, T_world_cam)
    if moved_m > config.max_translation_m or turned_deg > config.max_rotation_deg:
        return keep(f"refined pose {moved_m:.2f} m / {turned_deg:.1f} deg from the coarse one",
                    inliers, weight)
    return Refinement(T_refined, True, "", matches, inliers, weight, found.max_depth_m)


@dataclass(frozen=True)
class Recovery:
    """A pose solved from the keyframes alone (the head found none).

    Attributes:
        T_world_cam: (4, 4) camera-to-world pose.
        points2d_M2: (M, 2) query pixels of the keyframe matches.
        points3d_M3: (M, 3) their map points (metres).
        inliers_M: (M,) bool RANSAC inliers.
    """

    T_world_cam: NDArray[np.float64]
    points2d_M2: NDArray[np.float64]
    points3d_M3: NDArray[np.float64]
    inliers_M: NDArray[np.bool_]


def recover_pose(
    query: SparseFeatures, intrinsics: Intrinsics, matcher: KeyframeMatcher,
    config: RefinementConfig, seed: int | None = 0,
) -> Recovery | None:
    """A pose for an image the head found none for, from the keyframes its keypoints vote
    for (see the module docstring); None when fewer than ``min_recovery_inliers`` matches
    agree on one."""
    chosen_K = matcher.voted(query, config.keyframes, config.min_similarity, config.voters,
                             config.vote_keypoints)
    found = match_keyframes(query, chosen_K, intrinsics, matcher, config, seed)
    if found.solved is None or found.inliers < config.min_recovery_inliers:
        return None
    return Recovery(np.asarray(found.solved.T_world_cam, dtype=np.float64), found.pixels_M2,
                    found.points_M3, np.asarray(found.solved.inliers, dtype=bool))
