"""Benchmark of the synthetic scene renderer: prints one JSON object.

Measures, per image size, the wall-clock and CPU time to render one frame (ray casting,
texturing, shading: ``render_view``) over frames of the scene's own trajectory, the time to
build a scene
(layout, textures, trajectory), and the end-to-end time per frame of ``render_scene``
(rendering, noise, PNG encoding, files) for a short scene.

    .venv/bin/python bench/synthetic_render_bench.py [--preset default] [--frames 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from seqace_ros.core.json_io import json_text
from seqace_ros.datasets.synthetic import SyntheticScene, preset, render_scene
from seqace_ros.datasets.synthetic.render import render_view

SIZES = ((160, 120), (320, 240), (640, 480))


def _frame_times_ms(source: SyntheticScene, n_frames: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU milliseconds of ``render_view`` per frame."""
    indices = np.linspace(0, len(source) - 1, n_frames).astype(int)
    render_view(source.scene, source.intrinsics, source.T_world_cam_N44[0])  # warm caches
    wall, cpu = [], []
    for index in indices:
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        render_view(source.scene, source.intrinsics, source.T_world_cam_N44[index])
        wall.append(1000.0 * (time.perf_counter() - start_wall))
        cpu.append(1000.0 * (time.process_time() - start_cpu))
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--frames", type=int, default=20, help="frames timed per size")
    args = parser.parse_args()

    report: dict[str, object] = {
        "preset": args.preset,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
    }
    start = time.perf_counter()
    SyntheticScene(preset(args.preset, seed=1))
    report["scene_build_s"] = round(time.perf_counter() - start, 3)

    per_size = {}
    for width, height in SIZES:
        source = SyntheticScene(preset(args.preset, width=width, height=height))
        wall, cpu = _frame_times_ms(source, args.frames)
        per_size[f"{width}x{height}"] = {
            "wall_median_ms": round(float(np.median(wall)), 1),
            "wall_p90_ms": round(float(np.percentile(wall, 90)), 1),
            "cpu_median_ms": round(float(np.median(cpu)), 1),
        }
    report["render_view"] = per_size

    config = preset("small", n_mapping_frames=args.frames, n_query_frames=0)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        render_scene(config, Path(tmp) / "scene")
        elapsed = time.perf_counter() - start
    report["render_scene_320x240_ms_per_frame_incl_build_and_png"] = round(
        1000.0 * elapsed / args.frames, 1)
    print(json_text(report))


if __name__ == "__main__":
    main()
