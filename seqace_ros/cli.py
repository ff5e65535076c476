"""seqace: map a scene, evaluate and run relocalization from the shell.

Sub-commands are small functions registered in :data:`COMMANDS` (one line each): an
``add_arguments(parser)`` and a ``run(args) -> int``. Library code gets frozen configs, never
the argparse namespace: the mapping commands declare the fields of
:mod:`seqace_ros.pipeline.mapping.request` and hand their values to
:meth:`~seqace_ros.pipeline.mapping.request.MappingRequest.from_values`. Bad input (an
unparsable option, or any :class:`~seqace_ros.core.errors.SeqaceError`) ends the command with
one ``seqace: error: ...`` line on stderr and exit status 2, no traceback and no partial output
file. ``map`` and ``bag-map`` stop within a training step or a frame on SIGINT or SIGTERM
(:mod:`seqace_ros.core.stop`), write nothing and exit 130 or 143; the other commands end on
SIGINT (exit 130) and on SIGTERM as any process does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from seqace_ros.core.errors import SeqaceError

if TYPE_CHECKING:
    from seqace_ros.core.map_file import SceneMap
    from seqace_ros.pipeline.localization.modes import LocalizationMode
    from seqace_ros.pipeline.mapping.request import RequestField


class CliError(SeqaceError, ValueError):
    """Bad command-line input, reported as one line."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports a bad option in one ``seqace: error:`` line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"seqace: error: {message} (see {self.prog} --help)\n")


@dataclass(frozen=True)
class Command:
    """A sub-command: its name, one-line help, argument declaration and action."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --- shared argument helpers ------------------------------------------------------------


def _add_fields(parser: argparse.ArgumentParser, fields: Sequence[RequestField]) -> None:
    """Declare mapping-request fields as arguments whose values land under the field names."""
    for field in fields:
        if not field.cli_flag.startswith("-"):
            parser.add_argument(field.name, metavar=field.cli_flag, type=field.kind,
                                help=field.help)
        elif field.kind is bool:
            parser.add_argument(field.cli_flag, dest=field.name, action="store_true",
                                help=field.help)
        else:
            parser.add_argument(field.cli_flag, dest=field.name, type=field.kind,
                                default=field.default, choices=field.choices or None,
                                required=field.required, help=field.help)


def _add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    from seqace_ros.pipeline.mapping.request import FOLDER_FIELDS

    _add_fields(parser, FOLDER_FIELDS)


def _add_runtime_arguments(parser: argparse.ArgumentParser, device: bool = True) -> None:
    from seqace_ros.pipeline.mapping.request import FIELDS_BY_NAME

    if device:
        _add_fields(parser, [FIELDS_BY_NAME["device"]])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _open_dataset(args: argparse.Namespace, require_poses: bool) -> tuple[Any, Sequence[int]]:
    from seqace_ros.pipeline.mapping.request import FolderSource, parse_pinhole

    source = FolderSource(args.dataset, args.frames, parse_pinhole(args.intrinsics), args.focal)
    return source.open(require_poses)


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
    """Use ``threads`` torch CPU threads, 1 to the number of CPUs this process may use."""
    if threads is None:
        return
    available = len(os.sched_getaffinity(0))
    if not 1 <= threads <= available:
        raise CliError(f"--threads must be between 1 and {available} (the CPUs available), "
                       f"got {threads}")
    import torch

    torch.set_num_threads(threads)


# --- seqace map and bag-map -----------------------------------------------------------------


def _map_arguments(parser: argparse.ArgumentParser) -> None:
    from seqace_ros.pipeline.mapping.request import (
        FOLDER_FIELDS,
        FOLDER_MAPPING_FIELDS,
        TRAINING_FIELDS,
    )

    _add_fields(parser, (*FOLDER_FIELDS, *FOLDER_MAPPING_FIELDS, *TRAINING_FIELDS))
    _add_runtime_arguments(parser, device=False)


def _bag_map_arguments(parser: argparse.ArgumentParser) -> None:
    from seqace_ros.pipeline.mapping.request import BAG_FIELDS, TRAINING_FIELDS

    _add_fields(parser, (*BAG_FIELDS, *TRAINING_FIELDS))
    _add_runtime_arguments(parser, device=False)


def _mapping_request(args: argparse.Namespace) -> Any:
    """The :class:`MappingRequest` of the ``map`` or ``bag-map`` arguments."""
    from seqace_ros.pipeline.mapping.request import FIELDS_BY_NAME, MappingRequest

    return MappingRequest.from_values(
        {name: value for name, value in vars(args).items() if name in FIELDS_BY_NAME})


def _mapping_run(args: argparse.Namespace) -> int:
    """``seqace map`` and ``seqace bag-map``: the request of the arguments, mapped."""
    from seqace_ros.core.stop import stop_on_signals
    from seqace_ros.pipeline.mapping.report import ReportPaths
    from seqace_ros.pipeline.mapping.request import run_request
    from seqace_ros.pipeline.mapping.self_check import SelfCheck

    request = _mapping_request(args)
    _set_threads(args.threads)
    with stop_on_signals():
        path = run_request(request, progress=not args.quiet)
    report = json.loads(ReportPaths.for_map(path).json.read_text())
    if report["self_check"] is not None:
        print(SelfCheck.from_dict(report["self_check"]).summary())
    print(f"map written to {path} ({report['map']['bytes']} bytes, {report['frames']['used']} "
          f"frames, {report['timing_s']['total']:.0f} s); report: "
          f"{ReportPaths.for_map(path).json}")
    return 0


# --- seqace eval --------------------------------------------------------------------------


def _add_mode_arguments(parser: argparse.ArgumentParser) -> None:
    from seqace_ros.pipeline.localization.modes import MODE_NAMES

    parser.add_argument("--mode", default="single", choices=MODE_NAMES,
                        help="localization mode (frames are fed in order; sequence mode also "
                        "uses the points tracked from the previous frames)")
    parser.add_argument("--num-keypoints", type=int, default=None, metavar="N",
                        help="salient patches regressed and given to RANSAC per image (default: "
                        "the node's num_keypoints default; more help RGB-D maps away from the "
                        "mapping views and cost rate, README, Benchmarks: Patches per query)")
    parser.add_argument("--refine", action="store_true",
                        help="refine each pose against the map's keyframes (maps made with "
                        "--keyframes N > 0, the default of the mapping presets)")
    parser.add_argument("--no-recover", dest="recover", action="store_false",
                        help="with --refine: leave frames the head finds no pose for without "
                        "one, and keep the head's pose where the keyframes do not confirm it, "
                        "instead of solving one from the keyframes their keypoints vote for")
    parser.add_argument("--keyframe-max-depth", type=float, default=0.0, metavar="M",
                        help="with --refine: leave keyframe points deeper than M metres in their "
                        "keyframe's camera out of the matches (0: no limit; README, Benchmarks: "
                        "measured limits for Kinect-class depth)")
    parser.add_argument("--keyframe-max-disagreement", type=float,
                        default=None, metavar="M",
                        help="with --refine and sensor-depth keyframes: match their points only "
                        "up to the depth where neighbouring keyframes' points of the same "
                        "keypoint disagree by a median of M metres (0: off; default: the "
                        "node's keyframe_max_disagreement_m default)")
    parser.add_argument("--keyframe-min-near-inliers", type=int, default=None, metavar="N",
                        help="with --refine and a keyframe depth limit: where the points within "
                        "it give fewer than N agreeing matches, match the points beyond it too "
                        "(0: never; default: the node's keyframe_min_near_inliers default)")


def _create_localizer(args: argparse.Namespace, scene_map: SceneMap) -> LocalizationMode:
    """The localizer of ``--mode`` (with ``--refine``) on ``scene_map``."""
    from seqace_ros.core.device import resolve_device
    from seqace_ros.pipeline.localization.modes import create_localizer, mode_config
    from seqace_ros.pipeline.localization.refinement import RefinementConfig
    from seqace_ros.pipeline.localization.single import LocalizerConfig

    defaulted = {"max_point_disagreement_m": args.keyframe_max_disagreement,
                 "min_near_inliers": args.keyframe_min_near_inliers}  # None: the node's default
    patches = {} if args.num_keypoints is None else {"top_k": args.num_keypoints}
    config = mode_config(args.mode).with_frame(LocalizerConfig(
        refine=args.refine, **patches, refinement=RefinementConfig(
            recover=args.recover, max_point_depth_m=args.keyframe_max_depth,
            **{field: value for field, value in defaulted.items() if value is not None})))
    return create_localizer(scene_map, config, resolve_device(args.device))


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dataset_arguments(parser)
    parser.add_argument("map", type=Path, help="map file")
    _add_mode_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, help="report file to write")
    parser.add_argument("--plot", type=Path, default=None, help="PNG plot to write")
    _add_runtime_arguments(parser)


def _eval_run(args: argparse.Namespace) -> int:
    from seqace_ros.core.json_io import json_text
    from seqace_ros.core.map_file import load_map
    from seqace_ros.pipeline.evaluation import (
        evaluate_frames,
        plot_evaluation,
        summarize,
        write_report,
    )

    _check_output(args.json, "--json")
    _check_output(args.plot, "--plot")
    _set_threads(args.threads)
    dataset, indices = _open_dataset(args, require_poses=True)
    scene_map = load_map(args.map)
    localizer = _create_localizer(args, scene_map)
    evaluations = evaluate_frames(localizer, dataset, indices, progress=not args.quiet)
    report = summarize(evaluations, args.mode, args.map.stat().st_size)
    if args.json is not None:
        write_report(report, args.json)
    if args.plot is not None:
        plot_evaluation(evaluations, args.plot, title=f"{args.dataset.name} {args.frames} "
                        f"({args.mode})")
    print(json_text(report))
    return 0


# --- seqace localize ------------------------------------------------------------------------


def _localize_arguments(parser: argparse.ArgumentParser) -> None:
    _add_dataset_arguments(parser)
    parser.add_argument("map", type=Path, help="map file")
    _add_mode_arguments(parser)
    parser.add_argument("--out", type=Path, required=True,
                        help="TUM trajectory to write (stamp tx ty tz qx qy qz qw)")
    _add_runtime_arguments(parser)


def _localize_run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from seqace_ros.core.map_file import load_map
    from seqace_ros.datasets.trajectory import write_tum_trajectory

    _check_output(args.out, "--out")
    _set_threads(args.threads)
    dataset, indices = _open_dataset(args, require_poses=False)
    localizer = _create_localizer(args, load_map(args.map))
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
    from seqace_ros.datasets.synthetic import INT_LIMITS, PRESETS

    def limits(field: str) -> str:
        return "{} to {}".format(*INT_LIMITS[field])

    parser.add_argument("out", type=Path, help="folder to write (7-Scenes layout)")
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS),
                        help="scene preset (room, textures, camera paths, image size)")
    parser.add_argument("--seed", type=int, default=0,
                        help=f"random seed of the scene and its camera paths ({limits('seed')})")
    parser.add_argument("--mapping-frames", type=int, default=None,
                        help="frames of the mapping pass, "
                        f"{limits('n_mapping_frames')} (default: the preset's)")
    parser.add_argument("--query-frames", type=int, default=None,
                        help="frames of the query pass, "
                        f"{limits('n_query_frames')} (default: the preset's)")
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
    except OSError as error:  # the folder or bag asked for cannot be written
        raise CliError(f"{error.filename or args.out}: {error.strerror or error}") from error
    print(f"synthetic scene ({config.n_mapping_frames} mapping + {config.n_query_frames} query "
          f"frames, {config.width}x{config.height}) in {out}")
    return 0


# --- registry and entry point ---------------------------------------------------------------

COMMANDS: list[Command] = [
    Command("map", "train a scene map from posed images", _map_arguments, _mapping_run),
    Command("bag-map", "train a scene map from the posed images of a rosbag",
            _bag_map_arguments, _mapping_run),
    Command("eval", "relocalize frames with ground truth and report accuracy",
            _eval_arguments, _eval_run),
    Command("localize", "relocalize frames and write their poses (TUM format)",
            _localize_arguments, _localize_run),
    Command("synth", "render a synthetic scene with ground truth", _synth_arguments, _synth_run),
]


def build_parser() -> argparse.ArgumentParser:
    """The ``seqace`` argument parser with every registered sub-command."""
    parser = _Parser(prog="seqace", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``seqace``; returns the exit status (2 for a user error, 130 or 143
    when stopped by SIGINT or SIGTERM)."""
    from seqace_ros.core.stop import StopRequested

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as parser_exit:  # --help (0), or a bad option reported by _Parser (2)
        return parser_exit.code if isinstance(parser_exit.code, int) else 2
    try:
        return int(args.run(args))
    except SeqaceError as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"seqace: error: {message}", file=sys.stderr)
        return 2
    except StopRequested as stop:
        print(f"seqace: {stop}; nothing written", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:
        print("seqace: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
