"""The ``seqace`` command: map a scene, evaluate and run relocalization from the shell.

Sub-commands are small functions registered in :data:`COMMANDS` (one line each): an
``add_arguments(parser)`` and a ``run(args) -> int``. Library code gets frozen configs, never
the argparse namespace. Bad input ends the command with one ``seqace: error: ...`` line on
stderr and exit status 2, no traceback and no partial output file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqace_ros.datasets.base import parse_frame_range


class CliError(ValueError):
    """Bad command-line input, reported as one line."""


@dataclass(frozen=True)
class Command:
    """A sub-command: its name, one-line help, argument declaration and action."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --- shared argument helpers ------------------------------------------------------------


def _add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", type=Path, help="7-Scenes or ACE layout folder")
    parser.add_argument("--frames", default=":", help="frame range START:END (END exclusive)")
    parser.add_argument("--intrinsics", default=None,
                        help="fx,fy,cx,cy in pixels, for folders without calibration files")
    parser.add_argument("--focal", type=float, default=None,
                        help="single focal length (pixels), principal point at the image centre")


def _add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _parse_pinhole(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as error:
        raise CliError(f"--intrinsics must be fx,fy,cx,cy numbers, got {text!r}") from error
    if len(values) != 4:
        raise CliError(f"--intrinsics needs 4 numbers fx,fy,cx,cy, got {len(values)}")
    return values[0], values[1], values[2], values[3]


def _open_dataset(args: argparse.Namespace, require_poses: bool) -> tuple[Any, Sequence[int]]:
    from seqace_ros.datasets.folder import FolderDataset

    dataset = FolderDataset(args.dataset, pinhole=_parse_pinhole(args.intrinsics),
                            focal=args.focal, require_poses=require_poses)
    try:
        indices = parse_frame_range(args.frames, len(dataset))
    except ValueError as error:
        raise CliError(str(error)) from error
    return dataset, indices


def _check_output(path: Path | None, option: str) -> None:
    """Fail before any work when an output cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise CliError(f"{option} {str(path)!r} is a folder, expected a file path")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CliError(f"{option}: folder {str(parent)!r} does not exist")


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise CliError(f"--threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


# --- seqace map ---------------------------------------------------------------------------


def _map_arguments(parser: argparse.ArgumentParser) -> None:
    from seqace_ros.pipeline.mapping.config import PRESETS

    _add_dataset_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="map file to write")
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=None,
                        help="override the preset's training steps")
    _add_runtime_arguments(parser)


def _map_run(args: argparse.Namespace) -> int:
    from seqace_ros.core.map_file import save_map
    from seqace_ros.pipeline.mapping import map_scene, preset

    _check_output(args.out, "--out")
    _set_threads(args.threads)
    overrides: dict[str, object] = {"seed": args.seed}
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    config = preset(args.preset, **overrides)
    dataset, indices = _open_dataset(args, require_poses=True)
    scene_map = map_scene(dataset, indices, config, device=args.device,
                          progress=not args.quiet)
    path = save_map(scene_map, args.out)
    stats = scene_map.mapping_stats
    print(f"map written to {path} ({path.stat().st_size} bytes, {stats['frames']} frames, "
          f"{stats['encode_seconds'] + stats['train_seconds']:.0f} s)")
    return 0


# --- seqace eval --------------------------------------------------------------------------


def _mode_names() -> list[str]:
    from seqace_ros.pipeline.localization.modes import MODES

    return sorted(MODES)


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dataset_arguments(parser)
    parser.add_argument("map", type=Path, help="map file")
    parser.add_argument("--mode", default="single", choices=_mode_names())
    parser.add_argument("--json", type=Path, default=None, help="report file to write")
    parser.add_argument("--plot", type=Path, default=None, help="PNG plot to write")
    _add_runtime_arguments(parser)


def _eval_run(args: argparse.Namespace) -> int:
    import json

    from seqace_ros.core.encoder import resolve_device
    from seqace_ros.core.map_file import load_map
    from seqace_ros.pipeline.evaluation import (
        evaluate_frames,
        plot_evaluation,
        summarize,
        write_report,
    )
    from seqace_ros.pipeline.localization.modes import create_frame_localizer

    _check_output(args.json, "--json")
    _check_output(args.plot, "--plot")
    _set_threads(args.threads)
    dataset, indices = _open_dataset(args, require_poses=True)
    scene_map = load_map(args.map)
    localizer = create_frame_localizer(args.mode, scene_map, resolve_device(args.device))
    evaluations = evaluate_frames(localizer, dataset, indices, progress=not args.quiet)
    report = summarize(evaluations, args.mode, args.map.stat().st_size)
    if args.json is not None:
        write_report(report, args.json)
    if args.plot is not None:
        plot_evaluation(evaluations, args.plot, title=f"{args.dataset.name} {args.frames} "
                        f"({args.mode})")
    print(json.dumps(report, indent=2))
    return 0


# --- seqace localize ------------------------------------------------------------------------


def _localize_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dataset_arguments(parser)
    parser.add_argument("map", type=Path, help="map file")
    parser.add_argument("--mode", default="single", choices=_mode_names())
    parser.add_argument("--out", type=Path, required=True,
                        help="TUM trajectory to write (stamp tx ty tz qx qy qz qw)")
    _add_runtime_arguments(parser)


def _localize_run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from seqace_ros.core.encoder import resolve_device
    from seqace_ros.core.map_file import load_map
    from seqace_ros.datasets.trajectory import write_tum_trajectory
    from seqace_ros.pipeline.localization.modes import create_frame_localizer

    _check_output(args.out, "--out")
    _set_threads(args.threads)
    dataset, indices = _open_dataset(args, require_poses=False)
    localizer = create_frame_localizer(args.mode, load_map(args.map), resolve_device(args.device))
    stamps, poses = [], []
    for index in tqdm(indices, desc="localizing", unit="img", disable=args.quiet):
        frame = dataset[index]
        result = localizer.localize(frame.image_rgb, frame.intrinsics)
        if result.success and result.T_world_cam is not None:
            stamps.append(frame.stamp_ns)
            poses.append(result.T_world_cam)
    if not poses:
        raise CliError(f"no frame of {len(indices)} could be localized; nothing written")
    write_tum_trajectory(args.out, np.asarray(stamps, dtype=np.int64), np.stack(poses))
    print(f"{len(poses)} of {len(indices)} frames localized; poses written to {args.out}")
    return 0


# --- seqace synth ---------------------------------------------------------------------------


def _synth_arguments(parser: argparse.ArgumentParser) -> None:
    from seqace_ros.datasets.synthetic import PRESETS

    parser.add_argument("out", type=Path, help="folder to write (7-Scenes layout)")
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mapping-frames", type=int, default=None)
    parser.add_argument("--query-frames", type=int, default=None)
    parser.add_argument("--bag", type=Path, default=None,
                        help="also write the scene as a rosbag2 mcap (Image, CameraInfo, /tf)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def _synth_run(args: argparse.Namespace) -> int:
    from seqace_ros.datasets.synthetic import CameraPathError, preset, render_bag, render_scene

    overrides: dict[str, object] = {"seed": args.seed}
    if args.mapping_frames is not None:
        overrides["n_mapping_frames"] = args.mapping_frames
    if args.query_frames is not None:
        overrides["n_query_frames"] = args.query_frames
    try:
        config = preset(args.preset, **overrides)
        out = render_scene(config, args.out, overwrite=args.overwrite)
        if args.bag is not None:
            render_bag(config, args.bag, overwrite=args.overwrite)
    except (ValueError, CameraPathError) as error:
        raise CliError(str(error)) from error
    print(f"synthetic scene ({config.n_mapping_frames} mapping + {config.n_query_frames} query "
          f"frames, {config.width}x{config.height}) in {out}")
    return 0


# --- registry and entry point ---------------------------------------------------------------

COMMANDS: list[Command] = [
    Command("map", "train a scene map from posed images", _map_arguments, _map_run),
    Command("eval", "relocalize frames with ground truth and report accuracy",
            _eval_arguments, _eval_run),
    Command("localize", "relocalize frames and write their poses (TUM format)",
            _localize_arguments, _localize_run),
    Command("synth", "render a synthetic scene with ground truth", _synth_arguments, _synth_run),
]


def build_parser() -> argparse.ArgumentParser:
    """The ``seqace`` argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(prog="seqace", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (reported in one line), not a bug."""
    from seqace_ros.core.encoder import EncoderError
    from seqace_ros.core.map_file import MapFileError
    from seqace_ros.datasets.folder import DatasetError
    from seqace_ros.datasets.trajectory import TrajectoryError
    from seqace_ros.pipeline.evaluation import EvaluationError
    from seqace_ros.pipeline.localization.single import LocalizationError
    from seqace_ros.pipeline.mapping.buffer import MappingDataError

    return (CliError, DatasetError, MapFileError, EncoderError, EvaluationError,
            LocalizationError, MappingDataError, TrajectoryError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``seqace``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except _user_errors() as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"seqace: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seqace: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
