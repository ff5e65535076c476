"""Sequence mode versus single-frame mode: accuracy and rate on scenes, printed as JSON.

Usage::

    .venv/bin/python bench/sequence_bench.py --json OUT.json \
        [--redkitchen-map MAP] [--redkitchen DIR] [--redkitchen-frames 500:700] \
        [--synthetic-preset repetitive_small] [--synthetic-map-frames 0:300:2] \
        [--mapping-preset test] [--mapping-iterations N] [--threads 2]

Scenes:

- ``synthetic``: a synthetic room rendered with one small repeated pattern on every surface
  (``--synthetic-preset``, default ``repetitive_small``), mapped here on its mapping pass
  (``--synthetic-map-frames``, with ``--mapping-preset``) and queried along its query pass,
  frame after frame;
- ``redkitchen``: the real frames ``--redkitchen-frames`` against ``--redkitchen-map``
  (skipped when no map is given).

Each scene gets the evaluation report (DESIGN.md keys) of both modes on the same map and the
same frames, plus ``stage_ms`` (mean milliseconds per stage: encoder, head, ransac, and for
the sequence mode tracking and update), and ``gain``: sequence minus single for the recalls,
single minus sequence for the median errors (positive = sequence better), and the rate ratio
``hz_ratio``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from bench_report import emit_report, platform_info
from interleaved import compare_interleaved

from seqace_ros.core.json_io import json_text
from seqace_ros.core.map_file import SceneMap, load_map, save_map
from seqace_ros.datasets.base import PosedFrameSource
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.datasets.synthetic import SyntheticScene
from seqace_ros.datasets.synthetic import preset as synthetic_preset
from seqace_ros.pipeline.localization.modes import MODE_NAMES, create_localizer, mode_config
from seqace_ros.pipeline.mapping import map_scene
from seqace_ros.pipeline.mapping import preset as mapping_preset


def _parse_range(text: str, n: int) -> list[int]:
    """``START:END[:STEP]`` (END exclusive, blanks: the ends) -> indices below ``n``."""
    parts = [int(p) if p else None for p in text.split(":")]
    if not 2 <= len(parts) <= 3:
        raise SystemExit(f"frame range must be START:END[:STEP], got {text!r}")
    return list(range(n))[slice(*parts)]


def _map_bytes(scene_map: SceneMap) -> int:
    with tempfile.TemporaryDirectory() as folder:
        return save_map(scene_map, Path(folder) / "scene.map").stat().st_size


def compare_modes(
    scene_map: SceneMap, frames: PosedFrameSource, indices: Sequence[int], map_bytes: int,
) -> dict[str, Any]:
    """Both modes' reports on the same frames (run interleaved), and the sequence mode's gain."""
    localizers = {mode: create_localizer(scene_map, mode_config(mode), torch.device("cpu"))
                  for mode in MODE_NAMES}
    reports = compare_interleaved(localizers, frames, indices,
                                  dict.fromkeys(MODE_NAMES, map_bytes))
    single, sequence = reports["single"], reports["sequence"]
    gain = {key: sequence[key] - single[key]
            for key in ("recall_5cm_5deg", "recall_2cm_2deg", "recall_1cm_1deg")}
    for key in ("median_translation_cm", "median_rotation_deg"):
        gain[key] = single[key] - sequence[key]
    return {**reports, "gain": gain, "hz_ratio": sequence["hz"] / single["hz"]}


def _synthetic(args: argparse.Namespace) -> dict[str, Any]:
    """Render, map and query the synthetic scene."""
    config = synthetic_preset(args.synthetic_preset, seed=args.synthetic_seed)
    scene = SyntheticScene(config)
    map_indices = _parse_range(args.synthetic_map_frames, config.n_mapping_frames)
    query_indices = [config.n_mapping_frames + i
                     for i in _parse_range(args.synthetic_query_frames, config.n_query_frames)]
    start = time.perf_counter()
    if args.synthetic_map is not None:
        synthetic_map = load_map(args.synthetic_map)
        mapping: dict[str, Any] = {"map": str(args.synthetic_map)}
    else:
        overrides = ({} if args.mapping_iterations is None
                     else {"iterations": args.mapping_iterations})
        mapping_config = mapping_preset(args.mapping_preset, **overrides)
        synthetic_map = map_scene(scene, map_indices, mapping_config, device="cpu",
                                  progress=False)
        if args.save_synthetic_map is not None:
            save_map(synthetic_map, args.save_synthetic_map)
        mapping = {"mapping_preset": args.mapping_preset,
                   "mapping_iterations": mapping_config.iterations,
                   "map_frames": len(map_indices),
                   "mapping_seconds": round(time.perf_counter() - start, 1)}
    return {
        "preset": args.synthetic_preset, "seed": args.synthetic_seed, **mapping,
        **compare_modes(synthetic_map, scene, query_indices, _map_bytes(synthetic_map)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="report to write")
    parser.add_argument("--redkitchen-map", type=Path, default=None)
    parser.add_argument("--redkitchen", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared/data/redkitchen_dev")
    parser.add_argument("--redkitchen-frames", default="500:700")
    parser.add_argument("--synthetic-preset", default="repetitive_small",
                        help="synthetic scene preset, or 'none' to skip the synthetic scene")
    parser.add_argument("--synthetic-seed", type=int, default=0)
    parser.add_argument("--synthetic-map-frames", default="::2",
                        help="mapping-pass frames to map (START:END[:STEP])")
    parser.add_argument("--synthetic-query-frames", default=":",
                        help="query-pass frames, in order (START:END[:STEP])")
    parser.add_argument("--mapping-preset", default="test")
    parser.add_argument("--mapping-iterations", type=int, default=None,
                        help="training steps of the synthetic map (default: the preset's)")
    parser.add_argument("--synthetic-map", type=Path, default=None,
                        help="reuse this map of the synthetic scene (saved with "
                        "--save-synthetic-map) instead of mapping it")
    parser.add_argument("--save-synthetic-map", type=Path, default=None,
                        help="also keep the synthetic scene's map here")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"benchmark": "sequence_vs_single", "threads": args.threads,
                              "platform": platform_info()}

    if args.synthetic_preset != "none":
        report["synthetic"] = _synthetic(args)
        print(json_text(report["synthetic"]), flush=True)

    if args.redkitchen_map is not None:
        dataset = FolderDataset(args.redkitchen)
        indices = _parse_range(args.redkitchen_frames, len(dataset))
        report["redkitchen"] = {
            "map": str(args.redkitchen_map), "frames": args.redkitchen_frames,
            **compare_modes(load_map(args.redkitchen_map), dataset, indices,
                            args.redkitchen_map.stat().st_size),
        }
    emit_report(report, args.json)


if __name__ == "__main__":
    main()
