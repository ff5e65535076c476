"""Keyframes: validation, ranking by what a pose sees, and their place in the map file
(round trip, point source, version-1 maps without keyframes, corrupt keyframe tensors)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import make_transform
from seqace_ros.core.head import HeadConfig, SceneHead
from seqace_ros.core.keyframes import KeyframeError, Keyframes, pose_distances, same_keyframes
from seqace_ros.core.map_file import METADATA_KEY, MapFileError, SceneMap, load_map, save_map


def _rotation_z(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rotation_y(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def make_keyframes(count: int = 3, per_frame: int = 5, seed: int = 0) -> Keyframes:
    """``count`` keyframes 1 m apart along x, each with ``per_frame`` random keypoints."""
    rng = np.random.default_rng(seed)
    poses = np.stack([make_transform(np.eye(3), [float(k), 0.0, 0.0]) for k in range(count)])
    descriptors = rng.normal(size=(count * per_frame, 64))
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    return Keyframes(
        T_world_cam_K44=poses.astype(np.float32),
        offsets_K1=np.arange(0, count * per_frame + 1, per_frame, dtype=np.int64),
        descriptors_ND=descriptors.astype(np.float16),
        points_N3=rng.normal(size=(count * per_frame, 3)).astype(np.float32),
    )


def _scene_map(keyframes: Keyframes | None) -> SceneMap:
    head = SceneHead(HeadConfig(in_channels=8, width=16, num_blocks=0))
    scene_map = SceneMap.from_head(head, "xfeat-ms192", "ab" * 32, 480, {"frames": 3})
    return replace(scene_map, keyframes=keyframes)


def test_pose_distance_adds_metres_and_weighted_viewing_angle() -> None:
    here = make_transform(np.eye(3), [0.0, 0.0, 0.0])
    moved = make_transform(np.eye(3), [0.3, 0.4, 0.0])
    turned = make_transform(_rotation_y(np.pi / 2), [0.0, 0.0, 0.0])
    rolled = make_transform(_rotation_z(np.pi / 2), [0.0, 0.0, 0.0])  # same optical axis
    distances = pose_distances(np.stack([moved, turned, rolled]), here, rotation_weight_m=0.5)
    np.testing.assert_allclose(distances, [0.5, 0.5 * np.pi / 2, 0.0], atol=1e-12)


def _walls() -> Keyframes:
    """Three keyframes with 25 points each: 0 at the origin looking along +z at a wall at
    z = 2; 1 at the origin looking along -z at a wall at z = -2; 2 at z = -4 looking along +z
    at the back of that wall (z = -2)."""
    grid = np.stack(np.meshgrid(np.linspace(-0.5, 0.5, 5), np.linspace(-0.5, 0.5, 5)),
                    axis=-1).reshape(-1, 2)
    walls = [np.c_[grid, np.full(25, z)] for z in (2.0, -2.0, -2.0)]
    poses = np.stack([make_transform(np.eye(3), [0.0, 0.0, 0.0]),
                      make_transform(_rotation_y(np.pi), [0.0, 0.0, 0.0]),
                      make_transform(np.eye(3), [0.0, 0.0, -4.0])])
    return Keyframes(T_world_cam_K44=poses.astype(np.float32),
                     offsets_K1=np.array([0, 25, 50, 75], dtype=np.int64),
                     descriptors_ND=np.zeros((75, 64), dtype=np.float16),
                     points_N3=np.concatenate(walls).astype(np.float32))


def test_covisible_ranks_keyframes_by_the_points_the_pose_sees() -> None:
    keyframes = _walls()
    camera = Intrinsics(100.0, 100.0, 50.0, 50.0, 100, 100)
    looking_forward = make_transform(np.eye(3), [0.1, 0.0, 0.0])
    looking_back = make_transform(_rotation_y(np.pi), [0.0, 0.1, 0.0])
    assert keyframes.covisible(looking_forward, camera, 1, 3, 60.0, 0.5).tolist() == [0]
    # keyframe 2 sees the same wall as keyframe 1 but from behind: 180 deg between the rays,
    # so it counts as seeing none of it and ranks by pose distance after keyframe 0
    assert keyframes.covisible(looking_back, camera, 3, 3, 60.0, 0.5).tolist() == [1, 0, 2]
    # with every viewing angle allowed, it sees as much as keyframe 1, which is nearer
    assert keyframes.covisible(looking_back, camera, 3, 3, 180.0, 0.5).tolist() == [1, 2, 0]
    # only the 2 keyframes nearest to the pose are candidates: keyframe 2 (4 m away) is not
    assert keyframes.covisible(looking_back, camera, 3, 2, 180.0, 0.5).tolist() == [1, 0]


def test_covisible_falls_back_to_pose_distance_when_nothing_is_seen() -> None:
    keyframes = make_keyframes(count=4)
    camera = Intrinsics(100.0, 100.0, 50.0, 50.0, 100, 100)
    query = make_transform(np.eye(3), [2.2, 0.0, 100.0])  # the random points lie behind it
    assert keyframes.covisible(query, camera, 3, 4, 60.0, 0.5).tolist() == [2, 3, 1]
    assert keyframes.rows(1) == slice(5, 10)
    assert keyframes.nbytes == 4 * 64 + 5 * 8 + 20 * (64 * 2 + 12)


@pytest.mark.parametrize(("change", "message"), [
    ({"offsets_K1": np.array([0, 5, 4, 15], np.int64)}, "non-decreasing"),
    ({"offsets_K1": np.array([0, 5, 10], np.int64)}, "offsets must be 4"),
    ({"points_N3": np.zeros((14, 3), np.float32)}, "points must be"),
    ({"descriptors_ND": np.zeros((15, 64), np.float32)}, "dtypes"),
    ({"points_N3": np.full((15, 3), np.nan, np.float32)}, "NaN"),
    ({"T_world_cam_K44": np.zeros((0, 4, 4), np.float32)}, "poses must be"),
])
def test_inconsistent_keyframes_are_rejected(change: dict[str, np.ndarray], message: str) -> None:
    arrays = make_keyframes().__dict__ | change
    with pytest.raises(KeyframeError, match=message):
        Keyframes(**arrays)


def test_map_file_round_trip_keeps_keyframes(tmp_path: Path) -> None:
    keyframes = make_keyframes()
    loaded = load_map(save_map(_scene_map(keyframes), tmp_path / "m.map"))
    assert loaded.keyframes is not None
    for name, value in keyframes.__dict__.items():
        np.testing.assert_array_equal(getattr(loaded.keyframes, name), value)
    assert load_map(save_map(_scene_map(None), tmp_path / "plain.map")).keyframes is None


def test_map_file_says_where_keyframe_points_come_from(tmp_path: Path) -> None:
    path = save_map(_scene_map(replace(make_keyframes(), points_from_depth=True)),
                    tmp_path / "m.map")
    header = json.loads(_metadata(path)[METADATA_KEY])
    assert header["keyframes"]["points"] == "sensor_depth"
    loaded = load_map(path).keyframes
    assert loaded is not None
    assert loaded.points_from_depth
    del header["keyframes"]["points"]  # a map written before the field: the head's points
    save_file(load_file(path), tmp_path / "older.map",
              metadata={METADATA_KEY: json.dumps(header)})
    older = load_map(tmp_path / "older.map").keyframes
    assert older is not None
    assert not older.points_from_depth
    header["keyframes"]["points"] = "lidar"
    save_file(load_file(path), tmp_path / "bad.map", metadata={METADATA_KEY: json.dumps(header)})
    with pytest.raises(MapFileError, match=r"keyframes\.points must be one of"):
        load_map(tmp_path / "bad.map")


def test_version_1_map_without_keyframes_still_loads(tmp_path: Path) -> None:
    path = save_map(_scene_map(None), tmp_path / "m.map")
    header = json.loads(_metadata(path)[METADATA_KEY])
    header["format_version"] = 1
    save_file(load_file(path), tmp_path / "v1.map", metadata={METADATA_KEY: json.dumps(header)})
    loaded = load_map(tmp_path / "v1.map")
    assert loaded.keyframes is None
    assert loaded.mapping_stats == {"frames": 3}


def test_incomplete_or_corrupt_keyframe_tensors_are_map_file_errors(tmp_path: Path) -> None:
    path = save_map(_scene_map(make_keyframes()), tmp_path / "m.map")
    metadata = _metadata(path)
    tensors = load_file(path)
    del tensors["keyframes.points"]
    save_file(tensors, tmp_path / "incomplete.map", metadata=metadata)
    with pytest.raises(MapFileError, match=r"missing: keyframes\.points"):
        load_map(tmp_path / "incomplete.map")
    tensors = load_file(path)
    tensors["keyframes.offsets"] = torch.tensor([0, 5, 10, 99])
    save_file(tensors, tmp_path / "offsets.map", metadata=metadata)
    with pytest.raises(MapFileError, match="corrupt keyframes"):
        load_map(tmp_path / "offsets.map")


def _metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        return handle.metadata()


def test_huge_declared_keyframes_are_refused_before_reading_tensors(tmp_path: Path) -> None:
    path = save_map(_scene_map(make_keyframes()), tmp_path / "m.map")
    metadata = _metadata(path)
    header = json.loads(metadata[METADATA_KEY])
    header["keyframes"] = {"count": 10**9, "keypoints": 15}
    save_file(load_file(path), tmp_path / "huge.map",
              metadata={METADATA_KEY: json.dumps(header)})
    with pytest.raises(MapFileError, match="keyframes must be 1 to"):
        load_map(tmp_path / "huge.map")
    header["keyframes"] = {"count": "3", "keypoints": 15}
    save_file(load_file(path), tmp_path / "typed.map",
              metadata={METADATA_KEY: json.dumps(header)})
    with pytest.raises(MapFileError, match=r"keyframes\.count must be of type int"):
        load_map(tmp_path / "typed.map")


def test_quantized_keyframes_store_codes_and_load_decoded(tmp_path: Path) -> None:
    keyframes = make_keyframes(count=4, per_frame=50).quantize(16)
    assert keyframes.descriptor_bytes == 16
    assert keyframes.nbytes == (4 * 64 + 5 * 8 + 200 * (16 + 12) + 64 * 64 * 4 + 16 * 256 * 4 * 4
                                + 4)  # the fidelity
    path = save_map(_scene_map(keyframes), tmp_path / "m.map")
    header = json.loads(_metadata(path)[METADATA_KEY])
    assert header["format_version"] == 3
    assert header["keyframes"]["descriptor_bytes"] == 16
    stored = load_file(path)
    assert "keyframes.descriptors" not in stored
    assert stored["keyframes.descriptor_codes"].dtype == torch.uint8
    loaded = load_map(path).keyframes
    assert loaded is not None
    assert loaded.quantized is not None
    np.testing.assert_array_equal(loaded.descriptors_ND, keyframes.descriptors_ND)
    assert same_keyframes(loaded, keyframes)
    assert not same_keyframes(loaded, make_keyframes(count=4, per_frame=50))


def test_version_2_map_with_float16_descriptors_still_loads(tmp_path: Path) -> None:
    keyframes = make_keyframes()
    path = save_map(_scene_map(keyframes), tmp_path / "m.map")
    header = json.loads(_metadata(path)[METADATA_KEY])
    header["format_version"] = 2
    del header["keyframes"]["descriptor_bytes"]  # written before descriptors were quantized
    save_file(load_file(path), tmp_path / "v2.map", metadata={METADATA_KEY: json.dumps(header)})
    loaded = load_map(tmp_path / "v2.map").keyframes
    assert loaded is not None
    assert loaded.quantized is None
    np.testing.assert_array_equal(loaded.descriptors_ND, keyframes.descriptors_ND)


def test_corrupt_descriptor_codecs_are_map_file_errors(tmp_path: Path) -> None:
    path = save_map(_scene_map(make_keyframes(per_frame=20).quantize(16)), tmp_path / "m.map")
    metadata = _metadata(path)
    tensors = load_file(path)
    tensors["keyframes.descriptor_rotation"] = 2.0 * tensors["keyframes.descriptor_rotation"]
    save_file(tensors, tmp_path / "rotation.map", metadata=metadata)
    with pytest.raises(MapFileError, match=r"corrupt descriptor codes.*not orthonormal"):
        load_map(tmp_path / "rotation.map")
    header = json.loads(metadata[METADATA_KEY])
    header["keyframes"]["descriptor_bytes"] = 0  # says float16, holds codes
    save_file(load_file(path), tmp_path / "undeclared.map",
              metadata={METADATA_KEY: json.dumps(header)})
    with pytest.raises(MapFileError, match=r"missing: keyframes\.descriptors"):
        load_map(tmp_path / "undeclared.map")
    header["keyframes"]["descriptor_bytes"] = 5
    save_file(load_file(path), tmp_path / "five.map", metadata={METADATA_KEY: json.dumps(header)})
    with pytest.raises(MapFileError, match="descriptor_bytes must be 0 or a divisor of 64"):
        load_map(tmp_path / "five.map")
    tensors = load_file(path)
    tensors["keyframes.descriptor_codes"] = tensors["keyframes.descriptor_codes"].to(torch.int16)
    save_file(tensors, tmp_path / "dtype.map", metadata=metadata)
    with pytest.raises(MapFileError, match="a map stores U8"):
        load_map(tmp_path / "dtype.map")


def test_keyframe_descriptors_that_are_not_their_codes_decoding_are_rejected() -> None:
    keyframes = make_keyframes(per_frame=20).quantize(16)
    with pytest.raises(KeyframeError, match="decoding of their codes"):
        replace(keyframes, descriptors_ND=keyframes.descriptors_ND[::-1].copy())
