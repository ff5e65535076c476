"""bench/gpu_check.sh: without CUDA it stops at the torch step in one line unless --allow-cpu;
the CPU dry run runs every step (map, both modes, the node) and writes the whole report; a
failed step writes nothing."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bench_report import platform_info
from data_paths import require_redkitchen
from ros_harness import import_ros_module

from seqace_ros.pipeline.evaluation import EvaluationReport

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.sh"
#: A dry run small enough for CI: a test-preset map of 30 frames, the 6 frames after them as
#: queries and as the node's frames (at 2 Hz: on a loaded machine the node's first, slow frame
#: must leave time for a pose within the paced phase).
DRY_RUN = ["--allow-cpu", "--preset", "test", "--iterations", "150", "--map-frames", "0:30",
           "--queries", "30:36", "--warmup", "1", "--node-frames", "30:36", "--node-rate", "2",
           "--flood-rate", "10", "--flood-seconds", "2", "--threads", "1"]


def run_check(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """``bash bench/gpu_check.sh --python <this interpreter> ARGS`` (no setup)."""
    return subprocess.run(["bash", str(SCRIPT), "--python", sys.executable, *args],
                          capture_output=True, text=True, timeout=timeout_s, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def messages(stderr: str) -> list[str]:
    """The lines of ``stderr`` other than the step announcements (``== gpu_check: STEP``) and
    the torch step's own line (``torch VERSION (...) on DEVICE``)."""
    return [line for line in stderr.splitlines()
            if line and not line.startswith(("== gpu_check: ", "torch "))]


def test_without_cuda_it_stops_at_the_torch_step_in_one_line(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the check would run")
    out = tmp_path / "gpu_check.json"
    completed = run_check("--out", str(out), timeout_s=120)
    assert completed.returncode == 1
    [line] = messages(completed.stderr)
    assert line == completed.stderr.splitlines()[-1]
    assert line.startswith(f"gpu_check: step torch failed: torch {torch.__version__} ")
    assert "CPU build" in line
    assert "--allow-cpu" in line
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""
    assert not out.exists()


def test_bad_option_of_the_script_exits_2() -> None:
    completed = subprocess.run(["bash", str(SCRIPT), "--python"], capture_output=True,
                               text=True, timeout=60, check=False)
    assert completed.returncode == 2
    assert completed.stderr.strip() == "gpu_check.sh: --python needs an interpreter"


@pytest.mark.slow
@pytest.mark.real_data
def test_a_failed_step_names_itself_and_writes_nothing(tmp_path: Path) -> None:
    data = require_redkitchen()
    out = tmp_path / "gpu_check.json"
    out.write_text("an earlier result\n")
    # 0 training steps: seqace map refuses them after the torch and preflight steps passed
    completed = run_check(*DRY_RUN, "--iterations", "0", "--data", str(data), "--out", str(out),
                          timeout_s=300)
    assert completed.returncode == 1
    last = completed.stderr.splitlines()[-1]
    assert last == "gpu_check: step map failed: seqace map exited with 2"
    assert "iterations" in completed.stderr  # the child's own error is shown above
    assert out.read_text() == "an earlier result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_check.json"]


@pytest.mark.slow
@pytest.mark.ros
@pytest.mark.real_data
def test_cpu_dry_run_runs_every_step_and_writes_one_report(tmp_path: Path) -> None:
    data = require_redkitchen()
    import_ros_module("rclpy")
    results = tmp_path / "results"
    results.mkdir()
    out = results / "gpu_check.json"
    work = tmp_path / "work"
    completed = run_check(*DRY_RUN, "--data", str(data), "--out", str(out), "--work-dir",
                          str(work), timeout_s=600)
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert sorted(p.name for p in results.iterdir()) == ["gpu_check.json"]
    report = json.loads(out.read_text())
    assert json.loads(completed.stdout)["out"] == str(out)

    # which torch, on which device
    gpu = torch.cuda.is_available()
    device = "cuda" if gpu else "cpu"
    assert report["gpu_run"] is gpu
    assert report["torch"]["version"] == torch.__version__
    assert report["torch"]["cuda"] == torch.version.cuda
    assert report["torch"]["python"] == sys.executable
    assert report["device"]["type"] == device
    if not gpu:
        assert report["note"].startswith("NOT a GPU run: --allow-cpu dry run on the CPU")
        assert "CPU build" in report["device"]["why_not_cuda"]

    # the map: trained here, on the device, with the settings asked for
    mapping = report["mapping"]
    map_path = work / "dev_test.map"
    assert (mapping["preset"], mapping["frames"], mapping["iterations"]) == ("test", "0:30", 150)
    assert mapping["device"] == device
    assert f"--device {device}" in mapping["run"]["command"]
    assert mapping["run"]["wall_s"] > 0
    assert mapping["run"]["peak_rss_mb"] > 0
    assert mapping["map"] == str(map_path)
    assert mapping["map_bytes"] == map_path.stat().st_size
    assert mapping["self_check"]["n_frames"] == 3  # every 10th of 30 withheld
    assert report["work_dir"] == str(work)

    # both modes, with the project's report keys
    evaluation = report["evaluation"]
    assert evaluation["queries"] == "30:36"
    assert evaluation["warmup_frames"] == 1
    keys = {field.name for field in dataclasses.fields(EvaluationReport)}
    for mode in ("single", "sequence"):
        result = evaluation[mode]
        assert keys <= result.keys()
        assert result["mode"] == mode
        assert result["n_queries"] == 6
        assert result["map_bytes"] == map_path.stat().st_size
        assert result["mean_latency_ms"] > 0
        assert result["stage_ms"]["total"] == pytest.approx(result["mean_latency_ms"], abs=0.01)
        for recall in ("recall_5cm_5deg", "recall_2cm_2deg", "recall_1cm_1deg"):
            assert 0.0 <= result[recall] <= 1.0
    # a map of frames 0-29 places the next frames within centimetres (3 cm when written)
    assert evaluation["single"]["median_translation_cm"] < 15.0

    # the node over DDS
    node = report["node_latency"]
    assert node["config"]["device"] == device
    assert node["config"]["frames"] == "30:36"
    assert node["paced"]["frames"] == 6
    assert 1 <= node["paced"]["poses"] <= 6
    assert node["sustained"]["frames"] == 20
    assert "platform" not in node

    # where, when, how
    assert list(report["steps_s"]) == ["torch", "preflight", "map", "eval", "node"]
    assert report["platform"].keys() == platform_info().keys()
    assert report["command"].startswith(f"bash bench/gpu_check.sh --python {sys.executable} ")
    assert "--allow-cpu" in report["command"]
    started = datetime.datetime.fromisoformat(report["started_utc"])
    finished = datetime.datetime.fromisoformat(report["finished_utc"])
    assert started <= finished <= datetime.datetime.now(datetime.timezone.utc)
