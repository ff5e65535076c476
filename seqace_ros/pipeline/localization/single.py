"""Single-frame relocalization: image + intrinsics -> camera pose in the map.

Three stages, each a public method so other modes (sequence, ROS node) can reuse them:

1. :meth:`Localizer.encode`: encoder pass and salient patch selection (top-K keypoint cells
   after NMS on the 1/8 grid), patch centres mapped to original image pixels;
2. :meth:`Localizer.regress`: the scene head on those patches -> 3D points in the map frame;
3. :meth:`Localizer.solve`: the C++ RANSAC PnP solver on the 2D-3D correspondences;

and, with ``refine`` on a map with keyframes, a fourth, :meth:`Localizer.refine`: the coarse
pose refined against the map's keyframes (:mod:`.refinement`), from XFeat keypoints detected
in the same encoder pass, or, where RANSAC found no pose or the keyframes do not confirm
the head's (the refinement is rejected), :meth:`Localizer.recover`: a pose from the keyframes
the query's keypoints vote for, taken when it has more inliers than the head's pose.

:meth:`Localizer.localize` runs them and times them; its result is also the per-frame
estimate that the sequence mode builds on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import ClassVar

import numpy as np
import torch
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.device import resolve_device
from seqace_ros.core.encoder import check_image, create_encoder
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.keypoints import cell_centres_px, select_salient_cells
from seqace_ros.core.map_file import SceneMap
from seqace_ros.core.sparse_features import SparseFeatures
from seqace_ros.pipeline.localization.refinement import (
    KeyframeMatcher,
    Refinement,
    RefinementConfig,
    recover_pose,
    refine_pose,
)
from seqace_ros.ransac import RansacOptions, solve_pnp


class LocalizationError(SeqaceError, ValueError):
    """Input the localizer cannot use (image and intrinsics that disagree, bad config)."""


@dataclass(frozen=True)
class LocalizerConfig:
    """Test-time settings of the single-frame stages; also the ``single`` mode's config.

    Attributes:
        mode: the mode these settings build (see :mod:`.modes`).
        uses_odometry: whether the mode uses ``T_odom_cam`` (it does not).
        top_k: salient patches regressed per image.
        nms_radius: keypoint NMS radius in grid cells.
        threshold_px: RANSAC inlier threshold in pixels of the network input, the image
            scaled to the map's ``image_height`` (ACE's convention); in original-image pixels
            it is ``threshold_px * image height / map image_height`` (see
            :meth:`Localizer.inlier_threshold_px`), so it covers the same part of the scene
            at every image size.
        max_hypotheses: RANSAC hypotheses.
        min_inliers: fewer inliers than this is a failure.
        seed: RANSAC seed (``None``: nondeterministic).
        refine: refine each pose against the map's keyframes (the map must have them).
        refinement: settings of that stage.
    """

    mode: ClassVar[str] = "single"
    uses_odometry: ClassVar[bool] = False

    top_k: int = 2000
    nms_radius: int = 1
    threshold_px: float = 10.0
    max_hypotheses: int = 64
    min_inliers: int = 50
    seed: int | None = 0
    refine: bool = False
    refinement: RefinementConfig = field(default_factory=RefinementConfig)

    def __post_init__(self) -> None:
        if self.top_k < 4 or self.nms_radius < 0 or self.max_hypotheses < 1:
            raise LocalizationError(
                "need top_k >= 4, nms_radius >= 0, max_hypotheses >= 1; got "
                f"{self.top_k}, {self.nms_radius}, {self.max_hypotheses}")
        if self.threshold_px <= 0 or self.min_inliers < 4:
            raise LocalizationError(
                f"need threshold_px > 0 and min_inliers >= 4, got {self.threshold_px}, "
                f"{self.min_inliers}")

    def with_frame(self, frame: LocalizerConfig) -> LocalizerConfig:
        """These settings with the single-frame stages' settings ``frame``: ``frame``."""
        return frame

    def build(self, scene_map: SceneMap, device: str | torch.device) -> Localizer:
        """The single-frame localizer with these settings."""
        return Localizer(scene_map, self, device)


class PoseSource(Enum):
    """Where an accepted pose came from."""

    SEQUENCE = "sequence"  # fused with the carried local map
    SINGLE = "single"  # single-frame estimate (no usable local map, or after a reset)
    NONE = "none"  # the frame failed


@dataclass(frozen=True)
class FrameStatus:
    """What a localization mode did with the last frame (for diagnostics and tests).

    Attributes:
        source: where the returned pose came from (``NONE`` before the first frame).
        refinement: what refinement did with the returned pose
            (:meth:`~.refinement.Refinement.describe`, or that it was recovered from the
            keyframes); ``""`` when refinement is off or there was no pose.
    """

    source: PoseSource = PoseSource.NONE
    refinement: str = ""

    def values(self) -> dict[str, str]:
        """Every attribute as text, by name (the node's ``/diagnostics`` key values)."""
        def text(value: object) -> str:
            return value.value if isinstance(value, Enum) else str(value)

        return {f.name: text(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class EncodedFrame:
    """Salient patches of one image.

    Attributes:
        features_KC: (K, C) float32 encoder features (on the localizer's device).
        points2d_K2: (K, 2) float64 patch centres (u, v) in original image pixels.
        scores_K: (K,) float32 keypoint scores.
        keypoints: XFeat keypoints for refinement (``None`` when refinement is off).
    """

    features_KC: torch.Tensor
    points2d_K2: NDArray[np.float64]
    scores_K: NDArray[np.float32]
    keypoints: SparseFeatures | None = None


@dataclass(frozen=True)
class LocalizationResult:
    """Outcome of localizing one image.

    Attributes:
        success: a pose with at least ``min_inliers`` inliers was found.
        T_world_cam: (4, 4) float64 camera-to-world pose when ``success``, else ``None``.
        num_inliers: RANSAC inliers of the returned pose (0 when the solver found none).
        num_correspondences: 2D-3D correspondences given to RANSAC.
        confidence: inlier ratio ``num_inliers / num_correspondences`` in [0, 1].
        timings_ms: ``encoder``, ``head``, ``ransac`` (and ``refine`` with refinement) and
            ``total`` milliseconds.
        points2d_N2: (N, 2) patch centres in original image pixels.
        scene_points_N3: (N, 3) regressed map-frame points (metres).
        inliers_N: (N,) bool inlier mask (all False when the solver found nothing).
        keypoints: the image's XFeat keypoints (``None`` when refinement is off).
        refined: the head's pose was refined against the keyframes (``num_inliers`` and
            ``inliers_N`` stay those of the coarse pose's patches).
        recovered: the head found no pose, or one the keyframes did not confirm, and this one
            was solved from the keyframes alone (:meth:`Localizer.recover`; the
            correspondences, counts and inliers are then the keyframe matches').
    """

    success: bool
    T_world_cam: NDArray[np.float64] | None
    num_inliers: int
    num_correspondences: int
    confidence: float
    timings_ms: dict[str, float] = field(default_factory=dict)
    points2d_N2: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))
    scene_points_N3: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 3)))
    inliers_N: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    keypoints: SparseFeatures | None = None
    refined: bool = False
    recovered: bool = False

    @classmethod
    def from_inliers(
        cls, T_world_cam: NDArray[np.float64] | None, points2d_N2: NDArray[np.float64],
        scene_points_N3: NDArray[np.float64], inliers_N: NDArray[np.bool_],
        timings_ms: dict[str, float], min_inliers: int = 0,
    ) -> LocalizationResult:
        """The result of a pose (``None``: none found) over N correspondences: a success when
        there is a pose with at least ``min_inliers`` inliers; the counts and the confidence
        come from the (N,) inlier mask."""
        num_inliers = int(inliers_N.sum())
        n = len(points2d_N2)
        success = T_world_cam is not None and num_inliers >= min_inliers
        return cls(success=success, T_world_cam=T_world_cam if success else None,
                   num_inliers=num_inliers, num_correspondences=n,
                   confidence=num_inliers / n if n else 0.0, timings_ms=timings_ms,
                   points2d_N2=points2d_N2, scene_points_N3=scene_points_N3, inliers_N=inliers_N)


def check_frame(image_rgb: NDArray[np.uint8], intrinsics: Intrinsics) -> None:
    """Raise unless ``image_rgb`` is an (H, W, 3) uint8 image and ``intrinsics`` are for W x H.

    Raises:
        EncoderError: on a malformed image.
        LocalizationError: when the intrinsics are for another image size.
    """
    check_image(image_rgb)
    height, width = image_rgb.shape[:2]
    if (intrinsics.width, intrinsics.height) != (width, height):
        raise LocalizationError(f"intrinsics are for {intrinsics.width}x{intrinsics.height} "
                                f"images, the image is {width}x{height}")


class Localizer:
    """Relocalizes single images against a scene map: the ``single`` localization mode.

    Each frame is localized on its own: no state is kept between frames.

    Args:
        scene_map: the map (its encoder is created from the id it records and checked
            against the recorded weight hash).
        config: test-time settings.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.

    Raises:
        MapFileError: when this installation's encoder weights differ from the map's, or its
            features are not the width the head takes.
        LocalizationError: ``refine`` on a map without keyframes.
    """

    def __init__(
        self, scene_map: SceneMap, config: LocalizerConfig | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        self.scene_map = scene_map
        self._matcher = (None if scene_map.keyframes is None
                         else KeyframeMatcher(scene_map.keyframes))
        self.settings = config or LocalizerConfig()
        self.status = FrameStatus()
        self.device = resolve_device(device)
        self.encoder = create_encoder(scene_map.encoder_id, scene_map.image_height, self.device)
        scene_map.check_encoder(self.encoder.encoder_id, self.encoder.weight_hash,
                                self.encoder.feature_dim)
        self.head = scene_map.build_head(self.device)

    @property
    def settings(self) -> LocalizerConfig:
        """Test-time settings; new ones take effect from the next frame."""
        return self._settings

    @settings.setter
    def settings(self, settings: LocalizerConfig) -> None:
        if settings.refine:
            if self._matcher is None:
                raise LocalizationError("refinement needs a map with keyframes; this map has "
                                        "none (map again with keyframes, or turn refine off)")
            self._matcher.depth_limit(settings.refinement)  # measure agreement now, not later
        self._settings = settings

    def synchronize(self) -> None:
        """Wait for the device's queued work (CUDA), so that stage timings are honest."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.inference_mode()
    def encode(self, image_rgb: NDArray[np.uint8]) -> EncodedFrame:
        """Encoder stage: salient patch features and their pixel centres."""
        check_image(image_rgb)
        height, width = image_rgb.shape[:2]
        refinement = self.settings.refinement
        output = self.encoder.encode(
            image_rgb, num_keypoints=refinement.keypoints if self.settings.refine else 0)
        grid_w = output.scores_HW.shape[1]
        cells_K = select_salient_cells(output.scores_HW, self.settings.top_k,
                                       self.settings.nms_radius)
        features_CN = output.features_CHW.reshape(output.features_CHW.shape[0], -1)
        points2d = cell_centres_px(cells_K, grid_w, self.encoder.stride,
                                   scale_x=width / output.input_width,
                                   scale_y=height / output.input_height)
        return EncodedFrame(features_KC=features_CN[:, cells_K].T.contiguous(),
                            points2d_K2=points2d.cpu().double().numpy(),
                            scores_K=output.scores_HW.flatten()[cells_K].cpu().numpy(),
                            keypoints=output.sparse)

    @torch.inference_mode()
    def regress(self, encoded: EncodedFrame) -> NDArray[np.float64]:
        """Head stage: map-frame points (K, 3) in metres for the encoded patches."""
        return self.head(encoded.features_KC).cpu().double().numpy()

    def solve(
        self, points2d_N2: NDArray[np.float64], scene_points_N3: NDArray[np.float64],
        intrinsics: Intrinsics,
    ) -> tuple[NDArray[np.float64] | None, NDArray[np.bool_]]:
        """RANSAC stage: pose (4, 4) camera-to-world or ``None``, and the (N,) inlier mask."""
        settings = self.settings
        options = RansacOptions(threshold_px=self.inlier_threshold_px(intrinsics),
                                max_hypotheses=settings.max_hypotheses, seed=settings.seed)
        result = solve_pnp(points2d_N2, scene_points_N3, intrinsics.as_tuple, options)
        inliers = np.asarray(result.inliers, dtype=bool)
        if not result.success:
            return None, np.zeros(len(points2d_N2), dtype=bool)
        return np.asarray(result.T_world_cam, dtype=np.float64), inliers

    def pixel_scale(self, intrinsics: Intrinsics) -> float:
        """Pixels of the image ``intrinsics`` describes per network-input pixel: its height
        over the map's ``image_height``. The settings' pixel thresholds are in network-input
        pixels and are multiplied by this."""
        return intrinsics.height / self.scene_map.image_height

    def inlier_threshold_px(self, intrinsics: Intrinsics) -> float:
        """The RANSAC inlier threshold in pixels of the image ``intrinsics`` describes."""
        return self.settings.threshold_px * self.pixel_scale(intrinsics)

    def _refinement_in_pixels_of(self, intrinsics: Intrinsics) -> RefinementConfig:
        """The refinement settings with their pixel threshold in this image's pixels."""
        return self.settings.refinement.in_image_pixels(self.pixel_scale(intrinsics))

    def refine(
        self, T_world_cam: NDArray[np.float64], keypoints: SparseFeatures | None,
        intrinsics: Intrinsics, points2d_N2: NDArray[np.float64],
        scene_points_N3: NDArray[np.float64],
    ) -> Refinement | None:
        """Refinement stage: the (4, 4) pose refined against the map's keyframes (see
        :mod:`.refinement`; the image's head correspondences ``points2d_N2`` (N, 2),
        ``scene_points_N3`` (N, 3) weigh in); its ``T_world_cam`` is ``T_world_cam`` itself
        when the refinement is not accepted. None when ``refine`` is off."""
        if not self.settings.refine or keypoints is None or self._matcher is None:
            return None
        return refine_pose(T_world_cam, keypoints, intrinsics, self._matcher,
                           self._refinement_in_pixels_of(intrinsics), points2d_N2,
                           scene_points_N3, self.settings.seed)

    def recover(self, keypoints: SparseFeatures | None,
                intrinsics: Intrinsics) -> LocalizationResult | None:
        """Recovery stage, for an image the head found no pose for or whose pose the
        keyframes did not confirm (:meth:`localize` decides): a result from the
        keyframes its keypoints vote for (see :func:`.refinement.recover_pose`) when
        ``refine`` and its ``recover`` setting are on and enough matches agree, else None."""
        if (not self.settings.refine or not self.settings.refinement.recover
                or keypoints is None or self._matcher is None):
            return None
        recovery = recover_pose(keypoints, intrinsics, self._matcher,
                                self._refinement_in_pixels_of(intrinsics), self.settings.seed)
        if recovery is None:
            return None
        return replace(LocalizationResult.from_inliers(
            recovery.T_world_cam, recovery.points2d_M2, recovery.points3d_M3, recovery.inliers_M,
            {}, self.settings.min_inliers), keypoints=keypoints, recovered=True)

    def localize(
        self, image_rgb: NDArray[np.uint8], intrinsics: Intrinsics, stamp_ns: int | None = None,
        T_odom_cam: NDArray[np.float64] | None = None,
    ) -> LocalizationResult:
        """Pose of the camera that took ``image_rgb`` (H, W, 3 uint8 RGB): the three stages,
        timed. The result is also the per-frame estimate the sequence mode builds on.

        ``stamp_ns`` and ``T_odom_cam`` are not used: a single frame needs neither (they are
        part of the mode protocol, see :mod:`.modes`).

        Raises:
            EncoderError: on a malformed image.
            LocalizationError: when the intrinsics are for another image size.
        """
        check_frame(image_rgb, intrinsics)
        t0 = time.perf_counter()
        encoded = self.encode(image_rgb)
        self.synchronize()
        t1 = time.perf_counter()
        scene_points = self.regress(encoded)
        t2 = time.perf_counter()
        T_world_cam, inliers = self.solve(encoded.points2d_K2, scene_points, intrinsics)
        t3 = time.perf_counter()
        result = LocalizationResult.from_inliers(T_world_cam, encoded.points2d_K2, scene_points,
                                                 inliers, {}, self.settings.min_inliers)
        T_world_cam, refined, outcome = result.T_world_cam, False, ""  # pose None unless found
        recovered, doubt = None, ""
        if T_world_cam is None:
            recovered = self.recover(encoded.keypoints, intrinsics)
        elif (refinement := self.refine(T_world_cam, encoded.keypoints, intrinsics,
                                        encoded.points2d_K2, scene_points)) is not None:
            T_world_cam, refined = refinement.T_world_cam, refinement.accepted
            outcome = refinement.describe()
            if not refinement.accepted:
                # The keyframes near the head's pose do not confirm it: the keyframes the
                # image's own keypoints vote for may hold a pose that explains more.
                recovered = self.recover(encoded.keypoints, intrinsics)
                if recovered is None or recovered.num_inliers <= result.num_inliers:
                    recovered = None
                else:
                    doubt = (f"; the head's pose ({result.num_inliers} inliers) was not "
                             f"confirmed: {refinement.reason}")
        if recovered is not None:
            result, T_world_cam = recovered, recovered.T_world_cam
            outcome = (f"recovered from the keyframes: {recovered.num_inliers} of "
                       f"{recovered.num_correspondences} matches agree{doubt}")
        t4 = time.perf_counter()
        timings_ms = {"encoder": 1000.0 * (t1 - t0), "head": 1000.0 * (t2 - t1),
                      "ransac": 1000.0 * (t3 - t2),
                      **({"refine": 1000.0 * (t4 - t3)} if self.settings.refine else {}),
                      "total": 1000.0 * (t4 - t0)}
        self.status = FrameStatus(PoseSource.SINGLE if result.success else PoseSource.NONE,
                                  outcome)
        return replace(result, T_world_cam=T_world_cam, timings_ms=timings_ms,
                       keypoints=encoded.keypoints, refined=refined)

    def reset(self) -> None:
        """Nothing to forget but the last status: frames are localized on their own."""
        self.status = FrameStatus()
