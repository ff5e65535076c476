"""Relocalization on the dev split: seqace single, seqace sequence and a conventional peer.

All three run in this one process on the same query frames, interleaved frame by frame (each
method keeps its own state), so machine load hits them alike:

- ``single``, ``sequence``: seqace's localizers on ``--map`` (the modes of ``seqace eval``);
- ``peer``: retrieval of the ``top_k_frames`` nearest mapping frames (VLAD over XFeat
  sparse descriptors) + XFeat mutual-nearest-neighbour matching + mapping keypoints lifted to
  3D with depth and the mapping poses + ``poselib.estimate_absolute_pose`` (see
  ``bench/peer``). Its database is built from the mapping frames once and cached.

Each method gets the evaluation report of ``seqace eval`` (DESIGN.md keys, same code) plus
its mean milliseconds per stage. ``map_bytes`` of the peer is its database file. Without
``--map`` a map is made first with ``seqace map --preset cpu`` (minutes).

Usage::

    .venv/bin/python bench/relocalization_bench.py [--map MAP] [--data DIR] \
        [--map-frames 0:500] [--queries 500:700] [--step 1] [--threads 1] \
        [--cache-dir DIR] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import torch
from bench_report import emit_report, platform_info
from interleaved import compare_interleaved
from mapping_bench import DEFAULT_DATA, run_seqace_map
from peer.database import DatabaseConfig, load_or_build_database
from peer.matching import XFeatSparse
from peer.pipeline import PeerConfig, PeerLocalizer

from seqace_ros.core.map_file import load_map
from seqace_ros.datasets.base import PosedFrame, parse_frame_range
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.pipeline.localization.modes import create_localizer, mode_config


class _LastFrame:
    """A frame source that decodes each frame once while several methods read it in turn."""

    def __init__(self, dataset: FolderDataset) -> None:
        self.dataset = dataset
        self._index: int | None = None
        self._frame: PosedFrame | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> PosedFrame:
        if index != self._index or self._frame is None:
            self._index, self._frame = index, self.dataset[index]
        return self._frame

    def __iter__(self) -> Iterator[PosedFrame]:
        return iter(self.dataset)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", type=Path, default=None,
                        help="seqace map of --map-frames (default: map now, --preset cpu)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--map-frames", default="0:500")
    parser.add_argument("--queries", default="500:700")
    parser.add_argument("--step", type=int, default=1, help="use every STEP-th query")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "seqace_bench_cache",
                        help="where the peer's database is cached")
    parser.add_argument("--peer-top-k", type=int, default=PeerConfig.top_k_frames)
    parser.add_argument("--peer-keypoints", type=int, default=PeerConfig.num_keypoints)
    parser.add_argument("--peer-threshold-px", type=float, default=PeerConfig.threshold_px)
    parser.add_argument("--json", type=Path, default=None, help="report file to write")
    args = parser.parse_args()
    if args.step < 1:
        parser.error(f"--step must be >= 1, got {args.step}")
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    dataset = FolderDataset(args.data, depth=True)
    map_indices = parse_frame_range(args.map_frames, len(dataset))
    queries = list(parse_frame_range(args.queries, len(dataset)))[:: args.step]

    map_path = args.map
    if map_path is None:
        map_path = args.cache_dir / f"seqace_cpu_{args.map_frames.replace(':', '-')}.map"
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        print(f"no --map: mapping {args.map_frames} into {map_path} (seqace map --preset cpu)",
              file=sys.stderr, flush=True)
        run_seqace_map(args.data, args.map_frames, map_path, "cpu", args.threads)
    elif not map_path.is_file():
        parser.error(f"--map {map_path}: no such file")

    scene_map = load_map(map_path)
    device = torch.device("cpu")
    extractor = XFeatSparse(device=device)
    database_config = DatabaseConfig(num_keypoints=args.peer_keypoints)
    start = time.perf_counter()
    database, database_path, built = load_or_build_database(
        dataset, map_indices, extractor, database_config, args.cache_dir, progress=True)
    database_s = time.perf_counter() - start
    peer_config = PeerConfig(num_keypoints=args.peer_keypoints, top_k_frames=args.peer_top_k,
                             threshold_px=args.peer_threshold_px)
    localizers = {
        "single": create_localizer(scene_map, mode_config("single"), device),
        "sequence": create_localizer(scene_map, mode_config("sequence"), device),
        "peer": PeerLocalizer(database, extractor, peer_config),
    }
    map_bytes = {"single": map_path.stat().st_size, "sequence": map_path.stat().st_size,
                 "peer": database_path.stat().st_size}
    reports = compare_interleaved(localizers, _LastFrame(dataset), queries, map_bytes,
                                  log_every=20)
    reports["peer"]["settings"] = {
        **asdict(peer_config), "database": asdict(database_config),
        "retrieval": "VLAD (spherical k-means codebook) over XFeat sparse descriptors",
        "matching": "mutual nearest neighbours, cosine similarity",
        "pnp": "poselib.estimate_absolute_pose (LO-RANSAC P3P + bundle adjustment)",
        "database_file": str(database_path),
        "database_seconds": round(database_s, 1),
        "database_built_now": built,
    }
    report = {
        "benchmark": "relocalization",
        "data": str(args.data), "map": str(map_path), "map_frames": args.map_frames,
        "queries": args.queries, "step": args.step, "n_queries": len(queries),
        "threads": args.threads, "device": "cpu",
        **reports,
        "load_average_start": load_start, "load_average_end": os.getloadavg(),
        "platform": platform_info(),
    }
    emit_report(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
