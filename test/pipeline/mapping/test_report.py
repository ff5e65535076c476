"""The mapping report and run: file names, frame accounting, output checks, a real tiny mapping
run with its JSON, PNGs and typed stats, and all-or-nothing writing."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_paths import require_redkitchen
from disk_faults import fail_fsync_of

from seqace_ros.core.map_file import load_map
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.pipeline.mapping import preset
from seqace_ros.pipeline.mapping.config import MappingConfig
from seqace_ros.pipeline.mapping.mapper import MappingStats
from seqace_ros.pipeline.mapping.report import (
    FrameAccounting,
    LossCurve,
    MappingOutputError,
    ReportPaths,
    check_output_path,
)
from seqace_ros.pipeline.mapping.run import MappingProgress, map_with_report, training_progress

TINY_CONFIG = preset("test", iterations=41, image_height=128)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_report_paths_sit_beside_the_map() -> None:
    paths = ReportPaths.for_map("/maps/kitchen.safetensors")
    assert paths.json == Path("/maps/kitchen.report.json")
    assert paths.trajectory_png == Path("/maps/kitchen.trajectory.png")
    assert paths.loss_png == Path("/maps/kitchen.loss.png")
    assert ReportPaths.for_map("run.v2.map").json == Path("run.v2.report.json")


def test_frame_accounting_must_add_up() -> None:
    accounting = FrameAccounting(10, 7, {"no_pose_within_max_gap": 2, "below_min_motion": 1})
    assert accounting.used == 7
    with pytest.raises(ValueError, match="add up to the 10 frames"):
        FrameAccounting(10, 7, {"below_min_motion": 1})
    with pytest.raises(ValueError, match=">= 0"):
        FrameAccounting(3, 4, {"over_max_frames": -1})


def test_loss_curve_keeps_the_steps_and_training_progress_reads_them() -> None:
    curve = LossCurve()
    curve(0, 30.0, 0.5)
    curve(20, 12.5, 0.9)
    assert curve.as_dict() == {"step": [0, 20], "loss": [30.0, 12.5],
                               "valid_fraction": [0.5, 0.9]}
    assert training_progress(20, 100, 12.5, 0.9) == MappingProgress(
        "train", 21, 100, "loss 12.500, valid 0.90")


def test_check_output_path_rejects_unwritable_places(tmp_path: Path) -> None:
    assert check_output_path(tmp_path / "m.safetensors") == tmp_path / "m.safetensors"
    with pytest.raises(MappingOutputError, match="is a folder, expected a file"):
        check_output_path(tmp_path)
    with pytest.raises(MappingOutputError, match="does not exist"):
        check_output_path(tmp_path / "no" / "m.safetensors")
    (tmp_path / "file").write_text("x")
    with pytest.raises(MappingOutputError, match="is not a folder"):
        check_output_path(tmp_path / "file" / "m.safetensors")
    (tmp_path / "m.loss.png").mkdir()
    with pytest.raises(MappingOutputError, match=r"report path .*m\.loss\.png.* is a folder"):
        check_output_path(tmp_path / "m.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "m.loss.png"]  # no probe left


@pytest.fixture(scope="module")
def tiny_frames() -> list[PosedFrame]:
    """Eight dev frames (every 6th), 160x120."""
    dataset = FolderDataset(require_redkitchen())
    frames = []
    for index in range(0, 48, 6):
        frame = dataset[index]
        frames.append(dataclasses.replace(
            frame, image_rgb=cv2.resize(frame.image_rgb, (160, 120), interpolation=cv2.INTER_AREA),
            intrinsics=frame.intrinsics.resized(160, 120),
        ))
    return frames


def run_tiny(frames: list[PosedFrame], out: Path,
             events: list[MappingProgress] | None = None,
             config: MappingConfig = TINY_CONFIG) -> Path:
    accounting = FrameAccounting(len(frames) + 2, len(frames), {"outside_frame_range": 2})
    return map_with_report(frames, range(len(frames)), config, out,
                           {"kind": "test", "path": "memory"}, accounting, device="cpu",
                           progress=False, on_progress=None if events is None else events.append,
                           read_seconds=0.25)


@pytest.mark.real_data
def test_map_with_report_writes_map_json_and_plots(
    tmp_path: Path, tiny_frames: list[PosedFrame]
) -> None:
    events: list[MappingProgress] = []
    path = run_tiny(tiny_frames, tmp_path / "tiny.safetensors", events)
    assert path == tmp_path / "tiny.safetensors"
    stats = MappingStats.from_metadata(load_map(path).mapping_stats)
    assert stats.frames == len(tiny_frames)
    assert stats.sequence is None
    assert stats.tracked_patches == 0
    paths = ReportPaths.for_map(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["tiny.safetensors", "tiny.report.json", "tiny.trajectory.png", "tiny.loss.png"])
    report = json.loads(paths.json.read_text())
    assert stats.stored_keyframes == min(TINY_CONFIG.keyframes.count, 8) > 0
    assert report["map"] == {"path": str(path), "bytes": path.stat().st_size,
                             "keyframes": stats.stored_keyframes,
                             "keyframe_bytes": stats.keyframe_bytes, "keyframe_points": "head",
                             "keyframe_depth_limit_m": None}
    assert 0 < stats.keyframe_bytes < path.stat().st_size
    assert report["source"] == {"kind": "test", "path": "memory"}
    assert report["frames"] == {"in_source": 10, "used": 8, "skipped": {"outside_frame_range": 2},
                                "withheld_for_self_check": 0}
    assert report["self_check"] is None
    centres = np.stack([f.T_world_cam[:3, 3] for f in tiny_frames])
    assert report["trajectory"]["frames"] == 8
    np.testing.assert_allclose(report["trajectory"]["min_m"], centres.min(axis=0), atol=1e-4)
    np.testing.assert_allclose(report["trajectory"]["length_m"],
                               np.linalg.norm(np.diff(centres, axis=0), axis=1).sum(), atol=1e-4)
    curve = report["training"]["loss_curve"]
    assert curve["step"] == [0, 20, 40]
    assert all(loss > 0 for loss in curve["loss"])
    assert report["training"]["iterations"] == 41
    timing = report["timing_s"]
    assert timing["read"] == 0.25
    assert timing["total"] >= timing["encode"] + timing["train"] + timing["keyframes"] > 0
    assert report["mapping_config"]["image_height"] == 128
    for png in (paths.trajectory_png, paths.loss_png):
        assert png.read_bytes().startswith(PNG_SIGNATURE)
        image = cv2.imread(str(png))
        assert image.shape[0] > 300
        assert image.shape[1] > 500
        assert image.std() > 10  # something is drawn
    stages = [e.stage for e in events]
    assert stages == sorted(stages, key=["encode", "train", "write"].index)
    last_step = [e for e in events if e.stage == "train"][-1]
    assert (last_step.done, last_step.total) == (41, 41)
    assert re.fullmatch(r"loss \d+\.\d{3}, valid \d\.\d{2}", last_step.detail)
    assert [e.done for e in events if e.stage == "encode"] == list(range(1, 9))
    assert events[-1] == MappingProgress("write", 1, 1, str(path))


@pytest.mark.real_data
def test_failed_report_write_leaves_nothing_behind(
    tmp_path: Path, tiny_frames: list[PosedFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_fsync_of(monkeypatch, ".tiny.report.json.")
    with pytest.raises(MappingOutputError, match="No space left on device; nothing was left"):
        run_tiny(tiny_frames, tmp_path / "tiny.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_accounting_must_match_the_frames_mapped(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3 frames used, got 2"):
        map_with_report([], range(2), TINY_CONFIG, tmp_path / "m.safetensors", {},
                        FrameAccounting(3, 3), device="cpu", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.real_data
def test_the_self_check_relocalizes_the_withheld_frames(
    tmp_path: Path, tiny_frames: list[PosedFrame]
) -> None:
    events: list[MappingProgress] = []
    config = dataclasses.replace(TINY_CONFIG, self_check_every=4)
    path = run_tiny(tiny_frames, tmp_path / "checked.safetensors", events, config)
    assert MappingStats.from_metadata(load_map(path).mapping_stats).frames == 6  # 2 withheld
    report = json.loads(ReportPaths.for_map(path).json.read_text())
    assert report["frames"]["used"] == 8
    assert report["frames"]["withheld_for_self_check"] == 2
    assert report["trajectory"]["frames"] == 8
    check = report["self_check"]
    assert check["every"] == 4
    assert check["n_frames"] == 2
    assert 0.0 <= check["recall_2cm_2deg"] <= check["recall_5cm_5deg"] <= 1.0
    assert check["n_failed"] + round(check["recall_5cm_5deg"] * 2) <= 2
    for stretch in check["weakest"]:  # names of withheld frames (positions 3 and 7)
        assert {stretch["first"], stretch["last"]} <= {tiny_frames[3].name, tiny_frames[7].name}
    last_check = [e for e in events if e.stage == "check"][-1]
    assert last_check.done == last_check.total == 2
    assert last_check.detail.startswith("self-check on 2 withheld frames (1 in 4)")
