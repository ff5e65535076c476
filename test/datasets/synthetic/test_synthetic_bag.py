"""Synthetic scenes as rosbag2 (mcap): images, camera info and TF, read back by our bag reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from seqace_ros.datasets.bag import BagConfig, BagDataset
from seqace_ros.datasets.synthetic import SyntheticScene, preset, render_bag

CONFIG = preset("tiny", n_mapping_frames=4, n_query_frames=2)


@pytest.fixture(scope="module")
def bag_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_bag(CONFIG, tmp_path_factory.mktemp("synthetic_bag") / "tiny_bag")


def test_bag_has_image_camera_info_and_tf_topics(bag_path: Path) -> None:
    with AnyReader([bag_path]) as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        assert topics == {
            "/camera/image_raw": "sensor_msgs/msg/Image",
            "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
            "/tf": "tf2_msgs/msg/TFMessage",
        }
        tf = [
            reader.deserialize(raw, c.msgtype)
            for c, _, raw in reader.messages()
            if c.topic == "/tf"
        ]
    assert len(tf) == CONFIG.n_frames
    frames = {(t.header.frame_id, t.child_frame_id) for m in tf for t in m.transforms}
    assert frames == {("map", "camera_optical")}
    assert bag_path.is_dir()
    assert list(bag_path.glob("*.mcap"))


def test_bag_reader_recovers_images_poses_and_intrinsics(bag_path: Path) -> None:
    scene = SyntheticScene(CONFIG)
    config = BagConfig(image_topic="/camera/image_raw", progress=False)
    with BagDataset(bag_path, config) as dataset:
        assert len(dataset) == len(scene)
        for index in range(len(scene)):
            frame = dataset[index]
            expected = scene[index]
            assert frame.stamp_ns == expected.stamp_ns
            assert frame.intrinsics == expected.intrinsics
            np.testing.assert_array_equal(frame.image_rgb, expected.image_rgb)
            np.testing.assert_allclose(frame.T_world_cam, expected.T_world_cam, atol=1e-9)


def test_existing_bag_is_kept_unless_overwrite(bag_path: Path, tmp_path: Path) -> None:
    with pytest.raises(FileExistsError, match="overwrite=True"):
        render_bag(CONFIG, bag_path)
    out = render_bag(preset("tiny", n_mapping_frames=1, n_query_frames=0), tmp_path / "b")
    render_bag(preset("tiny", n_mapping_frames=2, n_query_frames=0), out, overwrite=True)
    with AnyReader([out]) as reader:
        assert sum(1 for c in reader.connections if c.topic == "/tf") == 1
        assert reader.message_count == 3 * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no staging left
