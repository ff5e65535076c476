"""SeqACE's sequence loss: the keyframe reprojection term, track links in the buffer, and
``seqace map --sequence`` end to end on a small synthetic scene."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seqace_ros.cli import _mapping_request, build_parser, main
from seqace_ros.core.head import HeadConfig
from seqace_ros.core.map_file import load_map
from seqace_ros.datasets.synthetic import preset as synthetic_preset
from seqace_ros.datasets.synthetic import render_bag, render_scene
from seqace_ros.pipeline.mapping.buffer import FeatureBuffer, link_tracks
from seqace_ros.pipeline.mapping.config import MappingConfig, preset
from seqace_ros.pipeline.mapping.tracks import FeatureTracks
from seqace_ros.pipeline.mapping.trainer import keyframe_loss, train_head

K = torch.tensor([[500.0, 0.0, 320.0], [0.0, 510.0, 240.0], [0.0, 0.0, 1.0]])


def _keyframe_batch(points_world_T3: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A keyframe camera 0.5 m along x, turned 10 deg about y; the points' true pixels in it."""
    angle = np.radians(10.0)
    T_world_key = torch.eye(4)
    T_world_key[:3, :3] = torch.tensor([[np.cos(angle), 0.0, np.sin(angle)], [0.0, 1.0, 0.0],
                                        [-np.sin(angle), 0.0, np.cos(angle)]])
    T_world_key[:3, 3] = torch.tensor([0.5, 0.0, 0.0])
    T_key_world = torch.linalg.inv(T_world_key)
    points_key = points_world_T3 @ T_key_world[:3, :3].T + T_key_world[:3, 3]
    pixels_T2 = (points_key @ K.T)[:, :2] / points_key[:, 2:]
    count = len(points_world_T3)
    return pixels_T2, K.expand(count, 3, 3), T_key_world.expand(count, 4, 4)


def test_keyframe_loss_zero_for_true_points_positive_when_perturbed() -> None:
    config = MappingConfig()
    points = torch.tensor([[0.2, 0.1, 2.0], [-0.5, 0.3, 4.0], [0.9, -0.4, 3.0]])
    pixels, K_T, T_key_world = _keyframe_batch(points)
    total, valid = keyframe_loss(points, pixels, K_T, T_key_world, 50.0, config)
    assert float(total) == pytest.approx(0.0, abs=1e-3)
    assert valid.tolist() == [True, True, True]
    # 3-4-5 pixel offsets on each: the sum is 3 soft-clamped 5 px errors
    moved = pixels + torch.tensor([3.0, 4.0])
    total, _ = keyframe_loss(points, moved, K_T, T_key_world, 50.0, config)
    assert float(total) == pytest.approx(3 * 50.0 * np.tanh(5.0 / 50.0), rel=1e-3)
    # the keyframe term pins a point to the keyframe's ray (the per-frame term pins it to the
    # frame's ray: together they triangulate): sliding along that ray is free, off it is not
    key_centre = torch.tensor([0.5, 0.0, 0.0])
    along_ray = points + 0.3 * (points - key_centre)
    total, _ = keyframe_loss(along_ray, pixels, K_T, T_key_world, 50.0, config)
    assert float(total) == pytest.approx(0.0, abs=1e-3)
    sideways = points + torch.tensor([0.05, 0.0, 0.0])
    total, _ = keyframe_loss(sideways, pixels, K_T, T_key_world, 50.0, config)
    assert float(total) > 3 * 5.0
    points.requires_grad_(True)
    total, _ = keyframe_loss(points, moved, K_T, T_key_world, 50.0, config)
    total.backward()
    assert torch.isfinite(points.grad).all()
    assert float(points.grad.abs().sum()) > 0


def test_keyframe_loss_ignores_points_behind_the_keyframe() -> None:
    config = MappingConfig()
    points = torch.tensor([[0.2, 0.1, 2.0], [0.5, 0.0, -3.0]])  # the second is behind it
    pixels, K_T, T_key_world = _keyframe_batch(points[:1])
    pixels = torch.cat([pixels, torch.tensor([[320.0, 240.0]])])
    K_T, T_key_world = K_T.expand(2, 3, 3), T_key_world.expand(2, 4, 4)
    total, valid = keyframe_loss(points, pixels, K_T, T_key_world, 50.0, config)
    assert valid.tolist() == [True, False]
    assert float(total) == pytest.approx(0.0, abs=1e-3)


def _buffer(frame_ids: list[int], pixels: list[list[float]], salient: list[bool]) -> FeatureBuffer:
    n = len(frame_ids)
    return FeatureBuffer(
        features_NC=torch.zeros(n, 4, dtype=torch.float16),
        pixels_N2=torch.tensor(pixels, dtype=torch.float32),
        frame_ids_N=torch.tensor(frame_ids),
        salient_N=torch.tensor(salient),
        K_F33=K.expand(3, 3, 3).clone(),
        T_cam_world_F44=torch.eye(4).expand(3, 4, 4).clone(),
        camera_centres_F3=np.zeros((3, 3)),
    )


def test_link_tracks_links_salient_patches_only() -> None:
    tracks = FeatureTracks(
        frame_ids_T=np.array([1, 2]),
        pixels_T2=np.array([[100.0, 100.0], [200.0, 50.0]], dtype=np.float32),
        keyframe_ids_T=np.array([0, 0]),
        keyframe_pixels_T2=np.array([[90.0, 104.0], [180.0, 60.0]], dtype=np.float32),
        keyframe_ids=(0,),
    )
    buffer = _buffer(frame_ids=[0, 1, 1, 2, 2], salient=[True, True, False, True, True],
                     pixels=[[100, 100], [102, 99], [100, 100], [230, 50], [198, 51]])
    assert buffer.tracked_patches() == 0
    assert buffer.keyframe_ids_N is None
    linked = link_tracks(buffer, tracks, radius_px=8.0)
    assert linked.keyframe_ids_N is not None
    assert linked.keyframe_pixels_N2 is not None
    # frame 0 is the keyframe itself; patch 2 is not salient; patch 3 is too far
    assert linked.keyframe_ids_N.tolist() == [-1, 0, -1, -1, 0]
    assert linked.tracked_patches() == 2
    np.testing.assert_allclose(linked.keyframe_pixels_N2[1].numpy(), [92.0, 103.0])
    np.testing.assert_allclose(linked.keyframe_pixels_N2[4].numpy(), [178.0, 61.0])
    assert torch.equal(linked.features_NC, buffer.features_NC)


def test_sequence_config_needs_track_links_and_valid_settings() -> None:
    buffer = _buffer([0], [[10.0, 10.0]], [True])
    config = preset("test", sequence=True, iterations=2)
    with pytest.raises(ValueError, match="track links"):
        train_head(buffer, HeadConfig(in_channels=4, width=16), torch.zeros(3), config,
                   torch.device("cpu"), progress=False)
    with pytest.raises(ValueError, match="sequence_loss_weight"):
        MappingConfig(sequence_loss_weight=-1.0)
    with pytest.raises(ValueError, match="track_link_radius_px"):
        MappingConfig(track_link_radius_px=0.0)


@pytest.mark.parametrize("command", [["map", "scene"], ["bag-map", "run.bag",
                                                      "--image-topic", "/cam/image_raw"]])
def test_sequence_flag_reaches_the_mapping_config(command: list[str]) -> None:
    parser = build_parser()
    for extra, expected in (([], False), (["--sequence"], True)):
        args = parser.parse_args([*command, "--out", "m.map", "--preset", "test", *extra])
        assert args.sequence is expected
        config = _mapping_request(args).config  # map and bag-map build one request
        assert config.sequence is expected
        assert config.iterations == preset("test").iterations


@pytest.mark.slow
def test_map_with_sequence_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``seqace map --sequence`` on a small synthetic scene: tracks link patches, the second
    loss changes the trained head, and the report records the setting; ``seqace bag-map
    --sequence`` maps the same scene from a bag, in temporal order, with tracks too."""
    scene_config = synthetic_preset("small", seed=2, n_mapping_frames=24, n_query_frames=2)
    scene = render_scene(scene_config, tmp_path / "scene")
    common = ["map", str(scene), "--frames", "0:24", "--preset", "test", "--iterations", "30",
              "--device", "cpu", "--quiet"]
    maps = {}
    for name, extra in (("plain", []), ("sequence", ["--sequence"])):
        out = tmp_path / f"{name}.map"
        assert main([*common, "--out", str(out), *extra]) == 0
        maps[name] = load_map(out)
    capsys.readouterr()
    stats = maps["sequence"].mapping_stats
    assert stats["config"]["sequence"] is True
    assert stats["keyframes"] >= 1
    assert stats["track_observations"] > 500
    # most salient patches of non-keyframes lie on a track
    assert stats["tracked_patches"] > 0.3 * stats["salient_patches"]
    assert "tracked_patches" not in maps["plain"].mapping_stats
    report = json.loads((tmp_path / "sequence.report.json").read_text())
    assert report["mapping_config"]["sequence"] is True
    assert report["training"]["tracked_patches"] == stats["tracked_patches"]
    assert report["timing_s"]["tracks"] > 0
    plain_report = json.loads((tmp_path / "plain.report.json").read_text())
    assert plain_report["training"]["tracked_patches"] == 0
    assert plain_report["timing_s"]["tracks"] == 0
    assert report["mapping_config"]["tracks"] == dataclasses.asdict(
        MappingConfig().tracks)
    # same seed, same buffer: only the keyframe loss can make the heads differ
    plain, sequence = maps["plain"].state_dict, maps["sequence"].state_dict
    assert any(not torch.equal(plain[key], sequence[key]) for key in plain)
    assert all(torch.isfinite(value).all() for value in sequence.values())
    bag = render_bag(scene_config, tmp_path / "scene_bag")
    bag_map = tmp_path / "bag.map"
    assert main(["bag-map", str(bag), "--image-topic", "/camera/image_raw", "--out",
                 str(bag_map), "--preset", "test", "--iterations", "30", "--device", "cpu",
                 "--quiet", "--sequence"]) == 0
    bag_stats = load_map(bag_map).mapping_stats
    assert bag_stats["config"]["sequence"] is True
    assert bag_stats["tracked_patches"] > 0.3 * bag_stats["salient_patches"]
