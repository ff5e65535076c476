"""Mapping configuration and its named presets (the one place presets are defined)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from seqace_ros.core.encoder import XFeatFeatures
from seqace_ros.core.head import HeadConfig
from seqace_ros.pipeline.mapping.keyframes import KeyframeConfig, SensorDepth
from seqace_ros.pipeline.mapping.tracks import TrackConfig


@dataclass(frozen=True)
class AugmentConfig:
    """Photometric and geometric augmentation of mapping images (ACE recipe).

    Attributes:
        scale_min: smallest network-input scale relative to ``image_height``.
        scale_max: largest scale.
        rotation_deg: in-plane rotation drawn uniformly in [-rotation_deg, rotation_deg].
        brightness: additive brightness offset drawn in [-brightness, brightness] (0..1 range).
        contrast: multiplicative contrast drawn in [1 - contrast, 1 + contrast].
    """

    scale_min: float = 2.0 / 3.0
    scale_max: float = 1.5
    rotation_deg: float = 15.0
    brightness: float = 0.1
    contrast: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.scale_min <= self.scale_max:
            raise ValueError(f"need 0 < scale_min <= scale_max, got {self.scale_min}, "
                             f"{self.scale_max}")
        if self.rotation_deg < 0 or self.brightness < 0 or not 0 <= self.contrast < 1:
            raise ValueError("rotation_deg and brightness must be >= 0 and contrast in [0, 1)")


@dataclass(frozen=True)
class MappingConfig:
    """Everything that decides how a scene head is trained.

    Attributes:
        encoder_features: which XFeat features feed the head.
        image_height: network input height (pixels) before scale augmentation.
        head: head architecture (``in_channels`` is set from the encoder).
        augment: augmentation ranges.
        augmentation_passes: augmented copies of each mapping image in the buffer.
        salient_per_image: salient (top-K after NMS) patches taken first from each image.
        patches_per_image: total patches per augmented image (salient first, then random
            valid ones); ``None`` takes all valid patches.
        max_buffer_patches: cap on the buffer size (patches); lowers the per-image budget
            for large mapping sets (``None``: no cap).
        nms_radius: keypoint non-maximum suppression radius in grid cells.
        iterations: optimiser steps.
        batch_size: patches per step.
        lr_min: one-cycle start and end learning rate.
        lr_max: one-cycle peak learning rate.
        clamp_max_px: reprojection soft clamp at the start of training (pixels).
        clamp_min_px: soft clamp at the end of training (pixels).
        hard_clamp_px: reprojection errors above this count as invalid predictions.
        depth_min_m: predictions closer than this (camera z) are invalid.
        depth_max_m: predictions farther than this are invalid.
        depth_target_m: invalid predictions are pulled to the pixel ray at this depth.
        mixed_precision: autocast while training: fp16 on CUDA, bf16 on CPUs with native
            bf16 matrix units (see ``trainer.autocast_dtype``).
        seed: seeds numpy, torch and Python's random.
        sequence: SeqACE's second loss: build feature tracks over the mapping frames (taken
            in the given order, which must be temporal) and also reproject each tracked
            salient patch's prediction into the keyframe where its track started.
        sequence_loss_weight: weight of that keyframe loss against the per-frame loss.
        track_link_radius_px: a salient patch takes the track of the nearest track
            observation within this distance (original image pixels).
        tracks: feature-track and keyframe settings.
        depth: RGB-D mapping: each patch with valid sensor depth (registered to the colour
            camera) is also supervised by its 3D point (see ``trainer.depth_loss``); the
            frames must carry depth.
        depth_loss_weight: weight of that depth loss against the reprojection loss.
        depth_window_px: half-size of the neighbourhood whose median depth a patch takes.
        depth_max_spread: a patch whose depth neighbourhood spreads (max - min) over more
            than this fraction of its depth lies on a depth edge and gets no depth.
        self_check_every: withhold every k-th mapping frame from training and relocalize
            those frames after training (the map self-check in the report); 0 turns it off.
        keyframes: the keyframes stored in the map for pose refinement (count 0: none).
    """

    encoder_features: XFeatFeatures = "multiscale"
    image_height: int = 480
    head: HeadConfig = field(default_factory=HeadConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    augmentation_passes: int = 1
    salient_per_image: int = 1000
    patches_per_image: int | None = 1500
    max_buffer_patches: int | None = None
    nms_radius: int = 1
    iterations: int = 2000
    batch_size: int = 5120
    lr_min: float = 5e-4
    lr_max: float = 5e-3
    clamp_max_px: float = 50.0
    clamp_min_px: float = 1.0
    hard_clamp_px: float = 1000.0
    depth_min_m: float = 0.1
    depth_max_m: float = 1000.0
    depth_target_m: float = 10.0
    mixed_precision: bool = True
    seed: int = 0
    sequence: bool = False
    sequence_loss_weight: float = 1.0
    track_link_radius_px: float = 8.0
    tracks: TrackConfig = field(default_factory=TrackConfig)
    depth: bool = False
    depth_loss_weight: float = 1.0
    depth_window_px: int = 2
    depth_max_spread: float = 0.05
    self_check_every: int = 10
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)

    def __post_init__(self) -> None:
        if self.image_height < 32 or self.image_height % 32:
            raise ValueError(
                f"image_height must be a positive multiple of 32 (the encoder's stride), got "
                f"{self.image_height}")
        if self.augmentation_passes < 1 or self.iterations < 1 or self.batch_size < 1:
            raise ValueError("augmentation_passes, iterations and batch_size must be >= 1")
        if self.salient_per_image < 0:
            raise ValueError(f"salient_per_image must be >= 0, got {self.salient_per_image}")
        if self.patches_per_image is not None and self.patches_per_image < 1:
            raise ValueError(f"patches_per_image must be >= 1, got {self.patches_per_image}")
        if self.max_buffer_patches is not None and self.max_buffer_patches < 1:
            raise ValueError(f"max_buffer_patches must be >= 1, got {self.max_buffer_patches}")
        if not 0 < self.lr_min <= self.lr_max:
            raise ValueError(f"need 0 < lr_min <= lr_max, got {self.lr_min}, {self.lr_max}")
        if not 0 < self.clamp_min_px <= self.clamp_max_px:
            raise ValueError("need 0 < clamp_min_px <= clamp_max_px")
        if not 0 < self.depth_min_m < self.depth_target_m < self.depth_max_m:
            raise ValueError("need 0 < depth_min_m < depth_target_m < depth_max_m")
        if self.sequence_loss_weight < 0 or self.track_link_radius_px <= 0:
            raise ValueError(
                f"need sequence_loss_weight >= 0 and track_link_radius_px > 0, got "
                f"{self.sequence_loss_weight}, {self.track_link_radius_px}")
        if self.self_check_every < 0 or self.self_check_every == 1:
            raise ValueError(f"self_check_every must be 0 (off) or >= 2, got "
                             f"{self.self_check_every}")
        if self.depth_loss_weight < 0 or self.depth_window_px < 0 or self.depth_max_spread <= 0:
            raise ValueError(
                f"need depth_loss_weight >= 0, depth_window_px >= 0 and depth_max_spread > 0, "
                f"got {self.depth_loss_weight}, {self.depth_window_px}, {self.depth_max_spread}")

    def keyframe_depth(self) -> SensorDepth | None:
        """How keyframes read sensor depth (RGB-D mapping), ``None`` without depth."""
        return SensorDepth(self.depth_window_px, self.depth_max_spread) if self.depth else None


PRESETS: dict[str, MappingConfig] = {
    # ACE's scale: width-512 head, a buffer of up to 8M patches from 8 augmented passes,
    # 25k steps of 5120 (16 epochs of an 8M buffer).
    "gpu": MappingConfig(head=HeadConfig(width=512, num_blocks=1), augmentation_passes=8,
                         patches_per_image=None, max_buffer_patches=8_000_000, iterations=25_000),
    # The most accurate map that fits a CPU mapping budget of minutes: ACE's recipe scaled
    # down to a width-256 head, one augmentation pass and 6000 steps, with bf16 autocast where
    # the CPU multiplies bf16 natively (elsewhere the same steps run in fp32 and take longer).
    # Its accuracy and mapping time are in the README and bench/results.
    "cpu": MappingConfig(head=HeadConfig(width=256, num_blocks=1), augmentation_passes=1,
                         patches_per_image=1500, iterations=6000),
    # scripts/demo.sh: the cpu preset at half its training cost, so that a whole demo (render,
    # map, relocalize) runs in minutes; the cost is halved in patches per step, not in steps,
    # which kept more accuracy at the same time (README, "Mapping time against accuracy").
    "demo": MappingConfig(head=HeadConfig(width=256, num_blocks=1), augmentation_passes=1,
                          patches_per_image=1500, iterations=6000, batch_size=2560),
    # The tests' maps: a narrow head, few patches and steps, and fp32 on every CPU (no bf16
    # autocast); enough to localize held-out frames near a small set of mapping frames.
    "test": MappingConfig(head=HeadConfig(width=128, num_blocks=1), augmentation_passes=1,
                          patches_per_image=1000, iterations=600, batch_size=2048,
                          mixed_precision=False, keyframes=KeyframeConfig(count=8, keypoints=256)),
}


def preset(name: str, **overrides: object) -> MappingConfig:
    """The named preset, with optional field overrides (e.g. ``seed=3``).

    Raises:
        ValueError: for an unknown preset name.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown mapping preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)  # type: ignore[arg-type]
