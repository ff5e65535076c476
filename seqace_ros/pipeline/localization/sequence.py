"""Sequence-mode relocalization (SeqACE): a rolling buffer of verified 2D-3D points.

A camera sees a stream; consecutive frames see the same scene points. For every frame:

1. the single-frame mode runs (:meth:`.single.Localizer.localize`: encoder, head, RANSAC
   PnP on this frame's patches): the single-frame estimate ``T_single``, also the fallback;
2. the local map (inlier 2D-3D points of the last frames, see :mod:`.local_map`) is carried
   into this image by Lucas-Kanade optical flow with a forward-backward check;
3. when enough tracks survive, a sequence estimate is solved: ``"joint"`` fusion solves this
   frame's and the carried correspondences together in one RANSAC; ``"weighted"`` fusion
   (SeqACE's scheme) solves the carried points alone and blends that pose with ``T_single``,
   weighted by inlier counts;
4. a consistency gate (:func:`gate`) compares the sequence and single-frame estimates, and
   the motion prediction (odometry when ``T_odom_cam`` is given, else constant velocity).
   Agreeing estimates: the stream continues from the single-frame pose. The carried points
   were verified under the previous returned poses, so a sequence estimate leans towards
   them; this frame's own estimate carries no such history (``bench/results/NOTES.md``,
   section 6, compares the two choices on the hard splits). Disagreeing estimates: the
   carried points take over when the single-frame estimate is the outlier (motion
   prediction, inlier counts); a sequence estimate that keeps disagreeing with confident
   single-frame estimates is a tracking loss, and the buffer is reset to the single-frame estimate;
5. temporal smoothing: the previous returned pose, carried into this frame by the relative
   motion of the tracked points (:mod:`.motion`: both frames solved from the same scene
   coordinates, so the head's regression error mostly cancels), is averaged with the
   accepted sequence estimate (weight ``smoothing`` on the new estimate). Per-frame noise
   averages out over the last few frames; an old error fades by ``1 - smoothing`` per frame
   and a carried pose that disagrees with the new estimate beyond the gate is dropped;
6. with refinement on (a map with keyframes): this frame's refined (or recovered) single-frame
   pose, confirmed by the carried points, is smoothed with the weight ``refined_smoothing``
   (more precise than the head's pose, it weighs more) and not refined again (a second
   solve from the keyframes would be a fresh single-frame pose, undoing step 5); any other
   sequence pose is refined against the keyframes like a single-frame one;
7. the local map becomes the inliers of the returned pose among the carried and the new
   points; points older than ``buffer_length`` frames are dropped.

Only past and current frames are used (causal). The buffer also resets on an image-size
change, a stamp gap longer than ``max_gap_s``, a failed frame, or an explicit :meth:`reset`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import interpolate_transform, invert_transform, pose_error
from seqace_ros.core.map_file import SceneMap
from seqace_ros.pipeline.localization.local_map import (
    LocalMap,
    reprojection_errors_px,
    update_local_map,
)
from seqace_ros.pipeline.localization.motion import relative_motion
from seqace_ros.pipeline.localization.single import (
    FrameStatus,
    LocalizationError,
    LocalizationResult,
    Localizer,
    LocalizerConfig,
    PoseSource,
)
from seqace_ros.pipeline.localization.tracking import FlowConfig, flow_image, track_points

Fusion = Literal["joint", "weighted"]
FUSIONS: tuple[str, ...] = ("joint", "weighted")


@dataclass(frozen=True)
class SequenceConfig:
    """Sequence-mode settings.

    Attributes:
        localizer: the single-frame stages' settings (patches, RANSAC threshold, min inliers).
        flow: optical-flow settings of the tracker.
        fusion: ``"joint"`` (one RANSAC over this frame's and the carried points) or
            ``"weighted"`` (carried points solved alone, pose blended with the single-frame
            pose by inlier counts).
        buffer_length: frames a verified point is carried after the frame that regressed it.
        max_local_points: cap on the local map size (newest points win).
        min_tracked: fewer surviving tracks than this and the local map counts as lost.
        gate_translation_m: two estimates further apart than this (camera centres) disagree.
        gate_rotation_deg: two estimates rotated more than this apart disagree.
        max_conflicts: consecutive frames where the sequence estimate disagrees with a
            single-frame estimate that explains more of this frame's own patches (and the
            motion prediction does not settle it) before the buffer is declared lost and
            reset to the single-frame estimate.
        max_gap_s: a stamp gap longer than this (seconds) resets the buffer.
        smoothing: weight in (0, 1] of this frame's sequence estimate against the previous
            returned pose carried forward by the tracked points' relative motion; 1.0 turns
            temporal smoothing off.
        refined_smoothing: the same weight for a single-frame pose refined (or recovered)
            against the map's keyframes that the carried points confirm: such a pose is more
            precise than the head's, so it weighs more against the carried pose.
    """

    mode: ClassVar[str] = "sequence"
    uses_odometry: ClassVar[bool] = True

    localizer: LocalizerConfig = field(default_factory=LocalizerConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    fusion: Fusion = "joint"
    buffer_length: int = 5
    max_local_points: int = 400
    min_tracked: int = 30
    gate_translation_m: float = 0.10
    gate_rotation_deg: float = 5.0
    max_conflicts: int = 2
    max_gap_s: float = 1.0
    smoothing: float = 0.3
    refined_smoothing: float = 0.7

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise LocalizationError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.buffer_length < 1 or self.max_conflicts < 1:
            raise LocalizationError(
                f"need buffer_length >= 1 and max_conflicts >= 1, got {self.buffer_length}, "
                f"{self.max_conflicts}")
        if self.min_tracked < 4 or self.max_local_points < self.min_tracked:
            raise LocalizationError(
                f"need 4 <= min_tracked <= max_local_points, got {self.min_tracked}, "
                f"{self.max_local_points}")
        if self.gate_translation_m <= 0 or self.gate_rotation_deg <= 0 or self.max_gap_s <= 0:
            raise LocalizationError(
                f"need gate_translation_m, gate_rotation_deg and max_gap_s > 0, got "
                f"{self.gate_translation_m}, {self.gate_rotation_deg}, {self.max_gap_s}")
        if not (0.0 < self.smoothing <= 1.0 and 0.0 < self.refined_smoothing <= 1.0):
            raise LocalizationError(
                "smoothing and refined_smoothing must be in (0, 1], got "
                f"{self.smoothing}, {self.refined_smoothing}")

    def with_frame(self, frame: LocalizerConfig) -> SequenceConfig:
        """These settings with the single-frame stages' settings ``frame``."""
        return replace(self, localizer=frame)

    def build(self, scene_map: SceneMap, device: str | torch.device) -> SequenceLocalizer:
        """The sequence localizer with these settings."""
        return SequenceLocalizer(scene_map, self, device)


@dataclass(frozen=True)
class SequenceStatus(FrameStatus):
    """What the sequence mode did with the last frame (for diagnostics and tests).

    Attributes:
        source: where the returned pose came from.
        tracked_points: local-map points that survived optical flow into this frame.
        local_points: size of the local map after this frame.
        reset_reason: why the buffer was reset before or at this frame (``""``: it was not).
        single_success: the single-frame estimate succeeded.
        conflicts: consecutive frames where the sequence and single-frame estimates disagree.
        smoothed: the returned pose averages the sequence estimate with the previous pose
            carried forward (see ``SequenceConfig.smoothing``).
    """

    tracked_points: int = 0
    local_points: int = 0
    reset_reason: str = ""
    single_success: bool = False
    conflicts: int = 0
    smoothed: bool = False


@dataclass(frozen=True)
class PoseEstimate:
    """A pose with its RANSAC inliers and how many of this frame's own patches it explains.

    Attributes:
        T_world_cam: (4, 4) float64 camera-to-world pose.
        num_inliers: RANSAC inliers of the pose.
        current_inliers: this frame's own patches within the inlier threshold of the pose.
    """

    T_world_cam: NDArray[np.float64]
    num_inliers: int
    current_inliers: int


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict on one frame.

    Attributes:
        accepted: the estimate to return (``None``: the frame failed).
        source: where it came from.
        reset_reason: why the buffer is reset to the single-frame estimate (``""``: it is not).
        conflicts: consecutive disagreeing frames after this one.
    """

    accepted: PoseEstimate | None
    source: PoseSource
    reset_reason: str
    conflicts: int


def poses_agree(
    T_world_a: NDArray[np.float64], T_world_b: NDArray[np.float64], config: SequenceConfig,
) -> bool:
    """Whether two (4, 4) camera-to-world poses are within the gate's translation (camera
    centres, metres) and rotation (degrees) bounds of each other."""
    translation_m, rotation_deg = pose_error(T_world_a, T_world_b)
    return translation_m < config.gate_translation_m and rotation_deg < config.gate_rotation_deg


def gate(
    sequence: PoseEstimate | None, single: PoseEstimate | None,
    T_world_pred: NDArray[np.float64] | None, conflicts: int, config: SequenceConfig,
) -> GateDecision:
    """Choose between the sequence and the single-frame estimates of one frame.

    Agreeing estimates: the single-frame pose, with the stream continuing (source
    ``SEQUENCE``: the carried points confirmed it). No single-frame estimate: the sequence
    one. Disagreeing: the one that agrees with the motion prediction ``T_world_pred`` when
    exactly one does; otherwise the sequence one, unless the single-frame pose explains more
    of this frame's patches for ``config.max_conflicts`` frames in a row, which resets the
    buffer to it. No sequence estimate: the single-frame one (or none).

    Args:
        sequence: the sequence estimate, ``None`` when there is none.
        single: the single-frame estimate, ``None`` when it failed.
        T_world_pred: (4, 4) predicted camera-to-world pose of this frame, or ``None``.
        conflicts: consecutive disagreeing frames before this one.
        config: the gate bounds and ``max_conflicts``.
    """
    if sequence is None:
        return GateDecision(single, PoseSource.SINGLE if single else PoseSource.NONE, "", 0)
    if single is None:
        return GateDecision(sequence, PoseSource.SEQUENCE, "", 0)
    if poses_agree(sequence.T_world_cam, single.T_world_cam, config):
        return GateDecision(single, PoseSource.SEQUENCE, "", 0)
    if T_world_pred is not None:
        sequence_ok = poses_agree(sequence.T_world_cam, T_world_pred, config)
        single_ok = poses_agree(single.T_world_cam, T_world_pred, config)
        if single_ok and not sequence_ok:
            return GateDecision(single, PoseSource.SINGLE,
                                "sequence estimate left the motion prediction", 0)
        if sequence_ok and not single_ok:
            return GateDecision(sequence, PoseSource.SEQUENCE, "", 0)
    if single.num_inliers <= sequence.current_inliers:
        return GateDecision(sequence, PoseSource.SEQUENCE, "", 0)
    if conflicts + 1 >= config.max_conflicts:
        return GateDecision(single, PoseSource.SINGLE, (
            f"sequence and single-frame estimates disagreed {config.max_conflicts} frames in "
            "a row"), 0)
    return GateDecision(sequence, PoseSource.SEQUENCE, "", conflicts + 1)


class SequenceLocalizer:
    """Relocalizes the frames of a stream, fed in order, using the recent frames: the
    ``sequence`` localization mode (see :mod:`.modes`). Not thread-safe: feed one stream
    from one thread.

    Args:
        scene_map: the map.
        config: sequence settings.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.

    Raises:
        MapFileError: when this installation's encoder weights differ from the map's.
    """

    def __init__(
        self, scene_map: SceneMap, config: SequenceConfig | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        self._settings = config or SequenceConfig()
        self._single = Localizer(scene_map, self._settings.localizer, device)
        self._frame_index = 0
        self.reset()

    @property
    def settings(self) -> SequenceConfig:
        """The sequence settings; setting them also sets the single-frame stages'."""
        return self._settings

    @settings.setter
    def settings(self, settings: SequenceConfig) -> None:
        self._settings = settings
        self._single.settings = settings.localizer

    def reset(self) -> None:
        """Forget the stream: empty local map, no motion history, no status. The next frame
        is localized on its own (the node's reset service calls this)."""
        self._local_map = LocalMap.empty()
        self._previous_gray: NDArray[np.uint8] | None = None
        self._previous_stamp_ns: int | None = None
        self._T_world_cam_history: list[NDArray[np.float64]] = []
        self._previous_T_odom_cam: NDArray[np.float64] | None = None
        self._conflicts = 0
        self.status = SequenceStatus()

    @property
    def local_map(self) -> LocalMap:
        """The current local map (points of the last localized frame)."""
        return self._local_map

    def _predict(self, T_odom_cam: NDArray[np.float64] | None) -> NDArray[np.float64] | None:
        """Motion prediction of this frame's pose: odometry when given, else constant velocity."""
        if not self._T_world_cam_history:
            return None
        T_world_prev = self._T_world_cam_history[-1]
        if T_odom_cam is not None and self._previous_T_odom_cam is not None:
            return T_world_prev @ invert_transform(self._previous_T_odom_cam) @ T_odom_cam
        if len(self._T_world_cam_history) < 2:
            return None
        T_prev2_prev = invert_transform(self._T_world_cam_history[-2]) @ T_world_prev
        return T_world_prev @ T_prev2_prev

    def _solve_sequence(
        self, current: LocalMap, carried: LocalMap, single: PoseEstimate | None,
        intrinsics: Intrinsics,
    ) -> PoseEstimate | None:
        """The sequence estimate from the carried points (and this frame's, for joint fusion)."""
        config = self._settings
        points = carried if config.fusion == "weighted" else current.concat(carried)
        T_world_cam, inliers = self._single.solve(points.points2d_M2, points.scene_points_M3,
                                                  intrinsics)
        num_inliers = int(inliers.sum())
        if T_world_cam is None or num_inliers < config.localizer.min_inliers:
            return None
        if config.fusion == "weighted" and single is not None and poses_agree(
                T_world_cam, single.T_world_cam, config):
            alpha = num_inliers / (num_inliers + single.num_inliers)
            T_world_cam = interpolate_transform(single.T_world_cam, T_world_cam, alpha)
            num_inliers += single.num_inliers
        errors_K = reprojection_errors_px(T_world_cam, intrinsics, current.points2d_M2,
                                          current.scene_points_M3)
        current_inliers = int((errors_K < self._single.inlier_threshold_px(intrinsics)).sum())
        return PoseEstimate(T_world_cam, num_inliers, current_inliers)

    def _smooth(
        self, accepted: PoseEstimate, carried_before: LocalMap, carried: LocalMap,
        intrinsics: Intrinsics, weight: float,
    ) -> PoseEstimate | None:
        """The accepted sequence estimate averaged with the previous pose carried into this
        frame (``weight`` in (0, 1] on the estimate), or ``None`` when there is nothing to
        average with (see step 5 above)."""
        config = self._settings
        if weight >= 1.0 or not self._T_world_cam_history:
            return None
        errors_M = reprojection_errors_px(accepted.T_world_cam, intrinsics, carried.points2d_M2,
                                          carried.scene_points_M3)
        inliers_M = errors_M < self._single.inlier_threshold_px(intrinsics)
        T_previous_current = relative_motion(
            self._single.solve, carried_before.points2d_M2[inliers_M],
            carried.points2d_M2[inliers_M], carried.scene_points_M3[inliers_M], intrinsics,
            config.min_tracked)
        if T_previous_current is None:
            return None
        T_carried = self._T_world_cam_history[-1] @ T_previous_current
        if not poses_agree(T_carried, accepted.T_world_cam, config):
            return None
        T_world_cam = interpolate_transform(T_carried, accepted.T_world_cam, weight)
        return PoseEstimate(T_world_cam, accepted.num_inliers, accepted.current_inliers)

    def _stream_break(self, gray: NDArray[np.uint8], stamp_ns: int | None) -> str:
        """Why the buffer cannot continue into this frame (``""``: it can)."""
        if self._previous_gray is None:
            return ""
        if self._previous_gray.shape != gray.shape:
            return f"image size changed from {self._previous_gray.shape} to {gray.shape}"
        if stamp_ns is not None and self._previous_stamp_ns is not None:
            gap_s = (stamp_ns - self._previous_stamp_ns) * 1e-9
            if not 0.0 <= gap_s <= self._settings.max_gap_s:
                return f"stamp gap of {gap_s:.3f} s (allowed 0 to {self._settings.max_gap_s} s)"
        return ""

    def _track(self, gray: NDArray[np.uint8]) -> tuple[LocalMap, LocalMap]:
        """The local-map points that optical flow carries into ``gray``: at their new pixels,
        and the same points at their pixels in the previous image."""
        if self._previous_gray is None or not len(self._local_map):
            return LocalMap.empty(), LocalMap.empty()
        tracked_M2, ok_M = track_points(self._previous_gray, gray, self._local_map.points2d_M2,
                                        self._settings.flow)
        return self._local_map.select(ok_M, tracked_M2), self._local_map.select(ok_M)

    def localize(
        self, image_rgb: NDArray[np.uint8], intrinsics: Intrinsics, stamp_ns: int | None = None,
        T_odom_cam: NDArray[np.float64] | None = None,
    ) -> LocalizationResult:
        """Pose of the camera that took ``image_rgb``, the next frame of the stream.

        Args:
            image_rgb: (H, W, 3) uint8 RGB image.
            intrinsics: its pinhole camera.
            stamp_ns: capture time (nanoseconds); a gap over ``max_gap_s`` or a step back in
                time resets the buffer. ``None``: not checked.
            T_odom_cam: (4, 4) camera-to-odometry pose of this frame from a drifting but
                smooth odometry (the node's odom TF), used as the motion prediction of the
                gate; ``None``: constant-velocity prediction from the previous estimates.

        Returns:
            The :class:`LocalizationResult`; its correspondences are this frame's patches
            followed by the carried local-map points, with inliers under the returned pose.
            ``timings_ms`` adds ``tracking`` (optical flow) and ``update`` (local map), and
            counts every solve in ``ransac``; ``total`` covers all the work done for the
            frame.

        Raises:
            EncoderError: on a malformed image.
            LocalizationError: when the intrinsics are for another image size, or
                ``T_odom_cam`` is not a (4, 4) matrix.
        """
        if T_odom_cam is not None:
            T_odom_cam = np.asarray(T_odom_cam, dtype=np.float64)
            if T_odom_cam.shape != (4, 4) or not np.isfinite(T_odom_cam).all():
                raise LocalizationError(
                    f"T_odom_cam must be a finite (4, 4) matrix, got shape {T_odom_cam.shape}")
        config = self._settings
        frame = self._single.localize(image_rgb, intrinsics)
        t0 = time.perf_counter()
        frame_index = self._frame_index
        self._frame_index += 1
        current = LocalMap(frame.points2d_N2, frame.scene_points_N3,
                           np.full(frame.num_correspondences, frame_index, dtype=np.int64))
        single = (None if frame.T_world_cam is None else
                  PoseEstimate(frame.T_world_cam, frame.num_inliers, frame.num_inliers))

        gray = flow_image(image_rgb, config.flow)
        reset_reason = self._stream_break(gray, stamp_ns)
        if reset_reason:
            self.reset()
        carried, carried_before = self._track(gray)
        t1 = time.perf_counter()

        sequence = None
        if len(carried) >= config.min_tracked:
            sequence = self._solve_sequence(current, carried, single, intrinsics)
        decision = gate(sequence, single, self._predict(T_odom_cam), self._conflicts, config)
        self._conflicts = decision.conflicts
        # A confirmed single-frame pose that was refined (or recovered) against the keyframes
        # is smoothed with its own weight and not refined again (step 6 above).
        confirmed_refined = decision.accepted is single and (frame.refined or frame.recovered)
        smoothed = None
        if decision.accepted is not None and decision.source is PoseSource.SEQUENCE:
            smoothed = self._smooth(
                decision.accepted, carried_before, carried, intrinsics,
                config.refined_smoothing if confirmed_refined else config.smoothing)
        accepted = smoothed or decision.accepted
        t2 = time.perf_counter()
        # the single-frame pose, taken alone or confirmed, keeps what refinement did with it
        keeps_frame_refinement = decision.source is PoseSource.SINGLE or confirmed_refined
        refined = frame.refined and keeps_frame_refinement
        recovered = frame.recovered and keeps_frame_refinement
        outcome = self._single.status.refinement if keeps_frame_refinement else ""
        if accepted is not None and not keeps_frame_refinement:
            refinement = self._single.refine(
                accepted.T_world_cam, frame.keypoints, intrinsics, frame.points2d_N2,
                frame.scene_points_N3)
            if refinement is not None:
                refined, outcome = refinement.accepted, refinement.describe()
                accepted = replace(accepted, T_world_cam=refinement.T_world_cam)
        t_refined = time.perf_counter()

        reset_reason = reset_reason or decision.reset_reason
        if accepted is None:
            self.reset()
            if not reset_reason and len(carried):
                reset_reason = "frame failed"
        else:  # carry the stream into the next frame
            if decision.source is PoseSource.SINGLE:
                self._T_world_cam_history = []
            base = carried if decision.source is PoseSource.SEQUENCE else LocalMap.empty()
            self._local_map = update_local_map(
                base, current, accepted.T_world_cam, intrinsics,
                self._single.inlier_threshold_px(intrinsics),
                frame_index, config.buffer_length, config.max_local_points)
            self._T_world_cam_history = [*self._T_world_cam_history[-1:], accepted.T_world_cam]
            self._previous_gray = gray
            self._previous_stamp_ns = stamp_ns
            self._previous_T_odom_cam = T_odom_cam
        t3 = time.perf_counter()

        self.status = SequenceStatus(
            source=decision.source, tracked_points=len(carried),
            local_points=len(self._local_map), reset_reason=reset_reason,
            single_success=single is not None, conflicts=self._conflicts,
            smoothed=smoothed is not None, refinement=outcome)
        stage_ms = frame.timings_ms
        refine_ms = stage_ms.get("refine", 0.0) + 1000.0 * (t_refined - t2)
        timings_ms = {"encoder": stage_ms["encoder"], "head": stage_ms["head"],
                      "ransac": stage_ms["ransac"] + 1000.0 * (t2 - t1),
                      **({"refine": refine_ms} if config.localizer.refine else {}),
                      "tracking": 1000.0 * (t1 - t0), "update": 1000.0 * (t3 - t_refined),
                      "total": stage_ms["total"] + 1000.0 * (t3 - t0)}
        points = current.concat(carried)  # the result's: inliers under the returned pose
        T_world_cam = None if accepted is None else accepted.T_world_cam
        inliers_N = (np.zeros(len(points), dtype=bool) if T_world_cam is None else
                     reprojection_errors_px(T_world_cam, intrinsics, points.points2d_M2,
                                            points.scene_points_M3)
                     < self._single.inlier_threshold_px(intrinsics))
        return replace(LocalizationResult.from_inliers(
            T_world_cam, points.points2d_M2, points.scene_points_M3, inliers_N, timings_ms),
            refined=refined, recovered=recovered)
