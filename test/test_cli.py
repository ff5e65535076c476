"""The ``seqace`` command: one-line errors with no traceback or partial output; a real tiny run."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from data_paths import REPO_ROOT, require_redkitchen

from seqace_ros.cli import COMMANDS, build_parser, main
from seqace_ros.core.map_file import load_map, save_map
from seqace_ros.datasets.trajectory import read_tum_trajectory


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, err: str, fragment: str) -> None:
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("seqace: error:")
    assert fragment in lines[0]


def test_commands_are_registered() -> None:
    assert {c.name for c in COMMANDS} >= {"map", "eval", "localize"}
    args = build_parser().parse_args(["eval", "data", "m.map", "--frames", "1:3"])
    assert args.mode == "single"


def test_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.map"
    status, _, err = run_cli(["map", str(tmp_path / "nope"), "--out", str(out)], capsys)
    assert_one_line_error(status, err, "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder_fails_before_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run_cli(["map", str(tmp_path), "--out", str(tmp_path / "a" / "m.map")],
                             capsys)
    assert_one_line_error(status, err, "does not exist")


def test_corrupt_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = require_redkitchen()
    bad_map = tmp_path / "bad.map"
    bad_map.write_bytes(b"\x00" * 100)
    report = tmp_path / "r.json"
    status, _, err = run_cli(["eval", str(data), str(bad_map), "--frames", "500:502",
                              "--json", str(report)], capsys)
    assert_one_line_error(status, err, "bad.map")
    assert not report.exists()


def test_bad_frame_range_and_intrinsics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = require_redkitchen()
    status, _, err = run_cli(["localize", str(data), str(tmp_path / "m"), "--frames", "690:800",
                              "--out", str(tmp_path / "p.txt")], capsys)
    assert_one_line_error(status, err, "frame range")
    status, _, err = run_cli(["localize", str(data), str(tmp_path / "m"), "--intrinsics", "1,2",
                              "--out", str(tmp_path / "p.txt")], capsys)
    assert_one_line_error(status, err, "4 numbers")
    assert list(tmp_path.iterdir()) == []


def test_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "seqace_ros.cli", "eval", str(tmp_path / "none"),
         str(tmp_path / "m.map")],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().startswith("seqace: error:")


@pytest.mark.real_data
@pytest.mark.slow
def test_map_eval_localize_tiny_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = require_redkitchen()
    map_path = tmp_path / "scene.map"
    status, out, _ = run_cli(["map", str(data), "--frames", "0:12", "--out", str(map_path),
                              "--preset", "test", "--iterations", "300", "--device", "cpu",
                              "--quiet"], capsys)
    assert status == 0
    assert "map written" in out
    assert "self-check on 1 withheld frames (1 in 10)" in out  # frame 9 was not trained on
    assert map_path.stat().st_size > 0
    report_path, plot_path = tmp_path / "r.json", tmp_path / "p.png"
    status, out, _ = run_cli(["eval", str(data), str(map_path), "--frames", "2:4", "--mode",
                              "single", "--json", str(report_path), "--plot", str(plot_path),
                              "--device", "cpu", "--quiet"], capsys)
    assert status == 0
    report = json.loads(report_path.read_text())
    assert report["n_queries"] == 2
    assert report["mode"] == "single"
    assert report["map_bytes"] == map_path.stat().st_size
    assert 0.0 <= report["recall_5cm_5deg"] <= 1.0
    assert plot_path.read_bytes()[:4] == b"\x89PNG"
    poses_path = tmp_path / "poses.txt"
    status, out, _ = run_cli(["localize", str(data), str(map_path), "--frames", "2:4",
                              "--out", str(poses_path), "--device", "cpu", "--quiet"], capsys)
    assert status == 0  # frames 2 and 3 were mapped: a 300-step map localizes both
    assert "2 of 2 frames localized" in out
    trajectory = read_tum_trajectory(poses_path)
    assert trajectory.stamps_ns.tolist() == [2, 3]
    assert np.all(np.isfinite(trajectory.T_world_body_N44))
    assert load_map(map_path).keyframes is not None  # the test preset stores 8
    status, out, _ = run_cli(["eval", str(data), str(map_path), "--frames", "2:4", "--mode",
                              "sequence", "--refine", "--device", "cpu", "--quiet"], capsys)
    assert status == 0
    assert json.loads(out)["n_queries"] == 2
    status, _, err = run_cli(["eval", str(data), str(map_path), "--frames", "2:4",
                              "--num-keypoints", "3", "--quiet"], capsys)
    assert status == 2
    assert err.strip().splitlines() == [
        "seqace: error: need top_k >= 4, nms_radius >= 0, max_hypotheses >= 1; got 3, 1, 64"]
    plain = save_map(replace(load_map(map_path), keyframes=None), tmp_path / "plain.map")
    status, out, err = run_cli(["localize", str(data), str(plain), "--frames", "2:4", "--out",
                                str(tmp_path / "refined.txt"), "--refine", "--quiet"], capsys)
    assert status == 2
    assert err.strip().splitlines() == [
        "seqace: error: refinement needs a map with keyframes; this map has none (map again "
        "with keyframes, or turn refine off)"]
    assert not (tmp_path / "refined.txt").exists()


def test_every_option_has_a_help_line_and_no_markup() -> None:
    parser = build_parser()
    assert "``" not in parser.format_help()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        assert "``" not in sub.format_help(), name
        for action in sub._actions:
            assert action.help, f"seqace {name} {action.option_strings or action.dest}"
