"""The mapping report: the files written beside a map, and writing them with it.

For a map ``DIR/NAME.EXT``, :func:`write_map_and_report` writes:

- ``DIR/NAME.EXT``: the map (see :mod:`seqace_ros.core.map_file`);
- ``DIR/NAME.report.json``: the source, frames used and skipped (with the reason), the
  trajectory summary, the map self-check (``self_check``, see
  :mod:`~seqace_ros.pipeline.mapping.self_check`; ``null`` when off), the training loss
  curve, the time taken per stage;
- ``DIR/NAME.trajectory.png``: the mapping camera positions in the map frame (three
  orthographic views, coloured by time, with viewing directions, the self-check's withheld
  frames marked passed or failed);
- ``DIR/NAME.loss.png``: training loss per step (and the soft clamp and valid fraction).

All four are written together: each to a temporary beside it first, checked, then renamed into
place, the map last; if any of them fails, none is left behind and an existing map and report
are unchanged.
The mapping run that trains the map is :func:`seqace_ros.pipeline.mapping.run.map_with_report`.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from seqace_ros.core.atomic_io import FileWriteError
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.json_io import json_text
from seqace_ros.core.keyframes import Keyframes, same_keyframes
from seqace_ros.core.map_file import (
    MapFileError,
    SceneMap,
    keyframe_point_source,
    load_map,
    save_map,
)
from seqace_ros.core.staged_files import StagedFiles
from seqace_ros.core.stop import check_stop
from seqace_ros.pipeline.localization.refinement import KeyframeMatcher, RefinementConfig
from seqace_ros.pipeline.mapping.config import MappingConfig
from seqace_ros.pipeline.mapping.mapper import MappingStats
from seqace_ros.pipeline.mapping.self_check import SelfCheckRun, passes
from seqace_ros.pipeline.mapping.trainer import soft_clamp_px

REPORT_VERSION = 1


class MappingOutputError(SeqaceError, OSError):
    """The map (or its report) cannot be written where asked."""


@dataclass(frozen=True)
class ReportPaths:
    """Where the report files of a map go (next to the map, named after its stem)."""

    json: Path
    trajectory_png: Path
    loss_png: Path

    @classmethod
    def for_map(cls, map_path: str | Path) -> ReportPaths:
        """``NAME.report.json``, ``NAME.trajectory.png``, ``NAME.loss.png`` beside ``map_path``."""
        path = Path(map_path)
        return cls(
            json=path.with_suffix(".report.json"),
            trajectory_png=path.with_suffix(".trajectory.png"),
            loss_png=path.with_suffix(".loss.png"))

    def all(self) -> tuple[Path, Path, Path]:
        """The three paths."""
        return self.json, self.trajectory_png, self.loss_png


@dataclass(frozen=True)
class FrameAccounting:
    """Which frames of the source went into the map, and why the others did not.

    Attributes:
        in_source: images (frames) the source holds.
        used: frames the map was trained on.
        skipped: reason -> number of frames skipped for it (e.g. ``no_pose_within_max_gap``,
            ``below_min_motion``, ``over_max_frames``, ``outside_frame_range``).

    Raises:
        ValueError: negative counts, or counts that do not add up to ``in_source``.
    """

    in_source: int
    used: int
    skipped: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        counts = [self.in_source, self.used, *self.skipped.values()]
        if any(count < 0 for count in counts):
            raise ValueError(f"frame counts must be >= 0, got {self}")
        if self.used + sum(self.skipped.values()) != self.in_source:
            raise ValueError(
                f"used ({self.used}) + skipped ({dict(self.skipped)}) must add up to the "
                f"{self.in_source} frames in the source")


@dataclass
class LossCurve:
    """Training loss per recorded step: a ``map_scene`` ``on_step`` observer.

    Attributes:
        steps: recorded optimiser steps (0-based).
        losses: batch loss at each (reprojection pixels, soft-clamped).
        valid_fractions: fraction of valid predictions at each.
    """

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    valid_fractions: list[float] = field(default_factory=list)

    def __call__(self, step: int, loss: float, valid_fraction: float) -> None:
        self.steps.append(step)
        self.losses.append(loss)
        self.valid_fractions.append(valid_fraction)

    def as_dict(self) -> dict[str, list[float] | list[int]]:
        """The curve as JSON-ready lists."""
        return {
            "step": list(self.steps),
            "loss": [round(v, 5) for v in self.losses],
            "valid_fraction": [round(v, 4) for v in self.valid_fractions],
        }


def check_output_path(path: str | Path) -> Path:
    """Fail early, before any work, when the map cannot be written at ``path``.

    Checks that ``path`` is not a folder and that a file can really be created in its folder
    (a probe file, removed at once: permission bits alone do not tell, e.g. for root or on a
    read-only mount).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        MappingOutputError: ``path`` is a folder, its folder is missing or not a folder, or a
            file cannot be created there.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise MappingOutputError(f"map path {str(target)!r} is a folder, expected a file path")
    for report_path in ReportPaths.for_map(target).all():
        if report_path.is_dir():
            raise MappingOutputError(f"report path {str(report_path)!r} is a folder")
    if not folder.exists():
        raise MappingOutputError(f"output folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise MappingOutputError(f"output folder {str(folder)!r} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=folder)
    except OSError as error:
        raise MappingOutputError(
            f"cannot write in output folder {str(folder)!r}: {error.strerror or error}"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return target


def _trajectory_summary(T_world_cam_N44: NDArray[np.float64]) -> dict[str, Any]:
    centres_N3 = T_world_cam_N44[:, :3, 3]
    steps_m = np.linalg.norm(np.diff(centres_N3, axis=0), axis=1)
    return {
        "frames": len(centres_N3),
        "length_m": round(float(steps_m.sum()), 4),
        "min_m": [round(float(v), 4) for v in centres_N3.min(axis=0)],
        "max_m": [round(float(v), 4) for v in centres_N3.max(axis=0)],
    }


def keyframe_depth_limit_m(keyframes: Keyframes | None) -> float | None:
    """Depth (metres) up to which refinement with its default settings will use the
    sensor-depth keyframe points (:meth:`~seqace_ros.pipeline.localization.refinement.
    KeyframeMatcher.depth_limit`; 0: all of them); ``None`` without keyframes or when their
    points are the head's (no depth limit applies to those)."""
    if keyframes is None or not keyframes.points_from_depth:
        return None
    return KeyframeMatcher(keyframes).depth_limit(RefinementConfig())


def render_trajectory_png(
    T_world_cam_N44: NDArray[np.float64], title: str, self_check: SelfCheckRun | None = None,
) -> bytes:
    """PNG of the camera centres of (N, 4, 4) camera-to-map poses, in temporal order.

    Three orthographic views of the map frame (x-y, x-z, y-z, metres); the path is coloured
    by frame order, start and end are marked, and every few frames a short line shows where
    the camera looks (its optical +z axis). With a self-check, the withheld frames are
    marked: a green cross where the map relocalized them within 5 cm / 5 deg, red otherwise.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    centres_N3 = T_world_cam_N44[:, :3, 3]
    view_dirs_N3 = T_world_cam_N44[:, :3, 2]
    n = len(centres_N3)
    extent = float(np.ptp(centres_N3, axis=0).max()) if n > 1 else 1.0
    arrow_m = 0.08 * max(extent, 1e-3)
    every = max(1, n // 25)
    figure, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    order = np.arange(n)
    for ax, (i, j) in zip(axes, ((0, 1), (0, 2), (1, 2)), strict=True):
        ax.plot(centres_N3[:, i], centres_N3[:, j], "-", color="0.75", lw=0.8, zorder=1)
        points = ax.scatter(centres_N3[:, i], centres_N3[:, j], c=order, cmap="viridis", s=8,
                            zorder=2)
        for k in range(0, n, every):
            tip = centres_N3[k] + arrow_m * view_dirs_N3[k]
            ax.plot([centres_N3[k, i], tip[i]], [centres_N3[k, j], tip[j]], "-",
                    color="tab:orange", lw=0.8, zorder=3)
        ax.scatter(*centres_N3[0, [i, j]], marker="o", s=60, facecolors="none",
                   edgecolors="green", lw=2, zorder=4, label="first frame")
        ax.scatter(*centres_N3[-1, [i, j]], marker="s", s=60, facecolors="none",
                   edgecolors="red", lw=2, zorder=4, label="last frame")
        if self_check is not None:
            _mark_self_check(ax, self_check, i, j)
        ax.set_xlabel(f"{'xyz'[i]} (m)")
        ax.set_ylabel(f"{'xyz'[j]} (m)")
        ax.set_title(f"map frame, {'xyz'[i]}-{'xyz'[j]} view")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(color="0.92")
    axes[0].legend(loc="best", fontsize=8)
    figure.colorbar(points, ax=axes, label="frame (temporal order)", shrink=0.8)
    heading = f"{title}: {n} mapping frames (orange: viewing direction)"
    if self_check is not None:
        heading += f"\n{self_check.summary.summary()}"
    figure.suptitle(heading, y=1.02 if self_check is not None else 0.98)
    return _png_bytes(figure)


def _mark_self_check(ax: Any, self_check: SelfCheckRun, i: int, j: int) -> None:
    """Withheld frames on one view: green x passed 5 cm / 5 deg, red x failed."""
    centres_N3 = np.array([e.T_world_cam_gt[:3, 3] for e in self_check.evaluations])
    passed_N = np.array([passes(e) for e in self_check.evaluations])
    for mask, colour, label in ((passed_N, "green", "self-check: within 5 cm / 5 deg"),
                                (~passed_N, "red", "self-check: failed")):
        if mask.any():
            ax.scatter(centres_N3[mask, i], centres_N3[mask, j], marker="x", s=40, color=colour,
                       lw=1.5, zorder=5, label=label)


def render_loss_png(curve: LossCurve, config: MappingConfig, title: str) -> bytes:
    """PNG of the training loss per recorded step (log scale), with the soft clamp schedule
    (the loss's upper bound per valid patch, pixels) and the valid-prediction fraction."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps = np.asarray(curve.steps)
    losses = np.asarray(curve.losses)
    figure, ax_loss = plt.subplots(figsize=(9, 5))
    ax_loss.plot(steps, losses, ".-", color="tab:blue", lw=1, ms=3, label="batch loss")
    schedule_steps = np.linspace(0, config.iterations, 200)
    ax_loss.plot(schedule_steps,
                 [soft_clamp_px(s / config.iterations, config) for s in schedule_steps],
                 "--", color="0.5", lw=1, label="soft clamp (px)")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("training step")
    ax_loss.set_ylabel("loss (reprojection px, soft-clamped; log scale)")
    ax_loss.set_xlim(0, config.iterations)
    ax_loss.grid(color="0.92", which="both")
    ax_valid = ax_loss.twinx()
    ax_valid.plot(steps, curve.valid_fractions, "-", color="tab:green", lw=1,
                  label="valid predictions")
    ax_valid.set_ylim(0, 1.02)
    ax_valid.set_ylabel("fraction of valid predictions", color="tab:green")
    handles = ax_loss.get_legend_handles_labels()
    more = ax_valid.get_legend_handles_labels()
    ax_loss.legend(handles[0] + more[0], handles[1] + more[1], loc="center right", fontsize=8)
    final = f"last recorded batch loss {losses[-1]:.3f}" if len(losses) else "no steps recorded"
    ax_loss.set_title(f"{title}: training, {config.iterations} steps ({final})")
    return _png_bytes(figure)


def _png_bytes(figure: Any) -> bytes:
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def write_map_and_report(
    scene_map: SceneMap,
    config: MappingConfig,
    target: Path,
    source: Mapping[str, Any],
    accounting: FrameAccounting,
    T_world_cam_N44: NDArray[np.float64],
    curve: LossCurve,
    *,
    started_at: float,
    read_seconds: float,
    self_check: SelfCheckRun | None = None,
) -> None:
    """Write the map to ``target`` and its report files beside it, all or nothing.

    Every file is first written to a temporary beside its target and checked (the map loads
    back with the same weights, the others read back byte for byte); only then are they
    renamed into place, the map last (see :class:`~seqace_ros.core.staged_files.StagedFiles`).
    A failure or a stop request (:func:`~seqace_ros.core.stop.check_stop`, just before the
    renames) leaves no temporary behind and an existing map and report unchanged.

    Args:
        scene_map: the trained map (its ``mapping_stats`` are a :class:`MappingStats`).
        config: the mapping settings it was trained with.
        target: map file path (checked with :func:`check_output_path`).
        source: JSON-ready description of where the frames came from.
        accounting: frames in the source, used, skipped and why.
        T_world_cam_N44: (N, 4, 4) camera-to-map poses of the mapping frames, in order.
        curve: the recorded training loss.
        started_at: ``time.perf_counter()`` at the start of the whole job.
        read_seconds: time spent reading or indexing the source.
        self_check: the map self-check (``None``: off), reported as ``self_check`` and
            marked on the trajectory plot.

    Raises:
        MappingOutputError: a file cannot be written or does not read back (nothing is left
            behind, nothing is replaced).
        StopRequested: a stop signal arrived (nothing is left behind, nothing is replaced).
    """
    write_start = time.perf_counter()
    title = target.name
    paths = ReportPaths.for_map(target)
    trajectory_png = render_trajectory_png(T_world_cam_N44, title, self_check)
    loss_png = render_loss_png(curve, config, title)
    stats = MappingStats.from_metadata(scene_map.mapping_stats)
    try:
        with StagedFiles() as staged:
            staged.write(paths.trajectory_png, trajectory_png)
            staged.write(paths.loss_png, loss_png)
            staged_map = staged.reserve(target)
            save_map(scene_map, staged_map)
            _check_map_reads_back(staged_map, scene_map)
            now = time.perf_counter()
            report = {
                "report_version": REPORT_VERSION,
                "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "map": {"path": str(target), "bytes": staged_map.stat().st_size,
                        "keyframes": stats.stored_keyframes,
                        "keyframe_bytes": stats.keyframe_bytes,
                        "keyframe_points": keyframe_point_source(scene_map.keyframes),
                        "keyframe_depth_limit_m": keyframe_depth_limit_m(scene_map.keyframes)},
                "source": dict(source),
                "frames": {"in_source": accounting.in_source, "used": accounting.used,
                           "skipped": dict(accounting.skipped),
                           "withheld_for_self_check": (0 if self_check is None
                                                       else self_check.summary.n_frames)},
                "trajectory": _trajectory_summary(T_world_cam_N44),
                "self_check": None if self_check is None else self_check.summary.to_dict(),
                "training": {
                    "device": stats.device,
                    "iterations": stats.iterations,
                    "buffer_patches": stats.buffer_patches,
                    "tracked_patches": stats.tracked_patches,
                    "depth_patches": stats.depth_patches,
                    "final_loss": stats.final_loss,
                    "final_valid_fraction": stats.final_valid_fraction,
                    "loss_curve": curve.as_dict(),
                },
                "timing_s": {
                    "read": round(read_seconds, 2),
                    "encode": stats.encode_seconds,
                    "tracks": stats.tracks_seconds,
                    "train": stats.train_seconds,
                    "keyframes": stats.keyframe_seconds,
                    "write": round(now - write_start, 2),
                    "total": round(now - started_at, 2),
                },
                "mapping_config": asdict(config),
                "files": {"trajectory_png": paths.trajectory_png.name,
                          "loss_png": paths.loss_png.name},
            }
            staged.write(paths.json, (json_text(report) + "\n").encode("utf-8"))
            check_stop()
            staged.commit(last=target)
    except MappingOutputError:
        raise
    except OSError as error:
        detail = error if isinstance(error, FileWriteError) else FileWriteError(target, error)
        raise MappingOutputError(
            f"{detail}; nothing was left behind and no file was replaced") from error


def _check_map_reads_back(path: Path, scene_map: SceneMap) -> None:
    """Raise :class:`MappingOutputError` unless the map file at ``path`` loads with the
    weights and keyframes of ``scene_map``."""
    try:
        written = load_map(path)
    except MapFileError as error:
        raise MappingOutputError(f"the map written to {path} does not read back: {error}") from None
    same = written.state_dict.keys() == scene_map.state_dict.keys() and all(
        torch.equal(written.state_dict[name], tensor)
        for name, tensor in scene_map.state_dict.items())
    same = same and same_keyframes(written.keyframes, scene_map.keyframes)
    if not same:
        raise MappingOutputError(f"the map written to {path} reads back with other weights")
