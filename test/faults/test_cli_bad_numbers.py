"""Every numeric option of every ``seqace`` command, given a bad value (not a number, NaN,
infinite, negative, zero where a positive value is needed, out of range), ends the command
with exit status 2 and one ``seqace: error:`` line naming the problem: no traceback, no output.

The dataset folder has no calibration files, so ``--focal`` and ``--intrinsics`` are used, and
the map is a valid map for the default encoder, so nothing else fails first. The folder
commands get ``--focal 50`` before the option tried, which overrides it when it is a focal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from data_paths import REPO_ROOT
from two_frame_scene import write_two_frame_scene

from seqace_ros.cli import main
from seqace_ros.core.encoder import xfeat_weights_path
from seqace_ros.core.file_hash import file_sha256
from seqace_ros.core.head import HeadConfig, SceneHead
from seqace_ros.core.map_file import SceneMap, save_map

FAST_MAPPING = ("--preset", "test", "--iterations", "5", "--quiet")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An uncalibrated 7-Scenes folder of two frames, a bag of them, and a map."""
    root = tmp_path_factory.mktemp("inputs")
    folder, bag = write_two_frame_scene(root, focal_file=False)
    head = SceneHead(HeadConfig(in_channels=192, width=32, num_blocks=1), torch.zeros(3))
    scene_map = SceneMap.from_head(head, "xfeat-ms192", file_sha256(xfeat_weights_path()), 480,
                                   {})
    return {"folder": folder, "bag": bag, "map": save_map(scene_map, root / "scene.map")}


NUMBERS_OF_A_FOLDER = [  # eval, localize and map take them
    (["--focal", "nan"], "focal length must be a finite number > 0, got nan"),
    (["--focal", "inf"], "focal length must be a finite number > 0, got inf"),
    (["--focal", "-5"], "focal length must be a finite number > 0, got -5.0"),
    (["--focal", "0"], "focal length must be a finite number > 0, got 0.0"),
    (["--focal", "five"], "argument --focal: invalid float value: 'five'"),
    (["--intrinsics", "0,500,32,32"], "focal lengths must be positive, got fx=0.0, fy=500.0"),
    (["--intrinsics", "500,-500,32,32"], "focal lengths must be positive"),
    (["--intrinsics", "500,500,nan,32"], "intrinsics must be finite"),
    (["--intrinsics", "500,500,32,inf"], "intrinsics must be finite"),
    (["--intrinsics", "1,2"], "intrinsics need 4 numbers fx,fy,cx,cy, got 2"),
    (["--intrinsics", "a,b,c,d"], "intrinsics must be fx,fy,cx,cy numbers"),
    (["--frames", "1:x"], "frame range must look like START:END"),
    (["--frames", "2:1"], "is empty or outside the 2 frames available"),
    (["--threads", "0"], "--threads must be between 1 and"),
    (["--threads", "100000"], "--threads must be between 1 and"),
    (["--threads", "1.5"], "argument --threads: invalid int value: '1.5'"),
]

NUMBERS_OF_TRAINING = [  # map and bag-map take them
    (["--iterations", "-3"], "iterations must be >= 0 and <= 10000000, got -3"),
    (["--iterations", "0"], "augmentation_passes, iterations and batch_size must be >= 1"),
    (["--iterations", "nan"], "argument --iterations: invalid int value: 'nan'"),
    (["--batch-size", "0"], "augmentation_passes, iterations and batch_size must be >= 1"),
    (["--batch-size", "-5"], "batch_size must be >= 0 and <= 10000000, got -5"),
    (["--seed", "-1"], "seed must be >= 0 and <= 2147483647, got -1"),
    (["--seed", "2147483648"], "seed must be >= 0 and <= 2147483647, got 2147483648"),
]

NUMBERS_OF_A_BAG = [
    (["--max-gap", "nan"], "max_gap_s must be >= 0.0 and <= 3600.0, got nan"),
    (["--max-gap", "inf"], "max_gap_s must be >= 0.0 and <= 3600.0, got inf"),
    (["--max-gap", "-0.1"], "max_gap_s must be >= 0.0 and <= 3600.0, got -0.1"),
    (["--min-translation", "-1"], "min_translation_m must be >= 0.0 and <= 1000.0, got -1.0"),
    (["--min-translation", "nan"], "min_translation_m must be >= 0.0 and <= 1000.0, got nan"),
    (["--min-rotation", "inf"], "min_rotation_deg must be >= 0.0 and <= 180.0, got inf"),
    (["--min-rotation", "181"], "min_rotation_deg must be >= 0.0 and <= 180.0, got 181.0"),
    (["--max-frames", "-2"], "max_frames must be >= 0 and <= 10000000, got -2"),
    (["--max-frames", "0"], "max_frames must be >= 1 or None, got 0"),
    (["--depth-topic", "/camera/image_raw", "--depth-to-colour", "0,0,nan"],
     "depth_to_colour needs 3 or 7 finite numbers"),
    (["--depth-topic", "/camera/image_raw", "--depth-to-colour", "0,0,0,0,0,0,2"],
     "depth_to_colour quaternion must have unit length"),
]

NUMBERS_OF_SYNTH = [
    (["--seed", "-1"], "seed must be an integer >= 0 and <= 2147483647, got -1"),
    (["--seed", "2147483648"], "seed must be an integer >= 0 and <= 2147483647, got 2147483648"),
    (["--mapping-frames", "0"], "n_mapping_frames must be an integer >= 1 and <= 20000, got 0"),
    (["--mapping-frames", "-4"], "n_mapping_frames must be an integer >= 1 and <= 20000, got -4"),
    # Absurd sizes are refused before anything is rendered (they used to render for ever).
    (["--mapping-frames", "100000000000"],
     "n_mapping_frames must be an integer >= 1 and <= 20000, got 100000000000"),
    (["--mapping-frames", "20001"], "n_mapping_frames must be an integer >= 1 and <= 20000"),
    (["--query-frames", "-1"], "n_query_frames must be"),
    (["--query-frames", "100000000000"],
     "n_query_frames must be an integer >= 0 and <= 20000, got 100000000000"),
    (["--query-frames", "1e2"], "argument --query-frames: invalid int value: '1e2'"),
]


def command_cases() -> list[tuple[str, list[str], str]]:
    cases = []
    for command in ("eval", "localize", "map"):
        cases += [(command, option, message) for option, message in NUMBERS_OF_A_FOLDER]
    for command in ("map", "bag-map"):
        cases += [(command, option, message) for option, message in NUMBERS_OF_TRAINING]
    cases += [("map", ["--depth", "--depth-to-colour", "1,2,nan"],
               "depth_to_colour needs 3 or 7 finite numbers")]
    cases += [("bag-map", option, message) for option, message in NUMBERS_OF_A_BAG]
    cases += [("bag-map", ["--threads", "-1"], "--threads must be between 1 and")]
    cases += [("synth", option, message) for option, message in NUMBERS_OF_SYNTH]
    return cases


def argv_of(command: str, inputs: dict[str, Path], out: Path) -> list[str]:
    folder, bag, map_path = (str(inputs[k]) for k in ("folder", "bag", "map"))
    return {
        "eval": ["eval", folder, map_path, "--json", str(out / "r.json"), "--plot",
                 str(out / "r.png"), "--focal", "50", "--quiet"],
        "localize": ["localize", folder, map_path, "--out", str(out / "poses.txt"), "--focal",
                     "50", "--quiet"],
        "map": ["map", folder, "--out", str(out / "m.map"), "--focal", "50", *FAST_MAPPING],
        "bag-map": ["bag-map", bag, "--out", str(out / "m.map"), *FAST_MAPPING],
        "synth": ["synth", str(out / "scene"), "--mapping-frames", "2", "--query-frames", "1"],
    }[command]


@pytest.mark.parametrize(("command", "option", "message"), command_cases())
def test_bad_number_gives_one_error_line_and_exit_2(
    tmp_path: Path, inputs: dict[str, Path], capsys: pytest.CaptureFixture[str],
    command: str, option: list[str], message: str,
) -> None:
    status = main([*argv_of(command, inputs, tmp_path), *option])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("seqace: error: ")
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_the_issue_commands_print_no_traceback(tmp_path: Path, inputs: dict[str, Path]) -> None:
    for option in (["--focal", "nan"], ["--intrinsics", "0,500,32,32"]):
        completed = subprocess.run(
            [sys.executable, "-m", "seqace_ros.cli",
             *argv_of("localize", inputs, tmp_path), *option],
            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False)
        assert completed.returncode == 2
        assert completed.stderr.splitlines() == [completed.stderr.strip()], completed.stderr
        assert completed.stderr.startswith("seqace: error: ")
    assert list(tmp_path.iterdir()) == []
