"""Mapping time, map size and peak memory of ``seqace map``, printed as JSON.

Runs ``seqace map`` as a child process and takes its peak resident set size from the kernel
(``os.wait4``: the child's ``ru_maxrss``, which covers its own waited-for children too), its
wall time, and the map's size and stage timings from the map's report
(``MAP.report.json``). With ``--reuse`` it maps nothing and reads an existing map's report:
peak memory is then not measured (``null``).

Usage::

    .venv/bin/python bench/mapping_bench.py --out MAP [--data DIR] [--frames 0:500] \
        [--preset cpu] [--batch-size N] [--threads 1] [--device cpu] [--json OUT.json]
    .venv/bin/python bench/mapping_bench.py --reuse MAP [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_report import emit_report, platform_info

from seqace_ros.pipeline.mapping.report import ReportPaths

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "redkitchen_dev"


class MappingRunError(RuntimeError):
    """``seqace map`` exited with an error."""


def run_seqace_map(data: Path, frames: str, out: Path, preset: str, threads: int,
                   device: str = "cpu", iterations: int | None = None,
                   batch_size: int | None = None) -> dict[str, Any]:
    """Map ``frames`` of ``data`` into ``out`` with ``seqace map`` in a child process, on
    ``device`` (cpu, cuda or auto), with ``iterations`` training steps of ``batch_size``
    patches (None: the preset's).

    Returns:
        ``wall_s`` (child's wall time), ``peak_rss_mb`` (child's peak resident set, MiB) and
        ``command``.

    Raises:
        MappingRunError: when the child fails (its output is in the message).
    """
    command = [sys.executable, "-m", "seqace_ros.cli", "map", str(data), "--frames", frames,
               "--out", str(out), "--preset", preset, "--threads", str(threads), "--quiet",
               "--device", device]
    if iterations is not None:
        command += ["--iterations", str(iterations)]
    if batch_size is not None:
        command += ["--batch-size", str(batch_size)]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        # wait4, not Popen.wait: it returns the child's resource usage
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall_s = time.perf_counter() - start
        if child.returncode != 0:
            log.seek(0)
            raise MappingRunError(f"seqace map exited with {child.returncode}:\n"
                                  f"{log.read().decode(errors='replace')}")
    return {"wall_s": round(wall_s, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),
            "command": " ".join(command[2:])}


def mapping_summary(map_path: Path) -> dict[str, Any]:
    """Map size, frames, stage timings and self-check from the report next to ``map_path``.

    Raises:
        FileNotFoundError: when the map has no report.
    """
    report_path = ReportPaths.for_map(map_path).json
    report = json.loads(report_path.read_text())
    return {"map": str(map_path), "map_bytes": report["map"]["bytes"],
            "frames_used": report["frames"]["used"], "source": report["source"],
            "iterations": report["training"]["iterations"],
            "batch_size": report["mapping_config"]["batch_size"], "timing_s": report["timing_s"],
            "device": report["training"]["device"], "self_check": report["self_check"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="map to write (runs seqace map)")
    target.add_argument("--reuse", type=Path, help="existing map: read its report only")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--frames", default="0:500")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="patches per training step (default: the preset's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--json", type=Path, default=None, help="report file to write")
    args = parser.parse_args()
    report: dict[str, Any] = {"benchmark": "mapping", "load_average_start": os.getloadavg()}
    if args.out is not None:
        report["run"] = run_seqace_map(args.data, args.frames, args.out, args.preset,
                                       args.threads, args.device, batch_size=args.batch_size)
        report["threads"] = args.threads
        map_path = args.out
    else:
        if not args.reuse.is_file():
            parser.error(f"--reuse {args.reuse}: no such file")
        report["run"] = {"wall_s": None, "peak_rss_mb": None,
                         "note": "map reused, not run here: peak memory not measured"}
        map_path = args.reuse
    report.update(mapping_summary(map_path))
    report["load_average_end"] = os.getloadavg()
    report["platform"] = platform_info()
    emit_report(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
