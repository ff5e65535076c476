"""Hostile map files: each is refused with MapFileError before anything big is allocated.

Issue 16, "Live node": metadata of the wrong structure (nested too deep, a list or a number
where an object belongs, fields of the wrong type), a tiny file declaring a huge head, a
device or a FIFO given as the map, non-finite or float64 weights, an absurd ``image_height``.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from seqace_ros.core.head import HeadConfig, SceneHead
from seqace_ros.core.map_file import MapFileError, SceneMap, load_map, save_map

HASH = "ab" * 32
DEEP = 100_000  # JSON nesting far beyond Python's recursion limit


def small_map() -> SceneMap:
    torch.manual_seed(0)
    head = SceneHead(HeadConfig(in_channels=16, width=32, num_blocks=0))
    return SceneMap.from_head(head, "xfeat-ms192", HASH, 480, {"frames": 3})


def write_raw(path: Path, header: dict[str, Any] | str, payload: bytes = b"") -> Path:
    """A safetensors-like file: 8-byte header length, the header text, the payload."""
    text = (header if isinstance(header, str) else json.dumps(header)).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + payload)
    return path


def good_metadata(tmp_path: Path) -> dict[str, Any]:
    """The metadata object of a valid map, to break one field at a time."""
    data = save_map(small_map(), tmp_path / "good.map").read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(json.loads(data[8 : 8 + length])["__metadata__"]["seqace_map"])


def with_metadata(tmp_path: Path, metadata: Any, state: dict[str, torch.Tensor] | None = None,
                  name: str = "edited.map") -> Path:
    """A map file of ``small_map``'s weights (or ``state``) with ``metadata`` as its header."""
    path = tmp_path / name
    text = metadata if isinstance(metadata, str) else json.dumps(metadata)
    save_file(dict(small_map().state_dict if state is None else state), str(path),
              metadata={"seqace_map": text})
    return path


def edited(edit: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, Any]], Any]:
    def apply(metadata: dict[str, Any]) -> dict[str, Any]:
        edit(metadata)
        return metadata
    return apply


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: "[" * DEEP + "]" * DEEP, "corrupt map metadata"),
        (lambda m: '{"format": ' + "[" * DEEP + "]" * DEEP + "}", "corrupt map metadata"),
        (lambda m: [m], "not a 'seqace_map' header"),
        (edited(lambda m: m.update(encoder=5)), "encoder must be of type dict"),
        (edited(lambda m: m.update(head=[1, 2])), "head must be of type dict"),
        (edited(lambda m: m.update(mapping=[[1, 2]])), "mapping must be of type dict"),
        (edited(lambda m: m["encoder"].update(image_height="480")),
         "image_height must be of type int"),
        (edited(lambda m: m["encoder"].update(image_height=480.5)),
         "image_height must be of type int"),
        (edited(lambda m: m["encoder"].update(id=7)), "id must be of type str"),
        (edited(lambda m: m["head"].update(in_channels=16.0)), "in_channels must be an integer"),
        (edited(lambda m: m["head"].update(width=True)), "width must be an integer"),
        (edited(lambda m: m["head"].update(homogeneous_min_scale="0.01")),
         "homogeneous_min_scale must be a finite number"),
        (edited(lambda m: m.update(scene_centre=[0.0, "1", 2.0])), "scene_centre must be 3"),
        (edited(lambda m: m.update(scene_centre=[0.0, float("nan"), 2.0])),
         "scene_centre must be 3"),
        (edited(lambda m: m.update(format_version=True)), "format_version must be an integer"),
        (edited(lambda m: m["encoder"].update(image_height=100000)),
         r"image_height must be a multiple of 32 in \[32, 2048\], got 100000"),
        (edited(lambda m: m["encoder"].update(image_height=470)), "multiple of 32"),
    ],
)
def test_metadata_of_the_wrong_structure_or_type_is_refused(
    tmp_path: Path, edit: Callable[[dict[str, Any]], Any], message: str
) -> None:
    path = with_metadata(tmp_path, edit(good_metadata(tmp_path)))
    with pytest.raises(MapFileError, match=message):
        load_map(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("[" * DEEP + "]" * DEEP, "unreadable header"),
        ({"__metadata__": [1, 2]}, "without seqace map metadata"),
        ({"__metadata__": {"seqace_map": 5}}, "without seqace map metadata"),
        ({"__metadata__": {"seqace_map": {"format": "seqace_map"}}},
         "without seqace map metadata"),
        ([1, 2, 3], "header is a JSON list"),
        (5, "header is a JSON int"),
    ],
)
def test_safetensors_header_of_the_wrong_structure_is_refused(
    tmp_path: Path, header: Any, message: str
) -> None:
    path = write_raw(tmp_path / "m", header if isinstance(header, (dict, str)) else
                     json.dumps(header))
    with pytest.raises(MapFileError, match=message):
        load_map(path)


def test_tiny_file_declaring_a_huge_head_is_refused_from_its_header(tmp_path: Path) -> None:
    metadata = good_metadata(tmp_path)
    # Out of bounds (the 447-byte map: width 8192, 200 blocks).
    metadata["head"].update(width=8192, num_blocks=200)
    path = write_raw(tmp_path / "huge.map", {"__metadata__": {"seqace_map": json.dumps(metadata)}})
    assert path.stat().st_size < 1000
    with pytest.raises(MapFileError, match=r"head width must be in \[1, 4096\], got 8192"):
        load_map(path)
    # Within the bounds but ~13 GB of weights: the header's size check refuses it (no head
    # is built to learn the shapes).
    metadata["head"].update(width=4096, num_blocks=64)
    path = write_raw(tmp_path / "huge.map", {"__metadata__": {"seqace_map": json.dumps(metadata)}})
    with pytest.raises(MapFileError, match="do not match the head config"):
        load_map(path)


def test_tensor_declared_huge_in_the_header_is_refused(tmp_path: Path) -> None:
    path = save_map(small_map(), tmp_path / "m.map")
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header["out3.weight"]["shape"] = [1 << 20, 1 << 20]
    write_raw(path, header, data[8 + length :])
    with pytest.raises(MapFileError, match=r"wrong shape: out3\.weight \(1048576, 1048576\)"):
        load_map(path)


def test_header_describing_more_bytes_than_the_file_is_refused(tmp_path: Path) -> None:
    path = save_map(small_map(), tmp_path / "m.map")
    data = path.read_bytes()
    path.write_bytes(data[:-2])
    with pytest.raises(MapFileError, match="truncated or corrupt map file"):
        load_map(path)
    path.write_bytes(data + b"\0" * 4)
    with pytest.raises(MapFileError, match="truncated or corrupt map file"):
        load_map(path)


@pytest.mark.parametrize(("make", "kind"), [
    (lambda tmp: Path("/dev/zero"), "a character device"),
    (lambda tmp: tmp, "a directory"),
])
def test_devices_and_directories_are_refused(
    tmp_path: Path, make: Callable[[Path], Path], kind: str
) -> None:
    with pytest.raises(MapFileError, match=f"not a map file \\({kind}, not a regular file\\)"):
        load_map(make(tmp_path))


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "map.fifo"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_map(fifo)
            outcome.append(None)
        except BaseException as error:  # the test thread inspects it
            outcome.append(error)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():  # release the blocked open before failing
        with open(fifo, "wb"):
            pass
        thread.join(timeout=10)
        pytest.fail("load_map blocked on a FIFO")
    assert isinstance(outcome[0], MapFileError), outcome
    assert "a FIFO" in str(outcome[0])


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path: Path, value: float) -> None:
    scene_map = small_map()
    state = dict(scene_map.state_dict)
    weight = state["blocks.0.fc2.weight"].clone()
    weight[3, 5] = value
    state["blocks.0.fc2.weight"] = weight
    path = with_metadata(tmp_path, good_metadata(tmp_path), state)
    with pytest.raises(MapFileError, match=r"'blocks\.0\.fc2\.weight' holds 1 non-finite"):
        load_map(path)


def test_float64_weights_are_refused(tmp_path: Path) -> None:
    state = {name: tensor.double() for name, tensor in small_map().state_dict.items()}
    path = with_metadata(tmp_path, good_metadata(tmp_path), state)
    with pytest.raises(MapFileError, match=r"stored as 'F64'; a map stores F(16|32)"):
        load_map(path)


def test_a_good_map_still_loads(tmp_path: Path) -> None:
    """The checks above refuse only what is broken: the same map unedited loads."""
    path = with_metadata(tmp_path, good_metadata(tmp_path))
    loaded = load_map(path)
    assert loaded.head_config == small_map().head_config
    assert loaded.image_height == 480
