"""What the ground truth of a 7-Scenes split allows: depth ICP of each query against the map.

The redkitchen poses come from KinectFusion tracking along one trajectory; where it revisits a
place they disagree with themselves. A relocalizer that found the geometrically right pose
would still be scored against them. For each query frame this script takes the mapping frame
whose depth overlaps it most (among the ``--candidates`` nearest by ground-truth pose), aligns
the query's depth to that frame's depth with point-to-plane ICP (projective association,
starting at the ground-truth relative pose), and reports how far the aligned pose lies from
the query's ground truth. The recall of those aligned poses at 5 cm / 5 deg, 2 cm / 2 deg and
1 cm / 1 deg is about the most any method can score against this ground truth (the data
README measured the dev split this way: 100 %, 44 %, 24 %, median 2.9 cm / 0.77 deg).

Depth is used in the depth camera's own frame: the poses are the depth camera's. Queries
whose overlap with every candidate is below ``--min-overlap`` get no aligned pose and count as
"no overlap" (they are left out of the recalls, which say so with ``aligned``).

Prints JSON (per split: recalls, medians, per-50-query blocks, per-query errors) and, with
``--plot``, a figure of the disagreement along the queries. Usage::

    .venv/bin/python bench/gt_consistency.py [--splits dev,A,B] [--json OUT] [--plot OUT.png]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bench_report import emit_report, platform_info
from mapping_bench import DEFAULT_DATA
from numpy.typing import NDArray
from splits_bench import REAL_SPLITS

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.depth import read_depth_m
from seqace_ros.core.geometry import invert_transform, make_transform, pose_error
from seqace_ros.datasets.base import parse_frame_range
from seqace_ros.datasets.folder import read_calibration, read_pose_file

#: (translation cm, rotation deg) thresholds of the recalls.
THRESHOLDS = ((5.0, 5.0), (2.0, 2.0), (1.0, 1.0))


@dataclass(frozen=True)
class DepthFrame:
    """One frame's depth in its camera: points (H', W', 3) metres on a pixel grid (every
    ``step`` pixels, NaN where invalid), their normals (H', W', 3), and the camera-to-world
    ground-truth pose (4, 4)."""

    points_HW3: NDArray[np.float64]
    normals_HW3: NDArray[np.float64]
    T_world_cam: NDArray[np.float64]


def load_frame(data: Path, index: int, K: Intrinsics, step: int) -> DepthFrame:
    """Frame ``index`` of ``data`` back-projected with the depth intrinsics ``K``."""
    depth = read_depth_m(data / f"frame-{index:06d}.depth.png")[::step, ::step].astype(np.float64)
    v, u = np.mgrid[0:depth.shape[0], 0:depth.shape[1]] * step
    depth[(depth <= 0.1) | (depth > 6.0)] = np.nan
    points = K.backproject(np.stack([u.ravel(), v.ravel()], axis=1),
                           depth.ravel()).reshape(*depth.shape, 3)
    d_u = np.zeros_like(points)
    d_v = np.zeros_like(points)
    d_u[:, 1:-1] = points[:, 2:] - points[:, :-2]
    d_v[1:-1] = points[2:] - points[:-2]
    normals = np.cross(d_u, d_v)
    with np.errstate(divide="ignore", invalid="ignore"):  # borders and holes: NaN normals
        normals /= np.linalg.norm(normals, axis=2, keepdims=True)
    return DepthFrame(points, normals, read_pose_file(data / f"frame-{index:06d}.pose.txt"))


def associate(source_N3: NDArray[np.float64], target: DepthFrame, T_target_source: NDArray[
        np.float64], K: Intrinsics, step: int, max_distance_m: float) -> tuple[
        NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Projective data association: source points moved into the target camera, the target
    point and normal at the pixel they project to, pairs closer than ``max_distance_m``.
    Returns (moved source points, target points, target normals), each (M, 3)."""
    moved = source_N3 @ T_target_source[:3, :3].T + T_target_source[:3, 3]
    z = moved[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        col = np.round((K.fx * moved[:, 0] / z + K.cx) / step).astype(np.int64, copy=False)
        row = np.round((K.fy * moved[:, 1] / z + K.cy) / step).astype(np.int64, copy=False)
    height, width = target.points_HW3.shape[:2]
    inside = (z > 0.1) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
    moved, col, row = moved[inside], col[inside], row[inside]
    points, normals = target.points_HW3[row, col], target.normals_HW3[row, col]
    close = np.isfinite(points).all(axis=1) & np.isfinite(normals).all(axis=1)
    close[close] = np.linalg.norm(moved[close] - points[close], axis=1) < max_distance_m
    return moved[close], points[close], normals[close]


def icp(source: DepthFrame, target: DepthFrame, K: Intrinsics, step: int,
        distances_m: tuple[float, ...] = (0.10, 0.05, 0.03, 0.02, 0.02, 0.02, 0.02)) -> tuple[
        NDArray[np.float64], float]:
    """Point-to-plane ICP of ``source`` onto ``target``, from their ground-truth relative
    pose. Returns ``T_target_source`` (4, 4) and the overlap (fraction of the source's valid
    points associated at the last iteration)."""
    valid = np.isfinite(source.points_HW3).all(axis=2)
    source_N3 = source.points_HW3[valid]
    T = invert_transform(target.T_world_cam) @ source.T_world_cam
    overlap = 0.0
    for max_distance in distances_m:
        for _ in range(3):
            moved, points, normals = associate(source_N3, target, T, K, step, max_distance)
            overlap = len(moved) / max(len(source_N3), 1)
            if len(moved) < 100:
                return T, overlap
            residual = np.einsum("ij,ij->i", moved - points, normals)
            J = np.concatenate([np.cross(moved, normals), normals], axis=1)
            delta = np.linalg.lstsq(J, -residual, rcond=None)[0]
            angle = np.linalg.norm(delta[:3])
            axis = delta[:3] / angle if angle > 0 else np.zeros(3)
            Kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]],
                           [-axis[1], axis[0], 0]])
            R = np.eye(3) + np.sin(angle) * Kx + (1 - np.cos(angle)) * Kx @ Kx
            T = make_transform(R, delta[3:]) @ T
    return T, overlap


def best_alignment(query: DepthFrame, data: Path, map_indices: list[int],
                   map_poses: NDArray[np.float64], K: Intrinsics, step: int,
                   candidates: int) -> tuple[int, NDArray[np.float64], float]:
    """(mapping frame, aligned camera-to-world query pose, overlap) for the candidate mapping
    frame (nearest by ground-truth pose: distance + 0.5 m per radian) overlapping most."""
    distance = np.linalg.norm(map_poses[:, :3, 3] - query.T_world_cam[:3, 3], axis=1)
    cos = np.clip(np.einsum("kij,ij->k", map_poses[:, :3, :3], query.T_world_cam[:3, :3])
                  - 1.0, -2.0, 2.0) / 2.0
    ranking = np.argsort(distance + 0.5 * np.arccos(np.clip(cos, -1.0, 1.0)))[:candidates]
    best = (-1, query.T_world_cam, 0.0)
    for k in ranking:
        target = load_frame(data, map_indices[k], K, step)
        T_target_query, overlap = icp(query, target, K, step)
        if overlap > best[2]:
            best = (map_indices[k], target.T_world_cam @ T_target_query, overlap)
    return best


def evaluate_split(name: str, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The split's aligned-pose recalls, medians and per-query errors."""
    K = read_calibration(data / "depth-intrinsics.txt", 640, 480)
    total = len(list(data.glob("frame-*.pose.txt")))
    map_range, query_range = REAL_SPLITS[name]
    map_indices = list(parse_frame_range(map_range, total))
    map_poses = np.stack([read_pose_file(data / f"frame-{i:06d}.pose.txt")
                          for i in map_indices])
    queries = list(parse_frame_range(query_range, total))[:: args.query_step]
    rows = []
    for index in queries:
        query = load_frame(data, index, K, args.step)
        frame, T_aligned, overlap = best_alignment(query, data, map_indices, map_poses, K,
                                                   args.step, args.candidates)
        translation_m, rotation_deg = pose_error(T_aligned, query.T_world_cam)
        rows.append({"query": index, "map_frame": frame, "overlap": round(overlap, 3),
                     "translation_cm": round(100.0 * translation_m, 3),
                     "rotation_deg": round(rotation_deg, 3)})
    aligned = [r for r in rows if r["overlap"] >= args.min_overlap]
    t = np.array([r["translation_cm"] for r in aligned])
    r = np.array([r["rotation_deg"] for r in aligned])
    recalls = {f"recall_{int(tc)}cm_{int(rd)}deg": float(np.mean((t < tc) & (r < rd)))
               for tc, rd in THRESHOLDS}
    blocks = {}
    for start in range(queries[0], queries[-1] + 1, 50):
        block = [row for row in aligned if start <= row["query"] < start + 50]
        if block:
            blocks[f"{start}-{start + 49}"] = {
                "aligned": len(block),
                "recall_5cm_5deg": float(np.mean([b["translation_cm"] < 5 and
                                                  b["rotation_deg"] < 5 for b in block])),
                "median_translation_cm": float(np.median([b["translation_cm"] for b in block]))}
    return {"map_frames": map_range, "query_frames": query_range, "queries": len(rows),
            "aligned": len(aligned), **recalls,
            "median_translation_cm": float(np.median(t)), "median_rotation_deg": float(
                np.median(r)), "blocks": blocks, "per_query": rows}


def plot(report: dict[str, Any], path: Path) -> None:
    """Disagreement (cm) of the aligned pose with the ground truth along each split's queries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = report["splits"]
    figure, axes = plt.subplots(len(splits), 1, figsize=(9, 2.6 * len(splits)), squeeze=False)
    for axis, (name, split) in zip(axes[:, 0], splits.items(), strict=True):
        rows = split["per_query"]
        ok = np.array([row["overlap"] >= report["min_overlap"] for row in rows])
        q = np.array([row["query"] for row in rows])
        t = np.array([row["translation_cm"] for row in rows])
        axis.plot(q[ok], t[ok], ".", ms=3, label="aligned pose - ground truth (cm)")
        axis.plot(q[~ok], np.zeros(int((~ok).sum())), "x", ms=4, color="grey",
                  label="no mapping frame overlaps")
        for limit in (1, 2, 5):
            axis.axhline(limit, color="red", lw=0.5, ls="--")
        axis.set_ylim(0.0, max(6.0, 1.1 * float(t[ok].max(initial=0.0))))
        axis.set_ylabel("cm")
        axis.set_title(f"{name}: map {split['map_frames']}, query {split['query_frames']}; "
                       f"{split['aligned']} of {split['queries']} aligned, within 5 cm / 5 deg: "
                       f"{split['recall_5cm_5deg']:.3f}, 2 cm / 2 deg: "
                       f"{split['recall_2cm_2deg']:.3f}", fontsize=9)
        axis.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("query frame")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--splits", default="dev,A,B")
    parser.add_argument("--step", type=int, default=2, help="use every N-th depth pixel")
    parser.add_argument("--candidates", type=int, default=5,
                        help="mapping frames tried per query (nearest by pose)")
    parser.add_argument("--min-overlap", type=float, default=0.3,
                        help="fraction of the query's depth that must find the mapping frame")
    parser.add_argument("--query-step", type=int, default=1, help="use every N-th query")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--plot", type=Path, help="write the figure here")
    args = parser.parse_args()
    splits = [s for s in args.splits.split(",") if s]
    unknown = set(splits) - set(REAL_SPLITS)
    if unknown:
        raise SystemExit(f"gt_consistency: unknown split(s) {sorted(unknown)}; "
                         f"choose from {sorted(REAL_SPLITS)}")
    report = {"benchmark": "gt_consistency", "data": str(args.data), "step": args.step,
              "candidates": args.candidates, "min_overlap": args.min_overlap,
              "splits": {name: evaluate_split(name, args.data, args) for name in splits},
              "platform": platform_info()}
    if args.plot:
        plot(report, args.plot)
    emit_report(report, args.json)


if __name__ == "__main__":
    main()
