"""The demo's scene bags: the right frames and ground truth in each part, reused when complete,
rebuilt when the scene changes, and clear errors for unusable real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ros_harness import import_ros_module

import_ros_module("rclpy")

from seqace_ros.datasets.bag import BagConfig, BagDataset  # noqa: E402
from seqace_ros.datasets.bag_poses import PoseSourceConfig  # noqa: E402
from seqace_ros.datasets.folder import FolderDataset  # noqa: E402
from seqace_ros.datasets.synthetic import SyntheticScene, preset, render_scene  # noqa: E402
from seqace_ros.ros.demo.config import SceneSpec  # noqa: E402
from seqace_ros.ros.demo.scene import (  # noqa: E402
    MARKER,
    REAL_FRAME_PERIOD_NS,
    REAL_T0_NS,
    DemoBags,
    DemoSceneError,
    prepare_bags,
)


def read_bag(bags: DemoBags, which: str) -> list:
    config = BagConfig(image_topic=bags.image_topic, camera_info_topic=bags.camera_info_topic,
                       poses=PoseSourceConfig(source="tf", map_frame=bags.map_frame),
                       progress=False)
    with BagDataset(getattr(bags, f"{which}_bag"), config) as dataset:
        return list(dataset)


def test_synthetic_bags_hold_the_mapping_and_query_parts(tmp_path: Path) -> None:
    spec = SceneSpec(source="synthetic", mapping_frames=5, query_frames=3, scene_preset="tiny")
    bags = prepare_bags(spec, tmp_path / spec.name, log=lambda _: None)
    scene = SyntheticScene(preset("tiny", n_mapping_frames=5, n_query_frames=3))
    mapping, query = read_bag(bags, "map"), read_bag(bags, "query")
    assert [f.stamp_ns for f in mapping] == [scene.stamp_ns(i) for i in range(5)]
    assert [f.stamp_ns for f in query] == [scene.stamp_ns(i) for i in range(5, 8)]
    for frame, index in zip(mapping + query, range(8), strict=True):
        np.testing.assert_allclose(frame.T_world_cam, scene.T_world_cam_N44[index], atol=1e-9)
        np.testing.assert_array_equal(frame.image_rgb, scene[index].image_rgb)  # raw, lossless


def test_bags_are_reused_when_complete_and_rebuilt_when_the_scene_changes(
    tmp_path: Path,
) -> None:
    spec = SceneSpec(source="synthetic", mapping_frames=3, query_frames=2, scene_preset="tiny")
    scene_dir = tmp_path / "scene"
    logged: list[str] = []
    bags = prepare_bags(spec, scene_dir, log=logged.append)
    written_ns = bags.map_bag.stat().st_mtime_ns, bags.query_bag.stat().st_mtime_ns
    again = prepare_bags(spec, scene_dir, log=logged.append)
    assert again == bags
    assert "reusing" in logged[-1]
    assert (bags.map_bag.stat().st_mtime_ns, bags.query_bag.stat().st_mtime_ns) == written_ns

    other_seed = SceneSpec(source="synthetic", mapping_frames=3, query_frames=2,
                           scene_preset="tiny", scene_seed=1)
    prepare_bags(other_seed, scene_dir, log=logged.append)
    assert "writing" in logged[-1]
    scene = SyntheticScene(preset("tiny", seed=1, n_mapping_frames=3, n_query_frames=2))
    np.testing.assert_allclose(read_bag(bags, "query")[0].T_world_cam,
                               scene.T_world_cam_N44[3], atol=1e-9)

    (scene_dir / MARKER).unlink()  # an interrupted write leaves no marker: rebuilt
    prepare_bags(other_seed, scene_dir, log=logged.append)
    assert "writing" in logged[-1]


def test_real_frames_split_and_restamped_at_30_hz(tmp_path: Path) -> None:
    folder = render_scene(preset("tiny", n_mapping_frames=6, n_query_frames=2), tmp_path / "f")
    spec = SceneSpec(source="real", mapping_frames=5, query_frames=3, data_dir=folder)
    bags = prepare_bags(spec, tmp_path / spec.name, log=lambda _: None)
    assert bags.image_topic.endswith("/compressed")
    dataset = FolderDataset(folder)
    query = read_bag(bags, "query")
    assert [f.stamp_ns for f in query] == [REAL_T0_NS + i * REAL_FRAME_PERIOD_NS
                                          for i in range(5, 8)]
    for frame, index in zip(query, range(5, 8), strict=True):
        np.testing.assert_allclose(frame.T_world_cam, dataset[index].T_world_cam, atol=1e-9)
        # JPEG: close to the source image, not equal
        difference = np.abs(frame.image_rgb.astype(int) - dataset[index].image_rgb.astype(int))
        assert difference.mean() < 4.0
    assert len(read_bag(bags, "map")) == 5


def test_real_data_problems_are_clear_and_write_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    spec = SceneSpec(source="real", mapping_frames=5, query_frames=3, data_dir=missing)
    with pytest.raises(DemoSceneError, match=f"real data not found: {missing}"):
        prepare_bags(spec, tmp_path / "scene", log=lambda _: None)
    assert not (tmp_path / "scene").exists()

    folder = render_scene(preset("tiny", n_mapping_frames=3, n_query_frames=1), tmp_path / "f")
    short = SceneSpec(source="real", mapping_frames=5, query_frames=3, data_dir=folder)
    with pytest.raises(DemoSceneError, match="has 4 frames; the demo needs 8"):
        prepare_bags(short, tmp_path / "scene", log=lambda _: None)
    assert not (tmp_path / "scene").exists()

    unknown = SceneSpec(source="synthetic", mapping_frames=3, query_frames=1,
                        scene_preset="nope")
    with pytest.raises(DemoSceneError, match="unknown synthetic scene preset 'nope'"):
        prepare_bags(unknown, tmp_path / "scene", log=lambda _: None)
