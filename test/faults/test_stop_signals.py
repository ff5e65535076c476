"""SIGINT and SIGTERM during mapping: ``seqace map``, ``seqace bag-map`` and ``mapping_node``
stop within 2 s, exit 130 / 143, print no traceback and leave nothing in the output folder (no
map, no report, no ``.NAME.XXXX.tmp``), also when they replace an earlier map.

Real processes on a tiny scene (two 64x48 frames, the ``test`` preset, 10^6 training steps so
that training is still running when the signal is sent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from data_paths import REPO_ROOT
from ros_harness import import_ros_module, wait_for
from two_frame_scene import write_two_frame_scene

STOP_WITHIN_S = 2.0
LONG_TRAINING = ("--preset", "test", "--iterations", "1000000", "--device", "cpu")
SIGNALS = [signal.SIGINT, signal.SIGTERM]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 7-Scenes folder of two frames (with a focal file) and a bag of the same frames."""
    root = tmp_path_factory.mktemp("scene")
    folder, bag = write_two_frame_scene(root, focal_file=True)
    return {"folder": folder, "bag": bag}


def stop_during_training(argv: list[str], log: Path, signum: int) -> tuple[int, float, str]:
    """Run ``seqace ARGV``, send ``signum`` once it trains; exit status, seconds to exit, log."""
    with log.open("wb") as stream:
        process = subprocess.Popen([sys.executable, "-m", "seqace_ros.cli", *argv],
                                   stdout=stream, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        wait_for(lambda: "training:" in log.read_text(errors="replace") or (
            process.poll() is not None), 300, "training to start", poll_s=0.05)
        assert process.poll() is None, log.read_text(errors="replace")
        process.send_signal(signum)
        sent = time.monotonic()
        status = process.wait(timeout=60)
        return status, time.monotonic() - sent, log.read_text(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("command", ["map", "bag-map"])
def test_the_command_stops_within_2_s_and_writes_nothing(
    tmp_path: Path, scene: dict[str, Path], command: str, signum: int
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    source = str(scene["folder" if command == "map" else "bag"])
    status, seconds, log = stop_during_training(
        [command, source, "--out", str(out / "m.safetensors"), *LONG_TRAINING],
        tmp_path / "seqace.log", signum)
    assert status == 128 + signum, log
    assert seconds < STOP_WITHIN_S, log
    assert "Traceback" not in log
    assert f"seqace: stopped by {signal.Signals(signum).name}; nothing written" in log
    assert list(out.iterdir()) == []


def test_a_stopped_replacement_keeps_the_previous_map(
    tmp_path: Path, scene: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    previous = {"m.safetensors": b"previous map", "m.report.json": b"{}\n"}
    for name, data in previous.items():
        (out / name).write_bytes(data)
    status, seconds, log = stop_during_training(
        ["map", str(scene["folder"]), "--out", str(out / "m.safetensors"), *LONG_TRAINING],
        tmp_path / "seqace.log", signal.SIGTERM)
    assert (status, seconds < STOP_WITHIN_S) == (143, True), log
    assert {p.name: p.read_bytes() for p in out.iterdir()} == previous


@pytest.mark.ros
@pytest.mark.parametrize("signum", SIGNALS)
def test_the_mapping_node_stops_within_2_s_and_writes_nothing(
    tmp_path: Path, scene: dict[str, Path], start_ros_process: Any, signum: int
) -> None:
    import_ros_module("rclpy")
    out = tmp_path / "out"
    out.mkdir()
    node = start_ros_process("seqace_ros.ros.mapping_node", {
        "bag_path": str(scene["bag"]), "map_path": str(out / "m.safetensors"),
        "preset": "test", "iterations": 1_000_000, "device": "cpu", "progress_period_s": 0.0,
    }, name="mapping", extra_env={"OMP_NUM_THREADS": "1"})
    node.wait_for_log("train 1/1000000", 300)
    os.kill(node.pid, signum)
    sent = time.monotonic()
    status = node.wait(60)
    seconds = time.monotonic() - sent
    assert status == 128 + signum, node.describe()
    assert seconds < STOP_WITHIN_S, node.describe()
    assert "Traceback" not in node.log_text()
    assert "no map written" in node.log_text()
    assert list(out.iterdir()) == []
