"""Offline mapping from a rosbag: read posed images from the bag, train a map, write its report.

Used by ``seqace bag-map`` and ``mapping_node`` through
:func:`seqace_ros.pipeline.mapping.request.run_request`. Typical use::

    bag = BagConfig(image_topic="/camera/image_raw",
                    poses=PoseSourceConfig(source="tf", map_frame="map"))
    map_bag("run1", bag, preset("cpu"), "maps/kitchen.safetensors")
    # -> maps/kitchen.safetensors, kitchen.report.json, kitchen.trajectory.png, kitchen.loss.png

Every failure (unwritable output, a missing topic, no pose overlapping the images, an
unconnected TF chain, a truncated bag, ...) raises before a map is written or removes what
was written; see :func:`map_bag`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from seqace_ros.datasets.bag import BagConfig, BagDataset
from seqace_ros.pipeline.mapping.config import MappingConfig
from seqace_ros.pipeline.mapping.report import FrameAccounting, check_output_path
from seqace_ros.pipeline.mapping.run import MappingProgress, ProgressCallback, map_with_report


def bag_source_summary(stats: dict[str, Any], config: BagConfig) -> dict[str, Any]:
    """The report's ``source`` entry of a bag: what was read and how it was posed."""
    poses = config.poses
    return {
        "kind": "bag",
        "path": stats["bag"],
        "image_topic": stats["image_topic"],
        "camera_info_topic": (None if config.calibration_file is not None
                              else config.resolved_camera_info_topic()),
        "calibration_file": None if config.calibration_file is None else str(
            config.calibration_file),
        "camera_frame": stats["camera_frame"],
        "pose_source": stats["pose_source"],
        "map_frame": stats["map_frame"],
        "pose_topic": poses.topic,
        "tum_file": None if poses.tum_file is None else str(poses.tum_file),
        "body_frame": poses.body_frame,
        "max_gap_s": stats["max_gap_s"],
        "pose_samples": stats["pose_samples"],
        "min_translation_m": config.selection.min_translation_m,
        "min_rotation_deg": config.selection.min_rotation_deg,
        "max_frames": config.selection.max_frames,
        "first_stamp_ns": stats["first_stamp_ns"],
        "last_stamp_ns": stats["last_stamp_ns"],
        "depth_topic": config.depth_topic,
        "depth_camera_info_topic": (config.resolved_depth_camera_info_topic()
                                    if config.depth_topic else None),
        "T_colour_depth": stats["T_colour_depth"],
        "depth_max_offset_s": config.depth_max_offset_s if config.depth_topic else None,
    }


def bag_frame_accounting(stats: dict[str, Any]) -> FrameAccounting:
    """Images in the bag, used, and skipped per reason, from :attr:`BagDataset.stats`."""
    return FrameAccounting(
        in_source=stats["images_in_bag"],
        used=stats["used"],
        skipped={
            "no_pose_within_max_gap": stats["skipped_no_pose"],
            "below_min_motion": stats["skipped_min_motion"],
            "over_max_frames": stats["skipped_max_frames"],
            "no_depth_within_max_offset": stats["skipped_no_depth"],
        })


def map_bag(
    bag_path: str | Path,
    bag_config: BagConfig,
    mapping_config: MappingConfig,
    out_path: str | Path,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Map the posed images of a bag; write the map to ``out_path`` and its report beside it.

    The output is checked first (before the bag is read). The selected frames keep their
    temporal order. ``bag_config.progress`` switches the tqdm progress bar (stderr) of the
    bag reading pass, ``progress`` those of encoding and training; ``on_progress`` receives
    :class:`MappingProgress` events for every stage (for loggers, e.g. the mapping node).

    Args:
        bag_path: rosbag2 folder (sqlite3 or mcap) or ROS 1 ``.bag`` file.
        bag_config: topics, pose source, frame selection.
        mapping_config: training settings (e.g. ``preset("cpu")``).
        out_path: the map file to write.
        device: torch device (``auto``: CUDA when present).
        progress: tqdm progress bars for encoding and training.
        on_progress: progress observer.

    Returns:
        The map path.

    Raises:
        MappingOutputError: the map cannot be written at ``out_path``.
        BagError: unreadable or truncated bag, a missing topic (the message lists the topics
            in the bag), wrong topic types, missing calibration, a TF chain that never
            connects the map and camera frames, no pose overlapping the images.
        MappingDataError: no frames left to map with.
    """
    start = time.perf_counter()
    target = check_output_path(out_path)
    if on_progress is not None:
        on_progress(MappingProgress("read", 0, 0, f"reading {bag_path}"))
    with BagDataset(bag_path, bag_config) as frames:
        stats = frames.stats
        read_seconds = time.perf_counter() - start
        if on_progress is not None:
            on_progress(MappingProgress(
                "read", 1, 1,
                f"{stats['used']} of {stats['images_in_bag']} images posed and selected "
                f"({stats['skipped_no_pose']} without a pose within {stats['max_gap_s']} s, "
                f"{stats['skipped_min_motion']} below the minimum motion, "
                f"{stats['skipped_max_frames']} over the frame cap, {stats['skipped_no_depth']} "
                f"without depth) in {read_seconds:.1f} s",
            ))
        return map_with_report(
            frames,
            range(len(frames)),
            mapping_config,
            target,
            bag_source_summary(stats, bag_config),
            bag_frame_accounting(stats),
            device=device,
            progress=progress,
            on_progress=on_progress,
            started_at=start,
            read_seconds=read_seconds)
