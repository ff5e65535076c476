"""Command line of the demo: ``python -m seqace_ros.ros.demo [options]``.

Builds a :class:`~seqace_ros.ros.demo.config.DemoConfig` from the options (defaults per source
in :data:`~seqace_ros.ros.demo.config.SOURCE_DEFAULTS`), keeps DDS on loopback, runs the demo
and prints the report and the paths of the JSON report and the plot. On failure it prints one
``seqace demo: error: ...`` line and exits 1; interrupted (Ctrl-C or SIGTERM), it stops the
child nodes and exits 130 or 143.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from types import FrameType

from seqace_ros.core.errors import SeqaceError
from seqace_ros.pipeline.localization.modes import MODE_NAMES
from seqace_ros.ros.demo.config import SOURCE_DEFAULTS, DemoConfig, DemoConfigError, SceneSpec
from seqace_ros.ros.demo.scene import check_scene

PROG = "seqace demo"
#: Domain IDs 1..101 map to UDP ports that are safe on Linux; 0, everyone's default, is skipped.
DOMAIN_ID_RANGE = (1, 101)


def default_data_dir() -> Path:
    """``$SEQACE_DATA_DIR/redkitchen_dev``, else ``../shared/data/redkitchen_dev`` beside the
    repository of this package (the layout of the development machines and CI)."""
    base = os.environ.get("SEQACE_DATA_DIR")
    if base:
        return Path(base) / "redkitchen_dev"
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "redkitchen_dev"


def keep_dds_on_loopback(environ: MutableMapping[str, str]) -> int:
    """Restrict discovery to this machine and pick a random ``ROS_DOMAIN_ID`` unless one is set.

    Returns:
        The domain ID in use.

    Raises:
        DemoConfigError: a ``ROS_DOMAIN_ID`` that is not an integer.
    """
    environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    for name in ("ROS_STATIC_PEERS", "ROS_DISCOVERY_SERVER", "ROS_LOCALHOST_ONLY"):
        environ.pop(name, None)
    if not environ.get("ROS_DOMAIN_ID"):
        low, high = DOMAIN_ID_RANGE
        environ["ROS_DOMAIN_ID"] = str(low + secrets.randbelow(high - low + 1))
    try:
        return int(environ["ROS_DOMAIN_ID"])
    except ValueError:
        raise DemoConfigError(
            f"ROS_DOMAIN_ID must be an integer, got {environ['ROS_DOMAIN_ID']!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The demo's options."""
    parser = argparse.ArgumentParser(prog=PROG, description=(
        "Map a scene from a rosbag with mapping_node, replay its query frames live over DDS "
        "(loopback) to relocalization_node, and report recall, errors and latency."))
    parser.add_argument("--real", action="store_true",
                        help="use real frames (--data) instead of the synthetic room")
    parser.add_argument("--data", type=Path, default=None,
                        help="7-Scenes layout folder for --real (default: "
                             "$SEQACE_DATA_DIR/redkitchen_dev or ../shared/data/redkitchen_dev)")
    parser.add_argument("--out", type=Path, default=Path("demo_out"),
                        help="output folder (bags, map, report, plot, logs)")
    parser.add_argument("--mode", default="single", choices=MODE_NAMES,
                        help="relocalization mode of the node")
    parser.add_argument("--rate", type=float, default=5.0, help="replay rate, frames per second")
    parser.add_argument("--mapping-frames", type=int, default=None,
                        help="frames of the mapping part (default: per source)")
    parser.add_argument("--query-frames", type=int, default=None,
                        help="frames of the query part (default: per source)")
    parser.add_argument("--scene-preset", default=None,
                        help="synthetic scene preset (default: small)")
    parser.add_argument("--scene-seed", type=int, default=0, help="synthetic scene seed")
    parser.add_argument("--preset", default=None, help="mapping preset (default: per source)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="mapping steps; 0: the preset's (default: per source)")
    parser.add_argument("--seed", type=int, default=0, help="mapping seed")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per node (OMP_NUM_THREADS; default 1: on a busy "
                             "machine, more threads per node spin against each other)")
    parser.add_argument("--reuse-map", action="store_true",
                        help="use the map of an earlier run with the same scene and mapping "
                             "settings, if any, instead of mapping again")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for the relocalization node to start or finish")
    return parser


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    """The run's config; per-source defaults fill the options left out.

    Raises:
        DemoConfigError: inconsistent or out-of-range options.
    """
    source = "real" if args.real else "synthetic"
    defaults = SOURCE_DEFAULTS[source]
    if args.real and args.scene_preset is not None:
        raise DemoConfigError("--scene-preset applies to the synthetic scene, not to --real")
    if not args.real and args.data is not None:
        raise DemoConfigError("--data applies to --real only")
    scene = SceneSpec(
        source=source,
        mapping_frames=defaults.mapping_frames if args.mapping_frames is None
        else args.mapping_frames,
        query_frames=defaults.query_frames if args.query_frames is None else args.query_frames,
        scene_preset=args.scene_preset or defaults.scene_preset,
        scene_seed=args.scene_seed,
        data_dir=(args.data or default_data_dir()) if args.real else None)
    return DemoConfig(
        scene=scene, out_dir=args.out.resolve(),
        mapping_preset=args.preset or defaults.mapping_preset,
        mapping_iterations=defaults.mapping_iterations if args.iterations is None
        else args.iterations,
        mapping_seed=args.seed, mode=args.mode, rate_hz=args.rate, device=args.device,
        threads=args.threads, node_timeout_s=args.timeout, reuse_map=args.reuse_map)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the child nodes' context managers


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status (0 done, 1 failed, 130/143 interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        check_scene(config.scene)
        # after the cheap checks: bad options fail in a second, not after importing torch
        from seqace_ros.ros.demo.run import run_demo

        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        domain_id = keep_dds_on_loopback(os.environ)
        print(f"[demo] DDS on loopback, ROS_DOMAIN_ID={domain_id}; outputs in {config.run_dir}",
              flush=True)
        outputs = run_demo(config, log=lambda line: print(f"[demo] {line}", flush=True))
    except SeqaceError as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; child nodes stopped", file=sys.stderr)
        return 130
    print("\n== seqace_ros demo report ==")
    print(outputs.summary)
    print(f"report: {outputs.report_json}")
    print(f"plot:   {outputs.plot_png}")
    print(f"map:    {outputs.map_path}")
    return 0
