"""Render ``bench/results/*.json`` into one markdown summary (``bench/results/summary.md``).

Reads what is there: ``relocalization.json`` (bench/relocalization_bench.py),
``mapping.json`` (bench/mapping_bench.py), ``node_latency.json`` (bench/node_latency.py),
``ransac_bench.json`` (bench/ransac_bench.py) and ``sequence_bench.json``
(bench/sequence_bench.py); a missing file gives a "not run" line, never a made-up number.

Usage::

    .venv/bin/python bench/make_table.py [--results bench/results] [--out SUMMARY.md] \
        [--command "bash bench/run_all.sh"] [--machine "2-core dev machine, load ~6"]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from seqace_ros.core.atomic_io import atomic_write_text

RECALLS = ("recall_5cm_5deg", "recall_2cm_2deg", "recall_1cm_1deg")
RELOC_LABELS = {"single": "seqace single", "sequence": "seqace sequence",
                "peer": "peer: retrieval + XFeat matching + depth + poselib PnP"}
RANSAC_METHODS = ("seqace", "poselib", "opencv_ap3p", "opencv_sqpnp", "opencv_magsac")


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _num(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _megabytes(n_bytes: int | None) -> str:
    return "n/a" if n_bytes is None else f"{n_bytes / 1e6:.2f} MB"


def relocalization_section(report: dict[str, Any] | None) -> list[str]:
    """Accuracy and rate of seqace's modes and the peer on the same queries."""
    lines = ["## Relocalization (dev split)", ""]
    if report is None:
        return [*lines, "not run (no relocalization.json)", ""]
    lines += [f"Map frames {report['map_frames']}, {report['n_queries']} queries "
              f"({report['queries']}, step {report['step']}), one process, methods interleaved "
              f"frame by frame, {report['threads']} torch thread(s), {report['device']}. "
              f"Load average {report['load_average_start'][0]:.1f} -> "
              f"{report['load_average_end'][0]:.1f}.", "",
              "| method | 5cm/5deg | 2cm/2deg | 1cm/1deg | median error | mean latency | Hz "
              "| map size | failed |",
              "|---|---|---|---|---|---|---|---|---|"]
    for method, label in RELOC_LABELS.items():
        row = report.get(method)
        if row is None:
            continue
        recalls = " | ".join(f"{row[key]:.3f}" for key in RECALLS)
        lines.append(
            f"| {label} | {recalls} | {_num(row['median_translation_cm'], 2, ' cm')} / "
            f"{_num(row['median_rotation_deg'], 2, ' deg')} | "
            f"{_num(row['mean_latency_ms'], 0, ' ms')} | {_num(row['hz'], 1)} | "
            f"{_megabytes(row['map_bytes'])} | {row['n_failed']} |")
    peer = report.get("peer", {}).get("settings")
    if peer is not None:
        lines += ["", f"Peer settings: {peer['num_keypoints']} XFeat keypoints per image, "
                  f"top-{peer['top_k_frames']} frames by {peer['retrieval']} "
                  f"({peer['database']['vocabulary_words']} words), {peer['matching']} "
                  f"(similarity > {peer['min_similarity']}), {peer['pnp']} with "
                  f"{peer['threshold_px']} px threshold; map size = its database "
                  f"(keypoints, fp16 descriptors, 3D points, VLADs)."]
    return [*lines, ""]


def mapping_section(mapping: dict[str, Any] | None, node: dict[str, Any] | None) -> list[str]:
    """Mapping time, map size and peak memory of mapping and of the node."""
    lines = ["## Mapping and memory", "", "| quantity | value |", "|---|---|"]
    if mapping is None:
        lines.append("| mapping | not run (no mapping.json) |")
    else:
        timing = mapping["timing_s"]
        reused = mapping["run"]["peak_rss_mb"] is None
        lines += [
            f"| mapping time ({mapping['frames_used']} frames, {mapping['iterations']} steps, "
            f"{mapping['device']}{', map reused: from its report' if reused else ''}) | "
            f"{timing['total']:.0f} s (encode {timing['encode']:.0f} s, "
            f"train {timing['train']:.0f} s) |",
            f"| map size | {_megabytes(mapping['map_bytes'])} |",
            f"| mapping peak RSS | {_num(mapping['run']['peak_rss_mb'], 0, ' MiB')}"
            f"{' (map reused: not measured)' if reused else ''} |",
        ]
    if node is None:
        lines.append("| relocalization node | not run (no node_latency.json) |")
    else:
        paced, sustained = node["paced"]["latency_ms"], node["sustained"]
        lines += [
            f"| node peak RSS (after {node['paced']['frames']} paced + "
            f"{sustained['frames']} flood frames) | "
            f"{_num(node.get('node_peak_rss_mb'), 0, ' MiB')} |",
            f"| node latency, paced {node['paced']['rate_hz']:g} Hz: p50 / p95 | "
            f"{_num(paced['p50'], 0, ' ms')} / {_num(paced['p95'], 0, ' ms')} |",
            f"| node sustained rate ({sustained['publish_rate_hz']:g} Hz in) | "
            f"{sustained['pose_rate_hz']:.1f} Hz, {sustained['node_frames_dropped']} "
            f"dropped |",
        ]
    return [*lines, ""]


def ransac_section(ransac: dict[str, Any] | None, n: int = 1000) -> list[str]:
    """Median solve time and success of the RANSAC PnP peers at ``n`` correspondences."""
    lines = ["## RANSAC PnP (synthetic, identical correspondences)", ""]
    if ransac is None:
        return [*lines, "not run (no ransac_bench.json)", ""]
    rows = {(r["method"], r["outlier_ratio"]): r for r in ransac["results"] if r["n"] == n}
    ratios = sorted({ratio for _, ratio in rows})
    lines += [f"| N = {n} | " + " | ".join(RANSAC_METHODS) + " |",
              "|---|" + "---|" * len(RANSAC_METHODS)]
    for ratio in ratios:
        cells = []
        for method in RANSAC_METHODS:
            row = rows.get((method, ratio))
            cells.append("n/a" if row is None else
                         f"{row['median_ms']:.2f} ms ({row['success_rate']:.2f})")
        lines.append(f"| {ratio:.0%} outliers: median (success) | " + " | ".join(cells) + " |")
    return [*lines, "", f"{ransac['config']['trials']} trials per cell, "
            f"{ransac['config']['noise_px']} px noise, {ransac['config']['threshold_px']} px "
            "threshold.", ""]


def sequence_section(sequence: dict[str, Any] | None) -> list[str]:
    """Sequence versus single mode on the scenes of bench/sequence_bench.py."""
    if sequence is None:
        return []
    lines = ["## Sequence vs single (bench/sequence_bench.py)", "",
             "| scene | mode | 5cm/5deg | 2cm/2deg | median error | Hz |",
             "|---|---|---|---|---|---|"]
    for scene in ("synthetic", "redkitchen"):
        for mode in ("single", "sequence"):
            row = sequence.get(scene, {}).get(mode)
            if row is not None:
                lines.append(f"| {scene} | {mode} | {row['recall_5cm_5deg']:.3f} | "
                             f"{row['recall_2cm_2deg']:.3f} | "
                             f"{_num(row['median_translation_cm'], 2, ' cm')} | "
                             f"{_num(row['hz'], 1)} |")
    return [*lines, ""]


def render(results: Path, command: str, machine: str) -> str:
    """The summary markdown of the JSON files in ``results``."""
    lines = ["# Benchmark summary", "", f"Command: `{command}`  ", f"Machine: {machine}", ""]
    lines += relocalization_section(_load(results, "relocalization"))
    lines += mapping_section(_load(results, "mapping"), _load(results, "node_latency"))
    lines += ransac_section(_load(results, "ransac_bench"))
    lines += sequence_section(_load(results, "sequence_bench"))
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--out", type=Path, default=None, help="default: RESULTS/summary.md")
    parser.add_argument("--command", default="bash bench/run_all.sh")
    parser.add_argument("--machine", default="not stated")
    args = parser.parse_args()
    text = render(args.results, args.command, args.machine)
    atomic_write_text(args.out or args.results / "summary.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
