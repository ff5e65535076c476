"""Mapping end to end: posed frames -> feature buffer -> trained head -> :class:`SceneMap`.

With ``config.sequence`` the frames are also tracked (XFeat, keyframes) and the buffer's
salient patches linked to their tracks' keyframes for SeqACE's second loss.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import asdict, replace

import torch

from seqace_ros.core.device import resolve_device
from seqace_ros.core.encoder import XFeatEncoder
from seqace_ros.core.map_file import SceneMap
from seqace_ros.datasets.base import PosedFrameSource
from seqace_ros.pipeline.mapping.buffer import build_buffer, link_tracks
from seqace_ros.pipeline.mapping.config import MappingConfig
from seqace_ros.pipeline.mapping.tracks import XFeatMatcher, build_tracks
from seqace_ros.pipeline.mapping.trainer import StepCallback, train_head


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
    :func:`~seqace_ros.pipeline.mapping.trainer.train_head`).

    Raises:
        MappingDataError: no frames, or a frame without a pose.
    """
    seed_everything(config.seed)
    torch_device = resolve_device(device)
    start = time.perf_counter()
    encoder = XFeatEncoder(config.encoder_features, config.image_height, torch_device)
    buffer = build_buffer(frames, indices, encoder, config, progress=progress)
    encode_seconds = time.perf_counter() - start
    sequence_stats: dict[str, object] = {}
    if config.sequence:
        tracks_start = time.perf_counter()
        matcher = XFeatMatcher(config.tracks.keypoints_per_frame, torch_device)
        tracks = build_tracks(frames, indices, config.tracks, matcher, progress=progress)
        buffer = link_tracks(buffer, tracks, config.track_link_radius_px)
        sequence_stats = {
            "keyframes": len(tracks.keyframe_ids),
            "track_observations": len(tracks),
            "tracked_patches": buffer.tracked_patches(),
            "tracks_seconds": round(time.perf_counter() - tracks_start, 2),
        }
    head_config = replace(config.head, in_channels=encoder.feature_dim)
    scene_centre = torch.from_numpy(buffer.camera_centres_F3.mean(axis=0)).float()
    head, stats = train_head(buffer, head_config, scene_centre, config, torch_device, progress,
                             on_step)
    mapping_stats = {
        "frames": len(indices),
        "buffer_patches": len(buffer),
        "salient_patches": int(buffer.salient_N.sum()),
        "encode_seconds": round(encode_seconds, 2),
        "train_seconds": round(stats.seconds, 2),
        "iterations": stats.iterations,
        "patches_seen": stats.patches_seen,
        "final_loss": stats.final_loss,
        "final_valid_fraction": stats.final_valid_fraction,
        "device": torch_device.type,
        **sequence_stats,
        "config": asdict(config),
    }
    return SceneMap.from_head(head, encoder.encoder_id, encoder.weight_hash, config.image_height,
                              mapping_stats)
