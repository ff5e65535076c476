"""The demo end to end: scene bags -> ``mapping_node`` -> ``relocalization_node`` fed live.

Steps, each a small function:

1. :func:`~seqace_ros.ros.demo.scene.prepare_bags`: the scene's mapping and query bags
   (written once, then reused);
2. :func:`build_map`: ``mapping_node`` as a child process maps the mapping bag;
3. :func:`localize_stream`: ``relocalization_node`` as a child process loads the map; the
   query frames are replayed to it over DDS as a live camera and its poses collected;
4. :func:`write_outputs`: the report (JSON, DESIGN.md keys plus latency and pose counts) and
   the plot (trajectory top view, ground truth against estimates, failures marked; error CDF).

DDS must already be on loopback in this process's environment (``scripts/demo.sh`` and the
command line see to it); the children inherit it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.json_io import write_json
from seqace_ros.datasets.bag import BagConfig, BagDataset, BagError
from seqace_ros.datasets.bag_poses import PoseSourceConfig
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.pipeline.evaluation import plot_evaluation
from seqace_ros.ros.demo.children import ChildNode, ChildNodeError
from seqace_ros.ros.demo.config import DemoConfig, DemoError
from seqace_ros.ros.demo.replay import ReplayNode, ReplayResult, replay
from seqace_ros.ros.demo.report import evaluate_replay, format_summary, stream_report
from seqace_ros.ros.demo.scene import DemoBags, prepare_bags
from seqace_ros.ros.mapping_node import MAP_WRITTEN_LOG
from seqace_ros.ros.relocalization_node import MAP_READY_LOG

Log = Callable[[str], None]
IMAGE_TOPIC = "/demo/camera/image_raw"
CAMERA_INFO_TOPIC = "/demo/camera/camera_info"
POSE_TOPIC = "/pose"
#: Longest a mapping run may take: a hang guard, far above any demo mapping on a CPU.
MAPPING_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class DemoOutputs:
    """What a demo run produced.

    Attributes:
        report: the report as written to ``report_json``.
        report_json: JSON report path.
        plot_png: trajectory and error-CDF plot path.
        map_path: the map ``mapping_node`` wrote.
        summary: the console summary of the report.
    """

    report: dict[str, Any]
    report_json: Path
    plot_png: Path
    map_path: Path
    summary: str


def _child_env(config: DemoConfig) -> dict[str, str]:
    return {} if config.threads is None else {"OMP_NUM_THREADS": str(config.threads)}


def build_map(config: DemoConfig, bags: DemoBags, log: Log = print) -> Path:
    """Map the mapping bag with ``mapping_node`` (a child process); returns the map path.

    With ``config.reuse_map``, an existing map (``mapping_node`` writes it atomically, so one
    that exists is complete) is used instead.

    Raises:
        DemoError: the node failed (its error line is in the message) or did not finish.
    """
    map_path = config.map_path
    if config.reuse_map and map_path.is_file():
        log(f"mapping: reusing {map_path}")
        return map_path
    parameters = {
        "bag_path": str(bags.map_bag), "map_path": str(map_path),
        "image_topic": bags.image_topic, "camera_info_topic": bags.camera_info_topic,
        "pose_source": "tf", "map_frame": bags.map_frame, "preset": config.mapping_preset,
        "iterations": config.mapping_iterations, "seed": config.mapping_seed,
        "device": config.device, "progress_period_s": 15.0,
    }
    steps = f"{config.mapping_iterations} steps" if config.mapping_iterations else "its steps"
    log(f"mapping: mapping_node on {bags.map_bag} (preset {config.mapping_preset}, {steps})")
    node = ChildNode("seqace_ros.ros.mapping_node", "mapping_node", parameters,
                     config.run_dir / "logs", extra_env=_child_env(config))
    with node:
        try:
            status = node.wait(MAPPING_TIMEOUT_S, echo=log)
        except ChildNodeError as error:
            raise DemoError(f"mapping failed: {error}") from None
    if status != 0 or MAP_WRITTEN_LOG not in node.log_text() or not map_path.is_file():
        errors = [line for line in node.log_text().splitlines() if "[ERROR]" in line]
        reason = errors[-1].strip() if errors else f"exit status {status}"
        raise DemoError(f"mapping failed: {reason} (log: {node.log_path})")
    return map_path


def read_query_frames(bags: DemoBags) -> list[PosedFrame]:
    """The query frames, decoded, with their ground-truth poses from the bag's ``/tf``.

    Raises:
        DemoError: the query bag cannot be read (damaged since it was written).
    """
    config = BagConfig(image_topic=bags.image_topic, camera_info_topic=bags.camera_info_topic,
                       poses=PoseSourceConfig(source="tf", map_frame=bags.map_frame),
                       progress=False)
    try:
        with BagDataset(bags.query_bag, config) as dataset:
            return list(dataset)
    except BagError as error:
        raise DemoError(f"cannot read the query bag: {error} (delete {bags.query_bag.parent} "
                        "to rebuild the scene)") from None


def localize_stream(config: DemoConfig, map_path: Path, frames: list[PosedFrame],
                    run_dir: Path, log: Log = print) -> ReplayResult:
    """Run ``relocalization_node`` on ``map_path`` and replay ``frames`` to it live.

    Raises:
        DemoError: the node did not start, load the map or connect in time.
    """
    parameters = {"map_path": str(map_path), "device": config.device, "mode": config.mode,
                  "qos_reliability": "reliable", "qos_depth": 10, "publish_inliers": False}
    node = ChildNode("seqace_ros.ros.relocalization_node", "relocalization_node", parameters,
                     run_dir / "logs", ros_args=["-r", f"image:={IMAGE_TOPIC}",
                                                 "-r", f"camera_info:={CAMERA_INFO_TOPIC}"],
                     extra_env=_child_env(config))
    log(f"relocalization: relocalization_node ({config.mode} mode) loading {map_path.name}")
    with node:
        try:
            node.wait_for_log(MAP_READY_LOG, config.node_timeout_s, echo=log)
        except ChildNodeError as error:
            raise DemoError(f"relocalization node failed: {error}") from None
        log(f"replay: {len(frames)} query frames at {config.rate_hz:g} Hz over DDS "
            f"({IMAGE_TOPIC} -> {POSE_TOPIC})")
        result = _replay_in_context(config, frames)
        node.echo_new_lines(log)
    if not result.complete:
        log(f"replay: the node had not answered every frame after {config.node_timeout_s:.0f} s; "
            "the unanswered ones count as failures")
    return result


def _replay_in_context(config: DemoConfig, frames: list[PosedFrame]) -> ReplayResult:
    """Replay in a private rclpy context spun in a background thread (Ctrl-C stays Python's)."""
    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    executor = SingleThreadedExecutor(context=context)
    node = ReplayNode(IMAGE_TOPIC, CAMERA_INFO_TOPIC, POSE_TOPIC, context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, name="demo-replay-spin", daemon=True)
    spinner.start()
    try:
        return replay(node, frames, config.rate_hz, config.node_timeout_s)
    except RuntimeError as error:
        raise DemoError(f"replay failed: {error}") from None
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
        spinner.join(5.0)


def write_outputs(config: DemoConfig, frames: list[PosedFrame], result: ReplayResult,
                  map_path: Path, extras: dict[str, Any]) -> DemoOutputs:
    """Score the replay and write ``report.json`` and ``trajectory.png`` in the run folder."""
    evaluations = evaluate_replay(frames, result)
    report = stream_report(evaluations, result, config.mode, map_path.stat().st_size,
                           config.rate_hz)
    report_json = write_json(config.run_dir / "report.json", {**report.to_dict(), **extras})
    title = (f"seqace_ros demo: {config.scene.name}, {config.mode} mode, recall 5cm/5deg "
             f"{report.evaluation.recall_5cm_5deg:.2f}")
    plot_png = plot_evaluation(evaluations, config.run_dir / "trajectory.png", title)
    return DemoOutputs(json.loads(report_json.read_text()), report_json, plot_png, map_path,
                       format_summary(report))


def run_demo(config: DemoConfig, log: Log = print) -> DemoOutputs:
    """All the steps of the module doc, in order; returns what was written.

    Raises:
        SeqaceError: a step failed (the message says which and why); an operating-system
            error on the demo's files or child processes comes out as a ``DemoError``.
    """
    try:
        return _run_steps(config, log)
    except SeqaceError:
        raise
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        raise DemoError(f"{where}{error.strerror or error}") from error


def _run_steps(config: DemoConfig, log: Log) -> DemoOutputs:
    started = time.monotonic()
    bags = prepare_bags(config.scene, config.scene_dir, log)
    scene_s = time.monotonic() - started
    (config.run_dir / "logs").mkdir(parents=True, exist_ok=True)
    map_path = build_map(config, bags, log)
    mapping_s = time.monotonic() - started - scene_s
    frames = read_query_frames(bags)
    result = localize_stream(config, map_path, frames, config.run_dir, log)
    extras = {
        "scene": config.scene.name,
        "mapping_preset": config.mapping_preset,
        "mapping_iterations": config.mapping_iterations or None,
        "seconds": {"scene": round(scene_s, 1), "mapping": round(mapping_s, 1),
                    "total": round(time.monotonic() - started, 1)},
        "config": {**asdict(config), "out_dir": str(config.out_dir),
                   "scene": {**asdict(config.scene), "data_dir": None if config.scene.data_dir
                             is None else str(config.scene.data_dir)}},
    }
    return write_outputs(config, frames, result, map_path, extras)
