"""Relocalization speed: encoder + head + RANSAC (+ tracking) (+ refinement) per frame, as JSON.

Usage::

    .venv/bin/python bench/localizer_bench.py MAP DATASET [--frames 500:700] [--threads 2] \
        [--mode single|sequence] [--refine]

Reports per-stage mean and median milliseconds over the frames (after warm-up frames that are
not counted) and the rate in Hz of the mean total, for the single-frame mode or, with ``--mode
sequence``, the sequence mode (frames fed in order). Image decoding is not timed.
``--refine`` also runs the same frames with refinement against the map's keyframes,
interleaved frame by frame with the plain localizer so that machine load hits both alike, and
reports the ratio of their rates.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch
from interleaved import StageTimer

from seqace_ros.core.json_io import json_text
from seqace_ros.core.map_file import load_map
from seqace_ros.datasets.base import parse_frame_range
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.pipeline.localization.modes import MODE_NAMES, create_localizer, mode_config
from seqace_ros.pipeline.localization.single import LocalizerConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("map", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--frames", default="500:700")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--top-k", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mode", choices=MODE_NAMES, default="single")
    parser.add_argument("--refine", action="store_true",
                        help="also time refinement against the map's keyframes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = FolderDataset(args.dataset)
    indices = list(parse_frame_range(args.frames, len(dataset)))
    scene_map = load_map(args.map)
    mode = mode_config(args.mode)
    configs = {args.mode: mode.with_frame(LocalizerConfig(top_k=args.top_k))}
    if args.refine:
        configs[f"{args.mode}+refine"] = mode.with_frame(
            LocalizerConfig(top_k=args.top_k, refine=True))
    timers = {name: StageTimer(create_localizer(scene_map, config, args.device))
              for name, config in configs.items()}
    frames = [dataset[i] for i in indices]
    for timer in timers.values():
        for frame in frames[: args.warmup]:
            timer.localizer.localize(frame.image_rgb, frame.intrinsics)
        timer.localizer.reset()  # the timed run starts a fresh stream at the first frame
    order = list(timers.values())
    for frame in frames:  # the second run on an image finds warm caches: alternate who goes first
        for timer in order:
            timer.localize(frame.image_rgb, frame.intrinsics)
        order.reverse()
    methods = {name: {"mean_ms": {k: float(np.mean(v)) for k, v in timer.timings_ms.items()},
                      "median_ms": {k: float(np.median(v)) for k, v in timer.timings_ms.items()},
                      "hz": 1000.0 / float(np.mean(timer.timings_ms["total"]))}
               for name, timer in timers.items()}
    report = {
        "benchmark": "localizer_single_frame" if args.mode == "single" else "localizer_sequence",
        "mode": args.mode, "frames": len(frames), "threads": args.threads,
        "device": args.device, "top_k": args.top_k,
        "cpu": platform.processor() or platform.machine(),
        **methods[args.mode],
        "methods": methods,
    }
    if args.refine:
        report["refine_rate_ratio"] = (methods[f"{args.mode}+refine"]["hz"]
                                       / methods[args.mode]["hz"])
    print(json_text(report))


if __name__ == "__main__":
    main()
