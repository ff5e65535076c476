"""Single-frame relocalization speed: encoder + head + RANSAC per frame, printed as JSON.

Usage::

    .venv/bin/python bench/localizer_bench.py MAP DATASET [--frames 500:700] [--threads 2]

Reports per-stage mean and median milliseconds over the frames (after warm-up frames that are
not counted) and the rate in Hz of the mean total. Image decoding is not timed.
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
from seqace_ros.pipeline.localization.modes import create_localizer
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = FolderDataset(args.dataset)
    indices = list(parse_frame_range(args.frames, len(dataset)))
    timer = StageTimer(create_localizer(load_map(args.map), LocalizerConfig(top_k=args.top_k),
                                        args.device))
    frames = [dataset[i] for i in indices]
    for frame in frames[: args.warmup]:
        timer.localizer.localize(frame.image_rgb, frame.intrinsics)
    for frame in frames:
        timer.localize(frame.image_rgb, frame.intrinsics)
    timings = timer.timings_ms
    report = {
        "benchmark": "localizer_single_frame", "frames": len(frames), "threads": args.threads,
        "device": args.device, "top_k": args.top_k,
        "cpu": platform.processor() or platform.machine(),
        "mean_ms": {k: float(np.mean(v)) for k, v in timings.items()},
        "median_ms": {k: float(np.median(v)) for k, v in timings.items()},
        "hz": 1000.0 / float(np.mean(timings["total"])),
    }
    print(json_text(report))


if __name__ == "__main__":
    main()
