"""How far apart neighbouring keyframes put the same keypoint, by depth, and the depth limit
each bound on that disagreement gives (``RefinementConfig.max_point_disagreement_m``).

For each map (with sensor-depth keyframes): the median distance between the two 3D points of
mutual nearest-neighbour matches between each keyframe and its two nearest keyframes, per
0.25 m depth bin (:func:`seqace_ros.core.keyframe_agreement.measure_depth_agreement`), and the
depth limit at each ``--bounds`` value (0: no limit). Prints JSON; ``--json`` also writes it.
Usage::

    .venv/bin/python bench/keyframe_agreement.py NAME=MAP [NAME=MAP ...] \
        [--bounds 0.01,0.015,0.02,0.025] [--json bench/results/refine/keyframe_agreement.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_report import emit_report, platform_info

from seqace_ros.core.keyframe_agreement import measure_depth_agreement
from seqace_ros.core.map_file import load_map


def map_agreement(path: Path, bounds: list[float]) -> dict[str, Any]:
    """The agreement table and the depth limit per bound of the map at ``path``."""
    keyframes = load_map(path).keyframes
    if keyframes is None or not keyframes.points_from_depth:
        raise SystemExit(f"keyframe_agreement: {path} has no sensor-depth keyframes")
    start = time.perf_counter()
    agreement = measure_depth_agreement(keyframes)
    seconds = time.perf_counter() - start
    measured = np.isfinite(agreement.median_m)
    return {
        "map": str(path), "keyframes": keyframes.count, "seconds": round(seconds, 2),
        "bins": [{"depth_m": [float(agreement.bin_edges_m[b]), float(agreement.bin_edges_m[b + 1])],
                  "median_cm": round(100 * float(agreement.median_m[b]), 3),
                  "pairs": int(agreement.pairs[b])} for b in np.flatnonzero(measured)],
        "depth_limit_m": {f"{bound:g}": agreement.depth_limit(bound) for bound in bounds},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("maps", nargs="+", help="NAME=PATH of a map with sensor-depth keyframes")
    parser.add_argument("--bounds", default="0.01,0.015,0.02,0.025",
                        help="disagreement bounds (metres) to give the depth limit of")
    parser.add_argument("--json", type=Path, default=None, help="report file to write")
    args = parser.parse_args()
    bounds = [float(value) for value in args.bounds.split(",")]
    named = dict(item.split("=", 1) for item in args.maps)
    emit_report({"platform": platform_info(),
                 "maps": {name: map_agreement(Path(path), bounds)
                          for name, path in named.items()}}, args.json)


if __name__ == "__main__":
    main()
