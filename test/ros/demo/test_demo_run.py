"""The demo end to end as a real process: a tiny synthetic room rendered into bags, mapped by
``mapping_node``, relocalized by ``relocalization_node`` fed over DDS (loopback, this test run's
domain), scored; plus bad input (one error line, nothing written) and interruption (no node
left running)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ros_harness import import_ros_module, wait_for

import_ros_module("rclpy")

from seqace_ros.pipeline.evaluation import DESIGN_REPORT_KEYS  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
DEMO = [sys.executable, "-m", "seqace_ros.ros.demo"]
#: 14 mapping frames of the tiny room and 12 query frames; the test preset, 300 steps.
TINY = ["--scene-preset", "tiny", "--mapping-frames", "14", "--query-frames", "12",
        "--preset", "test", "--iterations", "300", "--device", "cpu"]
#: Bounds on the median errors of the tiny demo, in either mode, that hold on every CPU.
#: Training numerics differ between CPUs (AVX2 against AVX-512 kernels) and thread counts, and
#: each difference redraws the map as a new seed would. Measured 2026-12 on a 2-core AMD EPYC,
#: single mode, 32 maps (mapping seeds 0-7 x {AVX-512 kernels, AVX2-only kernels via
#: ATEN_CPU_CAPABILITY=avx2} x {1, 2} threads): median errors 3.9 to 7.8 cm and 0.75 to
#: 1.8 deg; sequence mode on the five worst of those maps up to 8.0 cm / 1.7 deg. A broken
#: pipeline is far off: a map trained 30 steps instead of 300 gives 100 cm / 13 deg. The bounds
#: sit about twice above the worst map measured and several times below that failure. Recall
#: at 5 cm / 5 deg is not asserted: this tiny map's median error lies at the 5 cm threshold,
#: so the recall of one map swings from 0 to 1.0 with the seed or the CPU alone (the AVX2-only
#: kernels reproduce the 0.167 seen on an AVX2 CI machine with seed 0); more queries would
#: not help, as the spread is between maps, not between query samples.
MAX_MEDIAN_CM = 15.0
MAX_MEDIAN_DEG = 4.0


def assert_report_is_valid(report: dict, mode: str) -> None:
    """DESIGN's report keys, with values in their ranges, and every query answered."""
    assert DESIGN_REPORT_KEYS | {"latency_p50_ms", "latency_p95_ms", "n_poses"} <= set(report)
    assert report["mode"] == mode
    assert report["n_queries"] == report["n_poses"] == 12, report
    assert 0.0 <= report["recall_1cm_1deg"] <= report["recall_2cm_2deg"] <= (
        report["recall_5cm_5deg"]) <= 1.0, report
    assert 0.0 <= report["median_translation_cm"] < MAX_MEDIAN_CM, report
    assert 0.0 <= report["median_rotation_deg"] < MAX_MEDIAN_DEG, report
    assert report["mean_latency_ms"] > 0.0
    assert report["hz"] > 0.0
    assert report["map_bytes"] > 0


def run_demo(arguments: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DEMO, *arguments], capture_output=True, text=True,
                          timeout=timeout_s, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                          check=False)


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains ``text``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_demo_maps_relocalizes_over_dds_and_reports(tmp_path: Path) -> None:
    # 1 Hz leaves the node a second per frame even on a busy CI machine: no frame dropped
    completed = run_demo([*TINY, "--rate", "1", "--out", str(tmp_path)], timeout_s=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "== seqace_ros demo report ==" in completed.stdout
    out = completed.stdout.split("== seqace_ros demo report ==", 1)[1]
    report_path = Path(out.split("report: ", 1)[1].splitlines()[0])
    plot_path = Path(out.split("plot:   ", 1)[1].splitlines()[0])
    assert report_path.parent == tmp_path / "synthetic-tiny-s0-14+12" / "test-300-s0" / "single"
    report = json.loads(report_path.read_text())
    assert_report_is_valid(report, "single")
    assert 0.0 < report["latency_p50_ms"] <= report["latency_p95_ms"] < 1000.0
    assert f"recall 5cm/5deg: {report['recall_5cm_5deg']:.3f}" in out
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_path.stat().st_size > 20_000
    map_path = report_path.parent.parent / "map.safetensors"
    assert report["map_bytes"] == map_path.stat().st_size
    assert (map_path.parent / "map.report.json").is_file()  # mapping_node's own report
    assert not processes_mentioning(str(tmp_path)), "a demo node is still running"

    # the other mode on the same map: no second mapping
    completed = run_demo([*TINY, "--rate", "1", "--out", str(tmp_path), "--mode", "sequence",
                          "--reuse-map"], timeout_s=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert f"mapping: reusing {map_path}" in completed.stdout
    assert "mapping_node" not in completed.stdout
    sequence = json.loads((map_path.parent / "sequence" / "report.json").read_text())
    assert_report_is_valid(sequence, "sequence")
    assert sequence["map_bytes"] == report["map_bytes"]


def test_real_without_data_fails_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "redkitchen_dev"
    completed = run_demo(["--real", "--data", str(missing), "--out", str(tmp_path / "out")],
                         timeout_s=120)
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines() == [
        f"seqace demo: error: real data not found: {missing} is not a folder (pass --data DIR "
        "with a 7-Scenes layout folder, e.g. redkitchen_dev)"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--rate", "0"], "rate must be in (0, 100] Hz, got 0.0"),
    (["--iterations", "-1"], "mapping iterations must be >= 0"),
    (["--data", "/tmp"], "--data applies to --real only"),
    (["--real", "--scene-preset", "tiny"], "--scene-preset applies to the synthetic scene"),
])
def test_bad_options_fail_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    from seqace_ros.ros.demo.cli import main

    assert main([*arguments, "--out", str(tmp_path / "out")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("seqace demo: error: ")
    assert message in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # runs scripts/setup.sh (its import checks take seconds)
def test_demo_script_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    completed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh"), "--real", "--data", str(missing), "--out",
         str(tmp_path / "out")], capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 1
    errors = [line for line in completed.stderr.splitlines() if "error" in line]
    assert errors == [f"seqace demo: error: real data not found: {missing} is not a folder "
                      "(pass --data DIR with a 7-Scenes layout folder, e.g. redkitchen_dev)"]


@pytest.mark.slow
def test_sigterm_during_mapping_stops_the_mapping_node(tmp_path: Path) -> None:
    out = tmp_path / "out"
    demo = subprocess.Popen([*DEMO, *TINY[:-4], "--iterations", "100000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for(lambda: processes_mentioning(f"{out}/") and list(out.rglob("mapping_node.log")),
                 120, "the mapping node to start")
        log = next(out.rglob("mapping_node.log"))
        wait_for(lambda: "train" in log.read_text(errors="replace"), 180,
                 "the mapping node to train", poll_s=0.2)
        demo.send_signal(signal.SIGTERM)
        _, stderr = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 128 + signal.SIGTERM, stderr
    deadline = time.monotonic() + 5
    while processes_mentioning(f"{out}/") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_mentioning(f"{out}/"), "the mapping node outlived the demo"
    assert not list(out.rglob("map.safetensors")), "an interrupted mapping left a map"
