"""Where a map's scene coordinates go wrong: mapping frames against queries, depth against view.

For the salient patches relocalization regresses (the node's defaults), the head's predicted
scene point is compared with the point the frame's registered sensor depth and ground-truth
pose give (patches without valid depth, or on a depth edge, are left out). Per frame: the
median 3D error; its part along the ray from the nearest mapping camera to the true point (a
depth error of the mapping views: the reprojection loss cannot see it, only other views can)
and the part across that ray; the median reprojection error in the frame's own ground-truth
camera (pixels of the frame) and the fraction of patches within the RANSAC inlier threshold.
A map that is right where it was trained and wrong elsewhere shows small errors on its own
mapping frames and large ones on queries; the along / across split says whether the mapping
views left the depth open (along) or the head does not carry over to the query's features
(across). Reports the medians over the frames of each group, and every frame; ``--plot``
draws each frame's errors against its distance to the nearest mapping camera.

Usage (a map of one of ``splits_bench``'s redkitchen splits, e.g. from its cache)::

    .venv/bin/python bench/scene_coordinate_error.py MAP --split A [--query-step 5] \
        [--mapping-step 10] [--threads 1] [--json bench/results/generalization/X.json] \
        [--plot X.png]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_report import emit_report, platform_info
from mapping_bench import DEFAULT_DATA
from splits_bench import REAL_SPLITS

from seqace_ros.core.depth import depths_at
from seqace_ros.core.geometry import invert_transform, transform_points
from seqace_ros.core.map_file import load_map
from seqace_ros.datasets.base import PosedFrameSource, parse_frame_range
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.pipeline.localization.single import Localizer, LocalizerConfig
from seqace_ros.pipeline.mapping.keyframes import lift_keypoints

#: Per-frame figures, in the order the report lists them.
FIGURES = ("error_3d_m", "along_mapping_ray_m", "across_mapping_ray_m", "reprojection_px",
           "within_threshold", "nearest_mapping_camera_m")


def frame_errors(localizer: Localizer, dataset: PosedFrameSource, index: int,
                 mapping_centres_M3: np.ndarray) -> dict[str, float]:
    """The :data:`FIGURES` of frame ``index`` (medians over its patches with valid depth).

    ``mapping_centres_M3``: camera centres (metres, world frame) of the map's mapping frames.
    """
    frame = dataset[index]
    if frame.T_world_cam is None or frame.depth is None:
        raise ValueError(f"frame {frame.name} needs a ground-truth pose and depth")
    encoded = localizer.encode(frame.image_rgb)
    predicted_K3 = localizer.regress(encoded)
    pixels_K2 = encoded.points2d_K2
    depth_K, valid_K = depths_at(pixels_K2, frame.depth.registered_to(frame.intrinsics))
    true_K3 = lift_keypoints(frame.T_world_cam, frame.intrinsics, pixels_K2, depth_K)
    projected_K2, in_front_K = frame.intrinsics.project(
        transform_points(invert_transform(frame.T_world_cam), predicted_K3))
    # A point behind the camera is as far from its pixel as can be.
    reprojection_K = np.where(
        in_front_K, np.linalg.norm(np.nan_to_num(projected_K2) - pixels_K2, axis=1), np.inf)
    t = frame.T_world_cam[:3, 3]
    distances_M = np.linalg.norm(mapping_centres_M3 - t, axis=1)
    nearest_3 = mapping_centres_M3[np.argmin(distances_M)]
    error_V3 = (predicted_K3 - true_K3)[valid_K]
    direction_V3 = true_K3[valid_K] - nearest_3
    direction_V3 /= np.linalg.norm(direction_V3, axis=1, keepdims=True)
    along_V = np.sum(error_V3 * direction_V3, axis=1)
    across_V = np.linalg.norm(error_V3 - along_V[:, None] * direction_V3, axis=1)
    threshold_px = localizer.inlier_threshold_px(frame.intrinsics)
    return {"frame": index,
            "error_3d_m": float(np.median(np.linalg.norm(error_V3, axis=1))),
            "along_mapping_ray_m": float(np.median(np.abs(along_V))),
            "signed_along_mapping_ray_m": float(np.median(along_V)),
            "across_mapping_ray_m": float(np.median(across_V)),
            "reprojection_px": float(np.median(reprojection_K)),
            "within_threshold": float(np.mean(reprojection_K < threshold_px)),
            "nearest_mapping_camera_m": float(distances_M.min()),
            "patches_with_depth": int(valid_K.sum())}


def group_errors(localizer: Localizer, dataset: PosedFrameSource, frames: Sequence[int],
                 mapping_centres_M3: np.ndarray) -> dict[str, Any]:
    """Medians of the :data:`FIGURES` over ``frames``, and each frame's figures."""
    rows = [frame_errors(localizer, dataset, i, mapping_centres_M3) for i in frames]
    return {"frames": len(rows),
            "median": {name: float(np.median([row[name] for row in rows])) for name in FIGURES},
            "per_frame": rows}


def plot(report: dict[str, Any], path: Path) -> None:
    """Per frame, against the distance (m) to the nearest mapping camera: the error along and
    across the mapping rays (cm), and the fraction of patches within the inlier threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (errors, inliers) = plt.subplots(1, 2, figsize=(11, 4))
    for group, marker in (("mapping", "o"), ("query", ".")):
        rows = report[group]["per_frame"]
        distance = [row["nearest_mapping_camera_m"] for row in rows]
        errors.plot(distance, [100 * row["along_mapping_ray_m"] for row in rows], marker,
                    color="tab:orange", ms=4, label=f"{group} frames: along the ray")
        errors.plot(distance, [100 * row["across_mapping_ray_m"] for row in rows], marker,
                    color="tab:blue", ms=4, label=f"{group} frames: across the ray")
        inliers.plot(distance, [row["within_threshold"] for row in rows], marker,
                     color="tab:green", ms=4, label=f"{group} frames")
    errors.set(xlabel="distance to the nearest mapping camera (m)",
               ylabel="median scene-point error (cm)", yscale="log")
    inliers.set(xlabel="distance to the nearest mapping camera (m)",
                ylabel="patches within the inlier threshold", ylim=(0, 1))
    errors.legend(fontsize=7)
    inliers.legend(fontsize=7)
    figure.suptitle(f"{Path(report['map']).name}, split {report['split']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("map", type=Path, help="map file of the split's mapping frames")
    parser.add_argument("--split", required=True, choices=sorted(REAL_SPLITS))
    parser.add_argument("--query-step", type=int, default=5, help="use every N-th query")
    parser.add_argument("--mapping-step", type=int, default=10,
                        help="use every N-th mapping frame (from the 5th)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, default=None, help="report file to write")
    parser.add_argument("--plot", type=Path, default=None, help="PNG plot to write")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = FolderDataset(args.data, depth=True)
    map_frames, query_frames = (list(parse_frame_range(text, len(dataset)))
                                for text in REAL_SPLITS[args.split])
    localizer = Localizer(load_map(args.map), LocalizerConfig(), device="cpu")
    centres_M3 = np.stack([dataset.pose(i)[:3, 3] for i in map_frames])
    groups = {"mapping": group_errors(localizer, dataset, map_frames[5 :: args.mapping_step],
                                      centres_M3),
              "query": group_errors(localizer, dataset, query_frames[:: args.query_step],
                                    centres_M3)}
    for name, group in groups.items():
        figures = ", ".join(f"{key} {value:.4g}" for key, value in group["median"].items())
        print(f"{args.split} {name} ({group['frames']} frames): {figures}", file=sys.stderr)
    report = {"benchmark": "scene_coordinate_error", "map": str(args.map), "split": args.split,
              "query_step": args.query_step, "mapping_step": args.mapping_step,
              "threads": args.threads, **groups, "platform": platform_info()}
    emit_report(report, args.json)
    if args.plot is not None:
        plot(report, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
