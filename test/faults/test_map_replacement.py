"""Replacing a map never loses the previous one: a full disk or a failing rename while the new
map and its report are written leaves the old map and report byte for byte, and no temporary."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from disk_faults import fail_fsync_of, fail_replace_onto

from seqace_ros.core.geometry import make_transform
from seqace_ros.core.head import HeadConfig, SceneHead
from seqace_ros.core.map_file import SceneMap, load_map
from seqace_ros.core.stop import StopRequested, stop_on_signals
from seqace_ros.pipeline.mapping import preset
from seqace_ros.pipeline.mapping.mapper import MappingStats
from seqace_ros.pipeline.mapping.report import (
    FrameAccounting,
    LossCurve,
    MappingOutputError,
    ReportPaths,
    write_map_and_report,
)

CONFIG = preset("test", iterations=3)


def scene_map(seed: int) -> SceneMap:
    """A small map whose weights depend on ``seed``."""
    torch.manual_seed(seed)
    head = SceneHead(HeadConfig(in_channels=16, width=32, num_blocks=1),
                     torch.tensor([0.0, 0.0, float(seed)]))
    stats = MappingStats(frames=3, buffer_patches=10, salient_patches=5, encode_seconds=0.1,
                         train_seconds=0.2, iterations=3, patches_seen=30, final_loss=1.0,
                         final_valid_fraction=0.5, device="cpu")
    return SceneMap.from_head(head, "xfeat-ms192", "ab" * 32, 480, stats.to_metadata(CONFIG))


def write(seed: int, target: Path) -> None:
    curve = LossCurve()
    curve(0, 3.0 + seed, 0.5)
    T_world_cam_N44 = np.stack([make_transform(np.eye(3), [0.1 * i, 0.0, seed]) for i in range(3)])
    write_map_and_report(scene_map(seed), CONFIG, target, {"kind": "test", "seed": seed},
                         FrameAccounting(3, 3), T_world_cam_N44, curve,
                         started_at=time.perf_counter(), read_seconds=0.0)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.fixture
def old_map(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A previous map with its report in ``tmp_path``, and the bytes of all four files."""
    target = tmp_path / "m.safetensors"
    write(1, target)
    before = snapshot(tmp_path)
    assert sorted(before) == ["m.loss.png", "m.report.json", "m.safetensors",
                              "m.trajectory.png"]
    return target, before


@pytest.mark.parametrize("failing", ["m.report.json", "m.trajectory.png", "m.loss.png",
                                     "m.safetensors"])
def test_full_disk_while_replacing_keeps_the_previous_map_and_report(
    old_map: tuple[Path, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target, before = old_map
    fail_fsync_of(monkeypatch, f".{failing}.")  # the temporary file(s) of that output
    with pytest.raises(MappingOutputError, match="No space left on device; nothing was left "
                       "behind and no file was replaced"):
        write(2, target)
    assert snapshot(target.parent) == before  # same names (no temporary), same bytes


def test_failing_rename_in_the_middle_puts_back_what_was_replaced(
    old_map: tuple[Path, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, before = old_map
    # The plots are renamed first; the report's rename fails after them.
    fail_replace_onto(monkeypatch, lambda dst: dst.endswith("/m.report.json"))
    with pytest.raises(MappingOutputError, match="Input/output error"):
        write(2, target)
    assert snapshot(target.parent) == before


def test_a_stop_signal_before_the_renames_replaces_nothing(
    old_map: tuple[Path, dict[str, bytes]]
) -> None:
    target, before = old_map
    with stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)  # only sets the stop flag inside the block
        with pytest.raises(StopRequested) as stopped:
            write(2, target)
    assert stopped.value.exit_status == 143
    assert snapshot(target.parent) == before


def test_a_successful_replacement_replaces_all_four_files(
    old_map: tuple[Path, dict[str, bytes]]
) -> None:
    target, before = old_map
    target.chmod(0o640)
    write(2, target)
    after = snapshot(target.parent)
    assert sorted(after) == sorted(before)
    assert all(after[name] != before[name] for name in before)
    assert load_map(target).scene_centre_3 == pytest.approx((0.0, 0.0, 2.0))
    assert target.stat().st_mode & 0o777 == 0o640  # the replaced map's permissions
    assert ReportPaths.for_map(target).json.read_text().count('"seed": 2') == 1
