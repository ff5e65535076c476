"""Folder output of synthetic scenes: layout, format, determinism, idempotence, atomicity."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from seqace_ros.core.geometry import is_rigid_transform
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.datasets.synthetic import SyntheticScene, preset, render_scene, write_folder
from seqace_ros.datasets.synthetic.render import render_view
from seqace_ros.datasets.synthetic.writer import intrinsics_text

DEV_DATA_INTRINSICS = "525.0 0.0 320.0\n0.0 525.0 240.0\n0.0 0.0 1.0\n"


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_folder_has_the_7scenes_layout(tiny_folder: Path, tiny_scene: SyntheticScene) -> None:
    n = len(tiny_scene)
    names = sorted(path.name for path in tiny_folder.iterdir())
    expected = sorted(
        [
            f"frame-{i:06d}.{kind}"
            for i in range(n)
            for kind in ("color.png", "depth.png", "pose.txt")
        ]
        + ["color-intrinsics.txt", "scene.json"]
    )
    assert names == expected

    assert (
        tiny_folder / "color-intrinsics.txt"
    ).read_text() == "131.25 0.0 80.0\n0.0 131.25 60.0\n0.0 0.0 1.0\n"
    for index in (0, n - 1):
        stem = str(tiny_folder / f"frame-{index:06d}")
        color = cv2.imread(stem + ".color.png", cv2.IMREAD_UNCHANGED)
        depth = cv2.imread(stem + ".depth.png", cv2.IMREAD_UNCHANGED)
        assert color.shape == (120, 160, 3)
        assert color.dtype == np.uint8
        assert depth.shape == (120, 160)
        assert depth.dtype == np.uint16
        rgb, depth_mm = tiny_scene.render_rgbd(index)
        np.testing.assert_array_equal(color[..., ::-1], rgb)  # stored RGB, as PNG expects
        np.testing.assert_array_equal(depth, depth_mm)
        # Depth is the renderer's z-depth in millimetres, rounded.
        _, depth_m = render_view(
            tiny_scene.scene, tiny_scene.intrinsics, tiny_scene.T_world_cam_N44[index]
        )
        np.testing.assert_array_equal(depth, np.rint(depth_m * 1000.0).astype(np.uint16))
        pose_lines = (tiny_folder / f"frame-{index:06d}.pose.txt").read_text().splitlines()
        assert len(pose_lines) == 4
        assert all(len(line.split(" ")) == 4 for line in pose_lines)
        T_world_cam = np.loadtxt(stem + ".pose.txt")
        assert is_rigid_transform(T_world_cam, atol=1e-12)
        np.testing.assert_array_equal(T_world_cam, tiny_scene.T_world_cam_N44[index])


def test_intrinsics_file_matches_the_dev_data_format() -> None:
    """At 640x480 the file is byte-identical to redkitchen_dev's color-intrinsics.txt."""
    config = preset("default", n_mapping_frames=1, n_query_frames=0, texture_size=64)
    assert config.intrinsics.as_tuple == (525.0, 525.0, 320.0, 240.0)
    assert intrinsics_text(config.intrinsics) == DEV_DATA_INTRINSICS


def test_scene_json_describes_config_and_split(tiny_folder: Path) -> None:
    metadata = json.loads((tiny_folder / "scene.json").read_text())
    config = preset("tiny")
    assert metadata["format"] == "seqace_ros.synthetic_scene"
    assert metadata["seed"] == 0
    assert metadata["config"] == config.to_json_dict()
    assert metadata["mapping_frames"] == "0:14"
    assert metadata["query_frames"] == "14:20"
    assert metadata["intrinsics"] == {
        "fx": 131.25,
        "fy": 131.25,
        "cx": 80.0,
        "cy": 60.0,
        "width": 160,
        "height": 120,
    }
    assert {box["kind"] for box in metadata["boxes"]} >= {"furniture", "table", "poster"}


def test_folder_reader_reads_the_scene(tiny_folder: Path, tiny_scene: SyntheticScene) -> None:
    dataset = FolderDataset(tiny_folder)
    assert len(dataset) == len(tiny_scene)
    frame = dataset[3]
    assert frame.intrinsics == tiny_scene.intrinsics
    np.testing.assert_allclose(frame.T_world_cam, tiny_scene.T_world_cam_N44[3], atol=1e-12)
    np.testing.assert_array_equal(frame.image_rgb, tiny_scene.render_rgbd(3)[0])


def test_same_seed_gives_byte_identical_files(tmp_path: Path, tiny_folder: Path) -> None:
    again = render_scene(preset("tiny"), tmp_path / "again")
    assert _files(again) == _files(tiny_folder)


def test_different_seed_gives_a_different_scene(tmp_path: Path, tiny_folder: Path) -> None:
    other = render_scene(preset("tiny", seed=1), tmp_path / "seed1")
    first, second = _files(tiny_folder), _files(other)
    assert first.keys() == second.keys()
    assert first["frame-000000.color.png"] != second["frame-000000.color.png"]
    assert first["frame-000000.pose.txt"] != second["frame-000000.pose.txt"]


def test_render_is_idempotent_and_refuses_to_clobber(tmp_path: Path) -> None:
    config = preset("tiny", n_mapping_frames=2, n_query_frames=1)
    out = render_scene(config, tmp_path / "scene")
    stamp = (out / "scene.json").stat().st_mtime_ns
    assert render_scene(config, out) == out
    assert (out / "scene.json").stat().st_mtime_ns == stamp  # nothing re-rendered

    other = preset("tiny", n_mapping_frames=3, n_query_frames=1)
    with pytest.raises(FileExistsError, match="n_mapping_frames: 2 -> 3"):
        render_scene(other, out)
    render_scene(other, out, overwrite=True)
    assert len(list(out.glob("*.color.png"))) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_refuses_a_non_empty_unrelated_folder(tmp_path: Path) -> None:
    out = tmp_path / "occupied"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        render_scene(preset("tiny", n_mapping_frames=1, n_query_frames=0), out)
    assert (out / "notes.txt").read_text() == "mine"


def test_interrupted_render_leaves_no_scene(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_render = SyntheticScene.render_rgbd

    def failing_render(self: SyntheticScene, index: int):
        if index == 2:
            raise KeyboardInterrupt
        return real_render(self, index)

    monkeypatch.setattr(SyntheticScene, "render_rgbd", failing_render)
    with pytest.raises(KeyboardInterrupt):
        render_scene(preset("tiny", n_mapping_frames=4, n_query_frames=0), tmp_path / "scene")
    assert list(tmp_path.iterdir()) == []  # neither the scene nor its staging folder


def test_write_folder_refuses_to_replace_unless_asked(tmp_path: Path) -> None:
    scene = SyntheticScene(preset("tiny", n_mapping_frames=1, n_query_frames=0))
    out = write_folder(scene, tmp_path / "scene")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_folder(scene, out)
    assert write_folder(scene, out, overwrite=True) == out
    assert len(list(out.glob("*.pose.txt"))) == 1
