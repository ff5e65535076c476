"""Mapping end to end: posed frames -> feature buffer -> trained head -> :class:`SceneMap`.

With ``config.sequence`` the frames are also tracked (XFeat, keyframes) and the buffer's
salient patches linked to their tracks' keyframes for SeqACE's second loss. What the run did
is a :class:`MappingStats`, stored in the map file's metadata (``SceneMap.mapping_stats``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from seqace_ros.core.device import resolve_device
from seqace_ros.core.encoder import XFeatEncoder
from seqace_ros.core.map_file import SceneMap
from seqace_ros.datasets.base import PosedFrameSource
from seqace_ros.pipeline.mapping.buffer import build_buffer, link_tracks
from seqace_ros.pipeline.mapping.config import MappingConfig
from seqace_ros.pipeline.mapping.keyframes import map_keyframes
from seqace_ros.pipeline.mapping.tracks import XFeatMatcher, build_tracks
from seqace_ros.pipeline.mapping.trainer import StepCallback, train_head


@dataclass(frozen=True)
class SequenceStats:
    """What feature tracking did for the sequence loss (``config.sequence``).

    Attributes:
        keyframes: keyframes of the tracks.
        track_observations: track observations over all frames.
        tracked_patches: buffer patches linked to a keyframe target.
        tracks_seconds: time spent tracking and linking.
    """

    keyframes: int
    track_observations: int
    tracked_patches: int
    tracks_seconds: float


@dataclass(frozen=True)
class MappingStats:
    """What a mapping run did.

    Attributes:
        frames: mapping frames.
        buffer_patches: patches in the training buffer.
        salient_patches: salient patches among them.
        encode_seconds: time spent encoding frames into the buffer.
        train_seconds: time spent training.
        iterations: optimiser steps.
        patches_seen: patches the optimiser saw (steps x batch size).
        final_loss: last smoothed batch loss (reprojection pixels, soft-clamped).
        final_valid_fraction: fraction of valid predictions in the last batch.
        device: torch device type the map was trained on.
        depth_patches: buffer patches with a sensor depth target (0 for RGB mapping).
        stored_keyframes: keyframes stored for pose refinement.
        keyframe_bytes: bytes of their arrays in the map file.
        keyframe_seconds: time spent choosing and building them.
        sequence: feature-track figures; ``None`` without the sequence loss.
    """

    frames: int
    buffer_patches: int
    salient_patches: int
    encode_seconds: float
    train_seconds: float
    iterations: int
    patches_seen: int
    final_loss: float
    final_valid_fraction: float
    device: str
    depth_patches: int = 0
    stored_keyframes: int = 0
    keyframe_bytes: int = 0
    keyframe_seconds: float = 0.0
    sequence: SequenceStats | None = None

    @property
    def tracked_patches(self) -> int:
        """Patches with a keyframe target (0 without the sequence loss)."""
        return 0 if self.sequence is None else self.sequence.tracked_patches

    @property
    def tracks_seconds(self) -> float:
        """Time spent on feature tracks (0 without the sequence loss)."""
        return 0.0 if self.sequence is None else self.sequence.tracks_seconds

    def to_metadata(self, config: MappingConfig) -> dict[str, Any]:
        """The map file's ``mapping`` entry: these figures flat (the track figures only with
        the sequence loss), then the mapping config."""
        figures = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sequence"}
        tracks = {} if self.sequence is None else asdict(self.sequence)
        return {**figures, **tracks, "config": asdict(config)}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> MappingStats:
        """Read back the ``mapping`` entry :meth:`to_metadata` wrote.

        Raises:
            KeyError: a figure is missing.
        """
        figures = {f.name: metadata[f.name] for f in fields(cls) if f.name != "sequence"}
        sequence = (SequenceStats(**{f.name: metadata[f.name] for f in fields(SequenceStats)})
                    if "tracked_patches" in metadata else None)
        return cls(**figures, sequence=sequence)


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's global generators (numpy draws use seeded Generators)."""
    random.seed(seed)
    torch.manual_seed(seed)


def map_scene(
    frames: PosedFrameSource,
    indices: Sequence[int],
    config: MappingConfig,
    device: str | torch.device = "auto",
    progress: bool = True,
    on_step: StepCallback | None = None,
) -> SceneMap:
    """Train a scene head on the posed frames ``indices`` of ``frames``.

    The scene centre is the mean mapping camera position. Deterministic for a given seed on
    a given device (CPU runs repeat bit for bit). With ``config.sequence``, ``indices`` must
    be in temporal order (tracks link consecutive frames). ``on_step`` observes training (see
    :func:`~seqace_ros.pipeline.mapping.trainer.train_head`). The map's ``mapping_stats`` are
    a :class:`MappingStats` (:meth:`MappingStats.from_metadata` reads them back).

    Raises:
        MappingDataError: no frames, or a frame without a pose.
    """
    seed_everything(config.seed)
    torch_device = resolve_device(device)
    start = time.perf_counter()
    encoder = XFeatEncoder(config.encoder_features, config.image_height, torch_device)
    buffer = build_buffer(frames, indices, encoder, config, progress=progress)
    encode_seconds = time.perf_counter() - start
    sequence_stats: SequenceStats | None = None
    if config.sequence:
        tracks_start = time.perf_counter()
        matcher = XFeatMatcher(config.tracks.keypoints_per_frame, torch_device)
        tracks = build_tracks(frames, indices, config.tracks, matcher, progress=progress)
        buffer = link_tracks(buffer, tracks, config.track_link_radius_px)
        sequence_stats = SequenceStats(
            keyframes=len(tracks.keyframe_ids),
            track_observations=len(tracks),
            tracked_patches=buffer.tracked_patches(),
            tracks_seconds=round(time.perf_counter() - tracks_start, 2))
    head_config = replace(config.head, in_channels=encoder.feature_dim)
    scene_centre = torch.from_numpy(buffer.camera_centres_F3.mean(axis=0)).float()
    head, training = train_head(buffer, head_config, scene_centre, config, torch_device,
                                progress, on_step)
    keyframes_start = time.perf_counter()
    T_world_cam_F44 = np.linalg.inv(buffer.T_cam_world_F44.double().numpy())
    keyframes = map_keyframes(frames, indices, T_world_cam_F44, encoder, head, config.keyframes,
                              progress, config.keyframe_depth())
    stats = MappingStats(
        frames=len(indices),
        buffer_patches=len(buffer),
        salient_patches=int(buffer.salient_N.sum()),
        encode_seconds=round(encode_seconds, 2),
        train_seconds=round(training.seconds, 2),
        iterations=training.iterations,
        patches_seen=training.patches_seen,
        final_loss=training.final_loss,
        final_valid_fraction=training.final_valid_fraction,
        device=torch_device.type,
        depth_patches=0 if buffer.depths_N is None else int((buffer.depths_N > 0).sum()),
        stored_keyframes=0 if keyframes is None else keyframes.count,
        keyframe_bytes=0 if keyframes is None else keyframes.nbytes,
        keyframe_seconds=round(time.perf_counter() - keyframes_start, 2),
        sequence=sequence_stats)
    scene_map = SceneMap.from_head(head, encoder.encoder_id, encoder.weight_hash,
                                   config.image_height, stats.to_metadata(config))
    return replace(scene_map, keyframes=keyframes)
