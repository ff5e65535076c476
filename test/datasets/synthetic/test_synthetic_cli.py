"""``seqace synth``: the command-line face of the synthetic scene generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqace_ros.cli import main


def test_synth_writes_a_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scene"
    argv = ["synth", str(out), "--preset", "tiny", "--seed", "4", "--bag", str(tmp_path / "bag")]
    assert main([*argv, "--mapping-frames", "3", "--query-frames", "2"]) == 0
    assert "3 mapping + 2 query frames, 160x120" in capsys.readouterr().out
    assert len(list(out.glob("frame-*.color.png"))) == 5
    metadata = json.loads((out / "scene.json").read_text())
    assert metadata["seed"] == 4
    assert metadata["query_frames"] == "3:5"
    assert list((tmp_path / "bag").glob("*.mcap"))


def test_synth_reports_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["synth", str(tmp_path / "a"), "--preset", "tiny", "--mapping-frames", "0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "seqace: error: n_mapping_frames must be an integer >= 1 and <= 20000, got 0"
    )
    assert not (tmp_path / "a").exists()

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    assert main(["synth", str(occupied), "--preset", "tiny"]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_synth_help_gives_the_limits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "frames of the mapping pass, 1 to 20000" in text
    assert "frames of the query pass, 0 to 20000" in text
    assert "(0 to 2147483647)" in text
