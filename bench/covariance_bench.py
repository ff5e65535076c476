"""Is the published pose covariance calibrated? The fraction of frames inside its 95 % ellipsoid.

For each split (``bench/splits_bench.py``: ``dev``, ``A``, ``B`` of redkitchen_dev, the
synthetic offset scenes; their cached RGB-D maps in ``--cache-dir/maps``, trained there like
``splits_bench.py`` does when absent) and each mode, the queries are localized with the node's
default settings. For every published pose (a pose with a covariance) the bench computes

- the error in the covariance's parametrization (:func:`pose_error_vector`: camera centre
  along and small rotation about the map axes, ROS order x, y, z, roll, pitch, yaw);
- its normalized squared error ``d^2 = e^T Sigma^-1 e`` under the solver's Gauss-Newton
  covariance alone (``solver``, what the node published before) and under the published one
  (``calibrated``: solver plus the map error :data:`CALIBRATED_MAP_ERROR`);
- the fraction inside the 95 % ellipsoid (``d^2 <= 12.59``, chi-square with 6 degrees of
  freedom), and of the translation and rotation blocks inside theirs (3 degrees, ``<= 7.81``).

``--fit-split`` (default ``B``) also fits the map error again on that split's frames (all
modes pooled, :func:`fit_map_error`) and reports it beside the values in the code. A plot
(``--plot``) shows, per split, the histogram of the calibrated ``d^2`` against the chi-square(6)
density and the CDFs of both ``d^2`` against the chi-square(6) CDF. Prints JSON (with per-frame
``d^2``); ``--json`` also writes it. Usage::

    .venv/bin/python bench/covariance_bench.py [--splits dev,A,B,offset_10cm,offset_50cm] \
        [--modes single,sequence] [--fit-split B] [--cache-dir DIR] [--threads 1] \
        [--json bench/results/covariance.json] [--plot bench/results/covariance.png]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_report import emit_report, platform_info
from numpy.typing import NDArray
from splits_bench import Split, add_cache_arguments, ensure_map, resolve_split

from seqace_ros.core.atomic_io import atomic_write_bytes
from seqace_ros.core.map_file import load_map
from seqace_ros.datasets.base import parse_frame_range
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.pipeline.localization.covariance import (
    CALIBRATED_MAP_ERROR,
    CHI2_3_95,
    CHI2_6_95,
    CovarianceError,
    calibrated_pose_covariance,
    fit_map_error,
    normalized_squared_errors,
    pose_covariance,
    pose_error_vector,
)
from seqace_ros.pipeline.localization.modes import MODE_NAMES, create_localizer, mode_config

#: A published pose at least this far off counts as a gross error (reported, not removed).
GROSS_TRANSLATION_M, GROSS_ROTATION_RAD = 0.10, math.radians(5.0)


@dataclass(frozen=True)
class Frames:
    """The published poses of one split and mode (N of them).

    Attributes:
        n_queries: query frames localized (published or not).
        errors_N6: :func:`pose_error_vector` of each published pose.
        solver_N66: the solver's covariance (:func:`pose_covariance`).
        centre_offsets_N3: camera centre minus the median inlier map point (map frame).
        calibrated_N66: the published covariance (:func:`calibrated_pose_covariance`).
    """

    n_queries: int
    errors_N6: NDArray[np.float64]
    solver_N66: NDArray[np.float64]
    centre_offsets_N3: NDArray[np.float64]
    calibrated_N66: NDArray[np.float64]


def localize(split: Split, map_path: Path, mode: str) -> Frames:
    """Localize the split's queries in order, as the node does (default settings, stamps)."""
    dataset = FolderDataset(split.folder, depth=False)
    queries = list(parse_frame_range(split.query_frames, len(dataset)))
    localizer = create_localizer(load_map(map_path), mode_config(mode), "cpu")
    rows = []
    for index in queries:
        frame = dataset[index]
        if frame.T_world_cam is None:
            raise SystemExit(f"covariance_bench: query {frame.name} has no ground truth")
        result = localizer.localize(frame.image_rgb, frame.intrinsics, frame.stamp_ns)
        if not result.success or result.T_world_cam is None:
            continue
        points2d = result.points2d_N2[result.inliers_N]
        scene = result.scene_points_N3[result.inliers_N]
        try:
            solver = pose_covariance(result.T_world_cam, points2d, scene, frame.intrinsics)
            calibrated = calibrated_pose_covariance(
                result.T_world_cam, points2d, scene, frame.intrinsics, CALIBRATED_MAP_ERROR)
        except CovarianceError:  # the node publishes no pose either
            continue
        rows.append((pose_error_vector(result.T_world_cam, frame.T_world_cam), solver,
                     result.T_world_cam[:3, 3] - np.median(scene, axis=0), calibrated))
    columns = [np.array(column) for column in zip(*rows, strict=True)] if rows else [
        np.zeros((0, 6)), np.zeros((0, 6, 6)), np.zeros((0, 3)), np.zeros((0, 6, 6))]
    return Frames(len(queries), *columns)


def coverage(
    errors_N6: NDArray[np.float64], covariances_N66: NDArray[np.float64], gross_N: NDArray[np.bool_]
) -> dict[str, Any]:
    """Fractions inside the 95 % ellipsoids (6-DoF, also without the gross errors ``gross_N``;
    translation, rotation), median ``d^2`` (chi-square(6): 5.35), and the per-frame 6-DoF
    ``d^2``."""
    d2 = normalized_squared_errors(errors_N6, covariances_N66)
    d2_translation = normalized_squared_errors(errors_N6[:, :3], covariances_N66[:, :3, :3])
    d2_rotation = normalized_squared_errors(errors_N6[:, 3:], covariances_N66[:, 3:, 3:])
    return {"inside_95": float(np.mean(d2 <= CHI2_6_95)),
            "inside_95_not_gross": float(np.mean(d2[~gross_N] <= CHI2_6_95)),
            "inside_95_translation": float(np.mean(d2_translation <= CHI2_3_95)),
            "inside_95_rotation": float(np.mean(d2_rotation <= CHI2_3_95)),
            "median_d2": float(np.median(d2)),
            "d2": [float(f"{v:.4g}") for v in d2]}


def summarize(frames: Frames) -> dict[str, Any]:
    """The report of one split and mode."""
    errors = frames.errors_N6
    translation_m = np.linalg.norm(errors[:, :3], axis=1)
    rotation_rad = np.linalg.norm(errors[:, 3:], axis=1)
    gross = (translation_m >= GROSS_TRANSLATION_M) | (rotation_rad >= GROSS_ROTATION_RAD)

    def median_std(covariances: NDArray[np.float64], block: slice) -> float:
        return float(np.median(np.sqrt(np.trace(covariances[:, block, block], axis1=1,
                                                 axis2=2) / 3)))

    return {
        "n_queries": frames.n_queries, "n_published": len(errors),
        "n_gross": int(np.sum(gross)),
        "median_translation_cm": float(np.median(translation_m) * 100),
        "median_rotation_deg": float(np.degrees(np.median(rotation_rad))),
        "median_std_translation_cm": {
            name: median_std(c, slice(0, 3)) * 100
            for name, c in (("solver", frames.solver_N66), ("calibrated", frames.calibrated_N66))},
        "median_std_rotation_deg": {
            name: math.degrees(median_std(c, slice(3, 6)))
            for name, c in (("solver", frames.solver_N66), ("calibrated", frames.calibrated_N66))},
        "solver": coverage(errors, frames.solver_N66, gross),
        "calibrated": coverage(errors, frames.calibrated_N66, gross),
    }


def chi2_6_pdf(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return x**2 * np.exp(-x / 2) / 16


def chi2_6_cdf(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1 - np.exp(-x / 2) * (1 + x / 2 + x**2 / 8)


def plot(results: dict[str, dict[str, Any]], modes: Sequence[str], path: Path) -> Path:
    """Per split: histogram of the calibrated ``d^2`` vs the chi-square(6) density (top), CDFs
    of the solver's and the calibrated ``d^2`` vs the chi-square(6) CDF (bottom, log x)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(2, len(results), figsize=(4.2 * len(results), 7.5),
                                squeeze=False)
    x = np.linspace(0.01, 40, 400)
    x_log = np.logspace(-1, 5, 400)
    colours = dict(zip(modes, ("tab:blue", "tab:orange", "tab:green"), strict=False))
    for column, (split, result) in enumerate(results.items()):
        top, bottom = axes[0, column], axes[1, column]
        for mode in modes:
            report = result[mode]
            calibrated = np.array(report["calibrated"]["d2"])
            top.hist(np.minimum(calibrated, 40), bins=np.linspace(0, 40, 41), density=True,
                     histtype="step", color=colours[mode],
                     label=f"{mode}: {report['calibrated']['inside_95']:.2f} inside")
            for kind, style in (("solver", "--"), ("calibrated", "-")):
                d2 = np.sort(report[kind]["d2"])
                bottom.step(d2, np.arange(1, len(d2) + 1) / max(len(d2), 1), style,
                            where="post", color=colours[mode], label=f"{mode} {kind}")
        top.plot(x, chi2_6_pdf(x), "k", lw=1, label="chi-square(6)")
        bottom.plot(x_log, chi2_6_cdf(x_log), "k", lw=1, label="chi-square(6)")
        for ax in (top, bottom):
            ax.axvline(CHI2_6_95, color="0.6", lw=0.8)
        top.set_title(f"{split}: calibrated d^2 (last bin >= 40)")
        top.set_xlabel("normalized squared error d^2")
        bottom.set_xscale("log")
        bottom.set_ylim(0, 1)
        bottom.set_xlabel("d^2 (log)")
        bottom.set_ylabel("fraction of published poses")
        bottom.set_title(f"{split}: CDF of d^2")
        top.legend(fontsize=7)
        bottom.legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def table(results: dict[str, dict[str, Any]], modes: Sequence[str]) -> str:
    """Markdown: per split and mode, published poses and the fractions inside."""
    lines = ["| split | mode | published | gross (>= 10 cm or 5 deg) | median error | inside 95 %: "
             "solver | calibrated | calibrated, gross left out | calibrated translation / "
             "rotation | median d^2: solver / calibrated |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for split, result in results.items():
        for mode in modes:
            r = result[mode]
            lines.append(
                f"| {split} | {mode} | {r['n_published']} / {r['n_queries']} | {r['n_gross']} | "
                f"{r['median_translation_cm']:.1f} cm / {r['median_rotation_deg']:.2f} deg | "
                f"{r['solver']['inside_95']:.3f} | {r['calibrated']['inside_95']:.3f} | "
                f"{r['calibrated']['inside_95_not_gross']:.3f} | "
                f"{r['calibrated']['inside_95_translation']:.3f} / "
                f"{r['calibrated']['inside_95_rotation']:.3f} | "
                f"{r['solver']['median_d2']:.0f} / {r['calibrated']['median_d2']:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="dev,A,B,offset_10cm,offset_50cm")
    parser.add_argument("--modes", default=",".join(MODE_NAMES))
    parser.add_argument("--fit-split", default="B",
                        help="split the map error is fitted on again (one of --splits)")
    add_cache_arguments(parser, threads=1)
    parser.add_argument("--plot", type=Path, default=None, help="PNG to write")
    args = parser.parse_args()
    splits = [s for s in args.splits.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    if not set(modes) <= set(MODE_NAMES):
        parser.error(f"--modes from {MODE_NAMES}")
    if args.fit_split not in splits:
        parser.error(f"--fit-split {args.fit_split!r} must be one of --splits {splits}")
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    fit_frames: list[Frames] = []
    for name in splits:
        start = time.perf_counter()
        split = resolve_split(name, args.data, args.cache_dir, args.seed)
        map_path = ensure_map(split, "rgbd", args)
        results[name] = {"map": str(map_path), "map_frames": split.map_frames,
                         "query_frames": split.query_frames}
        for mode in modes:
            frames = localize(split, map_path, mode)
            results[name][mode] = summarize(frames)
            if name == args.fit_split:
                fit_frames.append(frames)
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    fitted = fit_map_error(np.concatenate([f.errors_N6 for f in fit_frames]),
                           np.concatenate([f.solver_N66 for f in fit_frames]),
                           np.concatenate([f.centre_offsets_N3 for f in fit_frames]))
    if args.plot is not None:
        plot(results, modes, args.plot)
    print(table(results, modes), file=sys.stderr)
    emit_report({
        "benchmark": "covariance", "date_utc": datetime.now(timezone.utc).isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "kind": "rgbd", "preset": args.preset, "iterations": args.iterations, "seed": args.seed,
        "threads": args.threads, "chi2_6_95": CHI2_6_95, "chi2_3_95": CHI2_3_95,
        "map_error_in_code": asdict(CALIBRATED_MAP_ERROR),
        "map_error_fitted": {"split": args.fit_split, "modes": modes,
                             "n_frames": sum(len(f.errors_N6) for f in fit_frames),
                             **asdict(fitted)},
        "parametrization": "camera centre along and rotation vector about the map axes: "
                           "x, y, z (m), roll, pitch, yaw (rad); error = ground truth as "
                           "the perturbation of the estimate",
        "results": results, "table": table(results, modes),
        "load_average_start": load_start, "load_average_end": os.getloadavg(),
        "platform": platform_info()}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
