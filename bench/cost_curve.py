"""Accuracy against training cost: recall of maps trained with fewer steps or patches per step.

Reads ``splits_bench.py`` reports of one split, each from maps trained with one setting of
``--iterations`` / ``--batch-size`` (and seeds, as separate reports), and puts every setting's
recall beside its training cost: patches trained (steps x batch size) relative to the preset's,
which is what a training step's time is proportional to (``bench/train_step_bench.py``), and
the training seconds the maps' reports give. Prints the rows as JSON; ``--plot`` draws recall
at 5 cm / 5 deg and 2 cm / 2 deg against relative cost, one panel per kind (RGB, RGB-D), one
line per mode.

Usage::

    .venv/bin/python bench/cost_curve.py REPORT.json [REPORT.json ...] \
        [--plot bench/results/cost/curve.png] [--json bench/results/cost/curve.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from bench_report import emit_report

from seqace_ros.pipeline.mapping.config import preset

KIND_NAMES = {"rgb": "RGB", "rgbd": "RGB-D"}
THRESHOLDS = (("recall_5cm_5deg", "5 cm / 5 deg", "-"), ("recall_2cm_2deg", "2 cm / 2 deg", "--"))


def rows_of(path: Path) -> list[dict[str, Any]]:
    """One row per split, kind and mode of a ``splits_bench.py`` report: its training setting
    (steps, batch size, seed), relative cost, the map's training seconds and the recalls."""
    report = json.loads(path.read_text())
    if report.get("head_width") or report.get("head_blocks") is not None:
        raise ValueError(f"{path}: maps with another head size than the preset's; the cost here "
                         "is steps x patches with the preset's head")
    config = preset(report["preset"])
    steps = report.get("iterations") or config.iterations
    batch = report.get("batch_size") or config.batch_size
    rows = []
    for split, result in report["results"].items():
        for kind in ("rgb", "rgbd"):
            if kind not in result:
                continue
            map_seconds = result[kind]["mapping_seconds"]
            for mode, summary in result[kind].items():
                if (mode == "self_check" or not isinstance(summary, dict)
                        or "recall_5cm_5deg" not in summary):
                    continue
                rows.append({
                    "report": str(path), "split": split, "kind": kind, "mode": mode,
                    "iterations": steps, "batch_size": batch, "seed": report["seed"],
                    "relative_cost": round(steps * batch
                                           / (config.iterations * config.batch_size), 3),
                    "mapping_seconds": map_seconds,
                    **{key: summary[key] for key, _, _ in THRESHOLDS}})
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Recall against relative cost (mean over seeds at equal setting), a panel per kind: a
    line per mode and threshold over the settings with the preset's steps (fewer patches per
    step), crosses for settings with fewer steps."""
    kinds = sorted({row["kind"] for row in rows})
    figure, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4.5), squeeze=False)
    for axis, kind in zip(axes[0], kinds, strict=True):
        for index, mode in enumerate(sorted({row["mode"] for row in rows if row["kind"] == kind})):
            colour = f"C{index}"
            for key, label, style in THRESHOLDS:
                by_setting: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
                for row in rows:
                    if row["kind"] == kind and row["mode"] == mode:
                        by_setting[(row["iterations"], row["batch_size"])].append(row)
                points = {setting: (group[0]["relative_cost"],
                                    sum(r[key] for r in group) / len(group))
                          for setting, group in by_setting.items()}
                full_steps = max(steps for steps, _ in points)
                line = sorted(p for (steps, _), p in points.items() if steps == full_steps)
                axis.plot(*zip(*line, strict=True), style, color=colour, marker="o",
                          label=f"{mode}, {label}")
                fewer = [p for (steps, _), p in points.items() if steps < full_steps]
                if fewer:
                    axis.plot(*zip(*fewer, strict=True), "x", color=colour, markersize=9)
        axis.set_title(f"{KIND_NAMES[kind]} maps: recall against training cost\n"
                       "(lines: fewer patches per step; x: fewer steps)")
        axis.set_xlabel("patches trained relative to the preset (steps x batch size)")
        axis.set_ylabel("recall")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="+", help="splits_bench.py JSON reports")
    parser.add_argument("--plot", type=Path, default=None, help="PNG to draw")
    parser.add_argument("--json", type=Path, default=None, help="report file to write")
    args = parser.parse_args()
    rows = sorted((row for path in args.reports for row in rows_of(path)),
                  key=lambda r: (r["split"], r["kind"], r["mode"], r["relative_cost"],
                                 r["seed"]))
    if args.plot is not None:
        plot(rows, args.plot)
    emit_report({"benchmark": "cost_curve", "rows": rows}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
