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
    parser.add_argument("--sequence", action="store_true",
                        help="SeqACE's track-aware second loss (frames in temporal order)")
    _add_runtime_arguments(parser)


def _mapping_config(args: argparse.Namespace) -> Any:
    """The preset of ``--preset`` with ``--seed``, ``--iterations`` and ``--sequence``."""
    from seqace_ros.pipeline.mapping import preset

    overrides: dict[str, object] = {"seed": args.seed}
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    if args.sequence:
        overrides["sequence"] = True
    try:
        return preset(args.preset, **overrides)
    except ValueError as error:
        raise CliError(str(error)) from error


def _print_map_written(path: Path) -> None:
    import json

    from seqace_ros.pipeline.mapping.report import ReportPaths

    report_path = ReportPaths.for_map(path).json
    report = json.loads(report_path.read_text())
    print(f"map written to {path} ({report['map']['bytes']} bytes, {report['frames']['used']} "
          f"frames, {report['timing_s']['total']:.0f} s); report: {report_path}")


def _map_run(args: argparse.Namespace) -> int:
    import time

    from seqace_ros.pipeline.mapping.report import FrameAccounting, map_with_report

    start = time.perf_counter()
    _check_output(args.out, "--out")
    _set_threads(args.threads)
    config = _mapping_config(args)
    dataset, indices = _open_dataset(args, require_poses=True)
    accounting = FrameAccounting(len(dataset), len(indices),
                                 {"outside_frame_range": len(dataset) - len(indices)})
    source = {"kind": "folder", "path": str(args.dataset), "frames": args.frames}
    path = map_with_report(dataset, indices, config, args.out, source, accounting,
                           device=args.device, progress=not args.quiet, started_at=start,
                           read_seconds=time.perf_counter() - start)
    _print_map_written(path)
    return 0


# --- seqace bag-map -------------------------------------------------------------------------


def _bag_map_arguments(parser: argparse.ArgumentParser) -> None:
    from seqace_ros.datasets.bag_poses import POSE_SOURCES
    from seqace_ros.pipeline.mapping.config import PRESETS

    parser.add_argument("bag", type=Path, help="rosbag2 folder (sqlite3 or mcap) or ROS 1 .bag")
    parser.add_argument("--image-topic", required=True,
                        help="sensor_msgs/Image or CompressedImage topic")
    parser.add_argument("--camera-info-topic", default=None,
                        help="CameraInfo topic (default: next to the image topic, "
                        "/cam/image_raw -> /cam/camera_info)")
    parser.add_argument("--calibration", type=Path, default=None,
                        help="camera-info YAML file used instead of the CameraInfo topic")
    parser.add_argument("--camera-frame", default=None,
                        help="optical frame of the images (default: their header.frame_id)")
    parser.add_argument("--pose-source", default="tf", choices=POSE_SOURCES,
                        help="where camera poses come from: TF (/tf, /tf_static), an Odometry "
                        "topic, a PoseStamped/PoseWithCovarianceStamped topic or a TUM file")
    parser.add_argument("--map-frame", default="map", help="world frame of the map")
    parser.add_argument("--pose-topic", default=None,
                        help="Odometry or pose topic (--pose-source odometry / pose)")
    parser.add_argument("--tum-file", type=Path, default=None,
                        help="TUM trajectory 'stamp tx ty tz qx qy qz qw' (--pose-source tum)")
    parser.add_argument("--body-frame", default=None,
                        help="frame the pose topic / TUM poses describe (default: the camera "
                        "frame); /tf_static links it to the camera")
    parser.add_argument("--max-gap", type=float, default=0.1,
                        help="largest time from an image to its pose samples, seconds")
    parser.add_argument("--min-translation", type=float, default=0.0,
                        help="skip frames that moved less than this (metres) since the last "
                        "kept one, unless they turned --min-rotation (0: off)")
    parser.add_argument("--min-rotation", type=float, default=0.0,
                        help="see --min-translation (degrees; 0: off)")
    parser.add_argument("--max-frames", type=int, default=None,
                        help="map with at most this many frames, evenly spaced")
    parser.add_argument("--out", type=Path, required=True, help="map file to write")
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=None,
                        help="override the preset's training steps")
    parser.add_argument("--sequence", action="store_true",
                        help="SeqACE's track-aware second loss (frames in temporal order)")
    _add_runtime_arguments(parser)


def _bag_config(args: argparse.Namespace) -> Any:
    from seqace_ros.datasets.bag import BagConfig
    from seqace_ros.datasets.bag_poses import PoseSourceConfig
    from seqace_ros.datasets.frame_selection import FrameSelectionConfig

    try:
        poses = PoseSourceConfig(source=args.pose_source, map_frame=args.map_frame,
                                 topic=args.pose_topic, tum_file=args.tum_file,
                                 body_frame=args.body_frame, max_gap_s=args.max_gap)
        selection = FrameSelectionConfig(min_translation_m=args.min_translation,
                                         min_rotation_deg=args.min_rotation,
                                         max_frames=args.max_frames)
    except ValueError as error:
        raise CliError(str(error)) from error
    return BagConfig(image_topic=args.image_topic, camera_info_topic=args.camera_info_topic,
                     calibration_file=args.calibration, camera_frame=args.camera_frame,
                     poses=poses, selection=selection, progress=not args.quiet)


def _bag_map_run(args: argparse.Namespace) -> int:
    from seqace_ros.pipeline.mapping.bag_mapping import map_bag

    _set_threads(args.threads)
    path = map_bag(args.bag, _bag_config(args), _mapping_config(args), args.out,
                   device=args.device, progress=not args.quiet)
    _print_map_written(path)
    return 0


# --- seqace eval --------------------------------------------------------------------------


def _add_mode_argument(parser: argparse.ArgumentParser) -> None:
    from seqace_ros.pipeline.localization.modes import MODE_NAMES

    parser.add_argument("--mode", default="single", choices=MODE_NAMES,
                        help="localization mode (frames are fed in order; sequence mode also "
                        "uses the points tracked from the previous frames)")


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dataset_arguments(parser)
    parser.add_argument("map", type=Path, help="map file")
    _add_mode_argument(parser)
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
    from seqace_ros.pipeline.localization.modes import create_localizer, mode_config

    _check_output(args.json, "--json")
    _check_output(args.plot, "--plot")
    _set_threads(args.threads)
    dataset, indices = _open_dataset(args, require_poses=True)
    scene_map = load_map(args.map)
    localizer = create_localizer(scene_map, mode_config(args.mode), resolve_device(args.device))
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
    _add_mode_argument(parser)
    parser.add_argument("--out", type=Path, required=True,
                        help="TUM trajectory to write (stamp tx ty tz qx qy qz qw)")
    _add_runtime_arguments(parser)


def _localize_run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from seqace_ros.core.encoder import resolve_device
    from seqace_ros.core.map_file import load_map
    from seqace_ros.datasets.trajectory import write_tum_trajectory
    from seqace_ros.pipeline.localization.modes import create_localizer, mode_config

    _check_output(args.out, "--out")
    _set_threads(args.threads)
    dataset, indices = _open_dataset(args, require_poses=False)
    localizer = create_localizer(load_map(args.map), mode_config(args.mode),
                                 resolve_device(args.device))
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
    Command("bag-map", "train a scene map from the posed images of a rosbag",
            _bag_map_arguments, _bag_map_run),
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
    from seqace_ros.datasets.bag import BagError
    from seqace_ros.datasets.folder import DatasetError
    from seqace_ros.datasets.trajectory import TrajectoryError
    from seqace_ros.pipeline.evaluation import EvaluationError
    from seqace_ros.pipeline.localization.single import LocalizationError
    from seqace_ros.pipeline.mapping.buffer import MappingDataError

    return (CliError, BagError, DatasetError, MapFileError, EncoderError, EvaluationError,
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
