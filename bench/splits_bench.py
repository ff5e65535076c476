"""Hard benchmarks: maps that must hold away from the mapping views, RGB and RGB-D, both modes.

Each split maps some frames and queries others, and reports seqace (RGB and RGB-D maps,
single and sequence mode) beside the conventional peer (``bench/peer``: retrieval + XFeat
matching + depth + PnP) on the same queries:

- ``dev``: redkitchen_dev, map 0-499, query 500-699 (easy: the queries revisit mapped views);
- ``A``: map 0-349, query 350-699 (the queries leave the mapped stretch);
- ``B``: map 0-199 and 400-699, query 200-399 (a stretch the map never saw closely);
- ``offset_10cm``, ``offset_25cm``, ``offset_50cm``: synthetic rooms (exact ground truth)
  whose query pass steps that far back from the mapping pass and turns 20 degrees;
- ``reverse``: a synthetic room walked backwards, looking 45 degrees away from the mapping
  views.

Maps are trained in-process with the same request as ``seqace map [--depth]`` and cached
in ``--cache-dir`` (named by split, kind, preset, steps, batch size, augmentation passes,
head width and blocks, sequence loss, and seed), synthetic scenes are rendered there once.
Each map's self-check comes from its report.
``--refine`` adds each mode with refinement against the map's keyframes (``single+refine``,
``sequence+refine``).
Prints JSON and a markdown table; ``--json`` also writes the JSON. Usage::

    .venv/bin/python bench/splits_bench.py [--splits dev,A,B,offset_10cm,...] \
        [--kinds rgb,rgbd] [--modes single,sequence] [--refine] [--no-peer] [--preset cpu] \
        [--iterations N] [--batch-size N] [--augmentation-passes N] [--head-width N] \
        [--head-blocks N] [--sequence-loss] [--seed 0] [--threads 2] \
        [--query-step 1] [--num-keypoints 2000] [--ransac-hypotheses 64] [--cache-dir DIR] \
        [--json bench/results/splits.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_report import emit_report, platform_info
from mapping_bench import DEFAULT_DATA
from peer.database import DatabaseConfig, load_or_build_database
from peer.matching import XFeatSparse
from peer.pipeline import PeerConfig, PeerLocalizer

from seqace_ros.core.map_file import SceneMap, load_map
from seqace_ros.datasets.base import parse_frame_range
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.datasets.synthetic import preset as synthetic_preset
from seqace_ros.datasets.synthetic import render_scene
from seqace_ros.pipeline.evaluation import FrameLocalizer, evaluate_frames, summarize
from seqace_ros.pipeline.localization.modes import MODE_NAMES, create_localizer, mode_config
from seqace_ros.pipeline.localization.refinement import RefinementConfig
from seqace_ros.pipeline.localization.single import Localizer, LocalizerConfig
from seqace_ros.pipeline.mapping.config import preset
from seqace_ros.pipeline.mapping.keyframes import map_keyframes
from seqace_ros.pipeline.mapping.report import ReportPaths
from seqace_ros.pipeline.mapping.request import MappingRequest, run_request
from seqace_ros.pipeline.mapping.self_check import split_for_self_check

REAL_SPLITS: dict[str, tuple[str, str]] = {
    "dev": ("0:500", "500:700"),
    "A": ("0:350", "350:700"),
    "B": ("0:200,400:700", "200:400"),
}
SYNTHETIC_SPLITS = ("offset_10cm", "offset_25cm", "offset_50cm", "reverse")
KINDS = ("rgb", "rgbd")
REFINED = "+refine"


@dataclass(frozen=True)
class Split:
    """A dataset folder with its mapping and query frame ranges."""

    name: str
    folder: Path
    map_frames: str
    query_frames: str


def resolve_split(name: str, data: Path, cache_dir: Path, seed: int) -> Split:
    """The split ``name``: a redkitchen range pair, or a synthetic scene (rendered once)."""
    if name in REAL_SPLITS:
        return Split(name, data, *REAL_SPLITS[name])
    if name not in SYNTHETIC_SPLITS:
        raise SystemExit(f"splits_bench: unknown split {name!r}; choose from "
                         f"{sorted(REAL_SPLITS) + list(SYNTHETIC_SPLITS)}")
    config = synthetic_preset(name, seed=seed)
    folder = render_scene(config, cache_dir / "synthetic" / f"{name}-s{seed}")  # idempotent
    n_map = config.n_mapping_frames
    return Split(name, folder, f"0:{n_map}", f"{n_map}:{config.n_frames}")


def ensure_map(split: Split, kind: str, args: argparse.Namespace) -> Path:
    """The cached map of ``split`` (``kind`` rgb or rgbd), trained now when absent."""
    steps = f"-i{args.iterations}" if args.iterations else ""
    batch = f"-b{args.batch_size}" if args.batch_size else ""
    passes = f"-a{args.augmentation_passes}" if args.augmentation_passes else ""
    width = f"-w{args.head_width}" if args.head_width else ""
    blocks = f"-hb{args.head_blocks}" if args.head_blocks is not None else ""
    tracks = "-sl" if args.sequence_loss else ""
    path = (args.cache_dir / "maps" / f"{split.name}-{kind}-{args.preset}{steps}{batch}{passes}"
            f"{width}{blocks}{tracks}-s{args.seed}.map")
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"mapping {split.name} ({kind}, frames {split.map_frames}) into {path}",
          file=sys.stderr, flush=True)
    request = MappingRequest.from_values({
        "dataset": split.folder, "frames": split.map_frames, "depth": kind == "rgbd",
        "map_path": path, "preset": args.preset, "iterations": args.iterations,
        "batch_size": args.batch_size, "augmentation_passes": args.augmentation_passes,
        "head_width": args.head_width, "head_blocks": args.head_blocks,
        "sequence": args.sequence_loss, "seed": args.seed, "device": "cpu"})
    run_request(request, progress=False)
    return path


def methods(args: argparse.Namespace) -> list[str]:
    """The seqace methods run: each mode, and each mode with refinement (``--refine``)."""
    return [*args.modes, *([m + REFINED for m in args.modes] if args.refine else [])]


def with_keyframes(scene_map: SceneMap, dataset: FolderDataset, split: Split, kind: str,
                   args: argparse.Namespace) -> SceneMap:
    """``scene_map`` (of ``kind`` rgb or rgbd), with keyframes built now (as mapping builds
    them, on its training frames, with the preset's keyframe settings and, for rgbd, sensor
    depth) when ``--refine`` asks for them and a map cached before keyframes existed has none,
    or ``--rebuild-keyframes`` replaces those a cached map has."""
    if not args.refine or (scene_map.keyframes is not None and not args.rebuild_keyframes):
        return scene_map
    config = replace(preset(args.preset), depth=kind == "rgbd")
    if args.keyframe_descriptor_bytes is not None:
        config = replace(config, keyframes=replace(
            config.keyframes, descriptor_bytes=args.keyframe_descriptor_bytes))
    training, _ = split_for_self_check(parse_frame_range(split.map_frames, len(dataset)),
                                       config.self_check_every)
    localizer = Localizer(scene_map, device="cpu")
    poses = np.stack([dataset[i].T_world_cam for i in training])
    keyframes = map_keyframes(dataset, training, poses, localizer.encoder, localizer.head,
                              config.keyframes, sensor_depth=config.keyframe_depth())
    return replace(scene_map, keyframes=keyframes)


#: Options that override a RefinementConfig field: flag, type, field, help (default: the
#: field's default).
REFINEMENT_OPTIONS: tuple[tuple[str, type, str, str], ...] = (
    ("--refine-candidates", int, "candidates",
     "pose-nearest keyframes that sensor-depth keyframes are chosen from by shared view"),
    ("--refine-view-angle", float, "max_view_angle_deg",
     "largest angle (deg) between a keyframe's and the query's rays to a point that still "
     "counts as shared"),
    ("--keyframe-max-depth", float, "max_point_depth_m",
     "leave keyframe points deeper than this (m) in their keyframe's camera out of "
     "refinement's matches (0: no limit)"),
    ("--keyframe-max-disagreement", float, "max_point_disagreement_m",
     "match sensor-depth keyframe points only up to the depth where neighbouring keyframes "
     "disagree by this median (m; 0: off)"),
    ("--keyframe-min-near-inliers", int, "min_near_inliers",
     "match the keyframe points beyond the depth limit too where those within it give fewer "
     "inliers than this (0: never)"),
    ("--vote-keypoints", int, "vote_keypoints",
     "strongest keypoints of each keyframe that recovery's votes search"),
    ("--refine-polish-sigmas", float, "polish_sigmas",
     "solve the refined pose again where this many robust standard deviations of the keyframe "
     "matches' residuals is tighter than the threshold (0: never)"),
    ("--refine-polish-keep-sigmas", float, "polish_keep_sigmas",
     "keep the keyframe matches within this many robust standard deviations in that solve"),
)


def refinement_config(args: argparse.Namespace) -> RefinementConfig:
    """The refinement settings: the defaults, with the :data:`REFINEMENT_OPTIONS` given."""
    given = {field: getattr(args, field) for _, _, field, _ in REFINEMENT_OPTIONS}
    return RefinementConfig(**{name: value for name, value in given.items() if value is not None})


def evaluate(localizer: FrameLocalizer, dataset: FolderDataset, queries: Sequence[int],
             mode: str, map_bytes: int) -> dict[str, Any]:
    """The evaluation report (DESIGN.md keys) of ``localizer`` on the queries."""
    evaluations = evaluate_frames(localizer, dataset, queries, progress=False)
    return summarize(evaluations, mode, map_bytes).to_dict()


def run_split(split: Split, args: argparse.Namespace) -> dict[str, Any]:
    """Every kind and mode on one split, and the peer."""
    dataset = FolderDataset(split.folder,
                            depth=not args.no_peer or (args.refine and "rgbd" in args.kinds))
    queries = list(parse_frame_range(split.query_frames, len(dataset)))[:: args.query_step]
    result: dict[str, Any] = {"folder": str(split.folder), "map_frames": split.map_frames,
                              "query_frames": split.query_frames, "n_queries": len(queries)}
    for kind in args.kinds:
        start = time.perf_counter()
        map_path = ensure_map(split, kind, args)
        report = json.loads(ReportPaths.for_map(map_path).json.read_text())
        scene_map = with_keyframes(load_map(map_path), dataset, split, kind, args)
        keyframe_bytes = 0 if scene_map.keyframes is None else scene_map.keyframes.nbytes
        result[kind] = {
            "map": str(map_path), "map_bytes": map_path.stat().st_size,
            "keyframes": 0 if scene_map.keyframes is None else scene_map.keyframes.count,
            "keyframe_bytes": keyframe_bytes,
            "mapping_seconds": report["timing_s"]["total"],
            "self_check": report["self_check"],
        }
        for method in methods(args):
            mode, refine = method.removesuffix(REFINED), method.endswith(REFINED)
            config = mode_config(mode).with_frame(LocalizerConfig(
                top_k=args.num_keypoints, max_hypotheses=args.ransac_hypotheses,
                seed=args.ransac_seed, refine=refine,
                refinement=refinement_config(args)))
            result[kind][method] = evaluate(create_localizer(scene_map, config, "cpu"), dataset,
                                            queries, mode, map_path.stat().st_size)
        print(f"{split.name} {kind}: {time.perf_counter() - start:.0f} s", file=sys.stderr,
              flush=True)
    if not args.no_peer:
        extractor = XFeatSparse(device="cpu")
        map_indices = parse_frame_range(split.map_frames, len(dataset))
        database, database_path, _ = load_or_build_database(
            dataset, map_indices, extractor, DatabaseConfig(), args.cache_dir / "peer")
        result["peer"] = evaluate(PeerLocalizer(database, extractor, PeerConfig()), dataset,
                                  queries, "peer", database_path.stat().st_size)
    return result


def table(results: dict[str, Any], kinds: Sequence[str], methods: Sequence[str]) -> str:
    """Markdown: one row per split and method (recall 5 cm, 2 cm, median errors)."""
    lines = ["| split | method | 5cm/5deg | 2cm/2deg | median | self-check 5cm |",
             "|---|---|---|---|---|---|"]
    for split, result in results.items():
        rows = [(f"{kind} {method}", result[kind][method], result[kind]["self_check"])
                for kind in kinds for method in methods if method in result[kind]]
        if "peer" in result:
            rows.append(("peer", result["peer"], None))
        for method, report, check in rows:
            check_text = "" if not check else f"{check['recall_5cm_5deg']:.3f}"
            lines.append(
                f"| {split} | {method} | {report['recall_5cm_5deg']:.3f} | "
                f"{report['recall_2cm_2deg']:.3f} | {report['median_translation_cm']:.2f} cm / "
                f"{report['median_rotation_deg']:.2f} deg | {check_text} |")
    return "\n".join(lines)


def add_cache_arguments(parser: argparse.ArgumentParser, threads: int) -> None:
    """The options that name the cached maps and scenes (preset, steps, batch size,
    augmentation passes, head width and blocks, sequence loss, seed, data, cache folder),
    torch threads (default ``threads``) and ``--json``."""
    parser.add_argument("--preset", default="cpu", help="mapping preset")
    parser.add_argument("--iterations", type=int, default=None,
                        help="training steps (default: the preset's)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="patches per training step (default: the preset's)")
    parser.add_argument("--augmentation-passes", type=int, default=None,
                        help="augmented copies of each mapping image (default: the preset's)")
    parser.add_argument("--head-width", type=int, default=None,
                        help="width of the scene head's layers (default: the preset's)")
    parser.add_argument("--head-blocks", type=int, default=None,
                        help="residual blocks after the head's first (default: the preset's)")
    parser.add_argument("--sequence-loss", action="store_true",
                        help="map with SeqACE's sequence loss (seqace map --sequence)")
    parser.add_argument("--seed", type=int, default=0, help="mapping and scene seed")
    parser.add_argument("--threads", type=int, default=threads, help="torch CPU threads")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "seqace_bench_cache",
                        help="maps, synthetic scenes and peer databases")
    parser.add_argument("--json", type=Path, default=None, help="report file to write")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="dev,A,B," + ",".join(SYNTHETIC_SPLITS))
    parser.add_argument("--kinds", default="rgb,rgbd", help="rgb, rgbd or both")
    parser.add_argument("--modes", default=",".join(MODE_NAMES))
    parser.add_argument("--no-peer", action="store_true", help="leave the peer out")
    parser.add_argument("--refine", action="store_true",
                        help="also run each mode with refinement against the map's keyframes")
    for flag, kind, field, text in REFINEMENT_OPTIONS:
        parser.add_argument(flag, type=kind, default=None, dest=field,
                            help=f"{text} (default: RefinementConfig's)")
    parser.add_argument("--rebuild-keyframes", action="store_true",
                        help="with --refine: build keyframes as mapping builds them now, also "
                             "for cached maps that have keyframes")
    parser.add_argument("--keyframe-descriptor-bytes", type=int, default=None,
                        help="keyframes built by the benchmark store their descriptors in this "
                             "many bytes (0: float16; default: the preset's)")
    parser.add_argument("--query-step", type=int, default=1, help="use every N-th query")
    parser.add_argument("--num-keypoints", type=int, default=LocalizerConfig.top_k,
                        help="salient patches regressed per query image")
    parser.add_argument("--ransac-hypotheses", type=int, default=LocalizerConfig.max_hypotheses,
                        help="RANSAC hypotheses per query")
    parser.add_argument("--ransac-seed", type=int, default=LocalizerConfig.seed,
                        help="RANSAC seed of every solve (results vary with it by a few queries)")
    add_cache_arguments(parser, threads=2)
    args = parser.parse_args()
    args.kinds = [k for k in args.kinds.split(",") if k]
    args.modes = [m for m in args.modes.split(",") if m]
    if not set(args.kinds) <= set(KINDS) or not set(args.modes) <= set(MODE_NAMES):
        parser.error(f"--kinds from {KINDS}, --modes from {MODE_NAMES}")
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    results = {name: run_split(resolve_split(name, args.data, args.cache_dir, args.seed), args)
               for name in args.splits.split(",")}
    print(table(results, args.kinds, methods(args)), file=sys.stderr)
    emit_report({"benchmark": "splits", "preset": args.preset, "iterations": args.iterations,
                 "batch_size": args.batch_size, "augmentation_passes": args.augmentation_passes,
                 "head_width": args.head_width, "head_blocks": args.head_blocks,
                 "sequence_loss": args.sequence_loss, "seed": args.seed,
                 "threads": args.threads, "query_step": args.query_step,
                 "num_keypoints": args.num_keypoints, "ransac_hypotheses": args.ransac_hypotheses,
                 "ransac_seed": args.ransac_seed, "refine": args.refine,
                 "keyframe_descriptor_bytes": args.keyframe_descriptor_bytes,
                 "refinement": asdict(refinement_config(args)),
                 "results": results, "table": table(results, args.kinds, methods(args)),
                 "load_average_start": load_start, "load_average_end": os.getloadavg(),
                 "platform": platform_info()}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
