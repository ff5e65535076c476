"""Map file: round trip, atomic writes, and every rejected file (typed MapFileError)."""

from __future__ import annotations

import json
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from seqace_ros.core.head import HeadConfig, SceneHead
from seqace_ros.core.map_file import FORMAT_VERSION, MapFileError, SceneMap, load_map, save_map

HASH = "ab" * 32


def small_map() -> SceneMap:
    torch.manual_seed(0)
    head = SceneHead(HeadConfig(in_channels=16, width=32, num_blocks=1),
                     torch.tensor([0.5, -1.0, 2.0]))
    return SceneMap.from_head(head, "xfeat-ms192", HASH, 480, {"frames": 3})


def test_round_trip(tmp_path: Path) -> None:
    scene_map = small_map()
    path = save_map(scene_map, tmp_path / "scene.map")
    loaded = load_map(path)
    assert loaded.head_config == scene_map.head_config
    assert (loaded.encoder_id, loaded.encoder_weight_hash) == ("xfeat-ms192", HASH)
    assert loaded.image_height == 480
    assert loaded.scene_centre_3 == pytest.approx((0.5, -1.0, 2.0))
    assert loaded.mapping_stats == {"frames": 3}
    assert loaded.state_dict["out3.weight"].dtype == torch.float16
    features = torch.randn(7, 16)
    torch.testing.assert_close(loaded.build_head()(features), scene_map.build_head()(features))
    assert [p.name for p in tmp_path.iterdir()] == ["scene.map"]  # no temporary file left


def test_header_is_self_describing(tmp_path: Path) -> None:
    data = save_map(small_map(), tmp_path / "m").read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(json.loads(data[8 : 8 + length])["__metadata__"]["seqace_map"])
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["head"]["width"] == 32
    assert metadata["encoder"]["weight_hash"] == HASH


def test_failed_write_leaves_old_file_and_no_partial(tmp_path: Path) -> None:
    path = save_map(small_map(), tmp_path / "m")
    before = path.read_bytes()
    broken = SceneMap.from_head(SceneHead(HeadConfig(in_channels=16, width=32)), "x", HASH, 480,
                                {"bad": object()})  # not JSON-serialisable
    with pytest.raises(TypeError):
        save_map(broken, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    with pytest.raises(FileNotFoundError):
        save_map(small_map(), tmp_path / "missing" / "m")


def test_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MapFileError, match="cannot read"):
        load_map(tmp_path / "nothing")


@pytest.mark.parametrize("content", [b"", b"hello", b"# README\nnot a map at all\n" * 10])
def test_rejects_non_map_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x"
    path.write_bytes(content)
    with pytest.raises(MapFileError, match="not a map"):
        load_map(path)


def test_rejects_pickle_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(MapFileError):
        load_map(path)
    path.write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(MapFileError):
        load_map(path)


@pytest.mark.parametrize("keep_fraction", [0.99, 0.5, 0.01])
def test_rejects_truncated_file(tmp_path: Path, keep_fraction: float) -> None:
    data = save_map(small_map(), tmp_path / "m").read_bytes()
    truncated = tmp_path / "t"
    truncated.write_bytes(data[: int(len(data) * keep_fraction)])
    with pytest.raises(MapFileError, match=r"truncated|not a map"):
        load_map(truncated)


def test_rejects_safetensors_without_map_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(MapFileError, match="without seqace map metadata"):
        load_map(path)


def _rewrite_metadata(tmp_path: Path, edit: Callable[[dict], object]) -> Path:
    scene_map = small_map()
    path = save_map(scene_map, tmp_path / "m")
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    metadata = json.loads(header["__metadata__"]["seqace_map"])
    edit(metadata)
    save_file(dict(scene_map.state_dict), str(path),
              metadata={"seqace_map": json.dumps(metadata)})
    return path


def test_rejects_newer_format_version(tmp_path: Path) -> None:
    path = _rewrite_metadata(tmp_path, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(MapFileError, match="newer"):
        load_map(path)


def test_rejects_header_inconsistent_with_tensors(tmp_path: Path) -> None:
    path = _rewrite_metadata(tmp_path, lambda m: m["head"].update(width=64))
    with pytest.raises(MapFileError, match="do not match"):
        load_map(path)
    path = _rewrite_metadata(tmp_path, lambda m: m.pop("encoder"))
    with pytest.raises(MapFileError, match="corrupt map metadata"):
        load_map(path)


def test_rejects_map_for_another_encoder(tmp_path: Path) -> None:
    loaded = load_map(save_map(small_map(), tmp_path / "m"))
    loaded.check_encoder("xfeat-ms192", HASH)
    with pytest.raises(MapFileError, match="encoder 'xfeat-ms192'"):
        loaded.check_encoder("xfeat-desc64", HASH)
    with pytest.raises(MapFileError, match="weights"):
        loaded.check_encoder("xfeat-ms192", "cd" * 32)
