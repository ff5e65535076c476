"""Bags with bytes overwritten in the middle of their storage file (seeded, 30 trials per
format): every trial is read exactly as the clean bag or raises one BagError line; nothing else
escapes (no UnicodeDecodeError, AssertionError, ...).

What a format cannot detect is allowed only where it truly cannot: an MCAP bag carries CRCs
(chunk, data section, summary), so for it "identical or BagError" holds strictly. sqlite3 and
ROS 1 bags have no checksum over message bytes; a trial there may also read differently, but
only when the damage is confined to message payloads: the messages (topic, type, bag time) are
those of the clean bag and only their bytes differ. Damage to anything else (file structure,
indexes, record headers, timestamps, topics) must raise BagError."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import make_transform
from seqace_ros.datasets.bag import BagConfig, BagDataset, BagError
from seqace_ros.datasets.bag_poses import PoseSourceConfig
from seqace_ros.datasets.bag_writer import FramesBagConfig, write_frames_bag
from seqace_ros.datasets.base import PosedFrame

TRIALS = 30
SECOND = 1_000_000_000
CONFIG = BagConfig(image_topic="/camera/image_raw", poses=PoseSourceConfig(source="tf"),
                   progress=False)


def frames() -> list[PosedFrame]:
    rng = np.random.default_rng(3)
    intrinsics = Intrinsics(40.0, 40.0, 16.0, 12.0, 32, 24)
    return [PosedFrame(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), intrinsics,
                       make_transform(np.eye(3), [0.1 * i, 0.0, 0.0]),
                       100 * SECOND + i * SECOND // 10, f"f{i}") for i in range(6)]


def storage_file(bag: Path) -> Path:
    return bag if bag.is_file() else next(p for p in bag.iterdir() if p.suffix != ".yaml")


def read_everything(bag: Path) -> Any:
    """All a mapping run takes from the bag (the bag's own path left out)."""
    with BagDataset(bag, CONFIG) as dataset:
        stats = {k: v for k, v in dataset.stats.items() if k != "bag"}
        frames_read = [(f.image_rgb.tobytes(), f.intrinsics, f.T_world_cam.tobytes(),
                        f.stamp_ns, f.name, f.depth) for f in dataset]
        return stats, dataset.calibration, dataset.camera_frame, frames_read


def raw_messages(bag: Path) -> list[tuple[str, str, int, bytes]]:
    """(topic, type, bag time, serialized bytes) of every message, read with rosbags alone."""
    with AnyReader([bag]) as reader:
        return [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in reader.messages()]


def only_payloads_differ(clean: list[tuple[str, str, int, bytes]], bag: Path) -> bool:
    """Whether ``bag`` holds the clean bag's messages with only some of their bytes changed."""
    try:
        damaged = raw_messages(bag)
    except Exception:  # rosbags cannot even list the messages: not payload damage
        return False
    return [m[:3] for m in damaged] == [m[:3] for m in clean] and damaged != clean


@pytest.mark.parametrize("storage", ["mcap", "sqlite3", "ros1"])
def test_overwritten_bytes_are_found_or_confined_to_payloads(
    tmp_path: Path, storage: str
) -> None:
    name = "clean.bag" if storage == "ros1" else "clean"
    clean = write_frames_bag(tmp_path / name, frames(),
                             FramesBagConfig(storage=storage, poses="tf"))  # type: ignore[arg-type]
    expected = read_everything(clean)
    clean_messages = raw_messages(clean)
    data = storage_file(clean).read_bytes()
    rng = np.random.default_rng(16)
    outcomes: Counter[str] = Counter()
    errors: list[tuple[str, str]] = []
    for trial in range(TRIALS):
        bag = tmp_path / f"trial{trial}{'.bag' if storage == 'ros1' else ''}"
        if storage == "ros1":
            shutil.copyfile(clean, bag)
        else:
            shutil.copytree(clean, bag)
        offset = int(rng.integers(len(data) // 10, len(data) * 9 // 10))
        damaged = bytearray(data)
        damaged[offset : offset + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        storage_file(bag).write_bytes(bytes(damaged))
        where = f"trial {trial}: 16 bytes at offset {offset} of {len(data)}"
        try:
            result = read_everything(bag)
        except BagError as error:
            errors.append((str(bag), str(error)))
            outcomes["BagError"] += 1
            continue
        if result == expected:
            outcomes["identical"] += 1
            continue
        assert storage != "mcap", f"{where}: read differently without an error"
        assert only_payloads_differ(clean_messages, bag), (
            f"{where}: read differently, and not only message bytes changed")
        outcomes["payload changed, undetectable"] += 1
    print(storage, dict(outcomes))
    for bag_name, message in errors:  # one line that names the damaged bag
        assert "\n" not in message, message
        assert bag_name in message, message
    assert outcomes["BagError"] > 0  # the damage was real


def _first_image_pixels(data: bytes) -> int:
    """Byte offset of the first image's pixels (bgr8) in a storage file."""
    return data.index(frames()[0].image_rgb[:, :, ::-1].tobytes()[:48])


def _topic_name(data: bytes) -> int:
    """Byte offset of a letter of the camera-info topic's name in the sqlite3 topics table
    (where its row's type follows it)."""
    return data.index(b"/camera/camera_infosensor_msgs/msg/CameraInfo") + 2


def _message_time(data: bytes) -> int:
    """Byte offset of the seconds of the first message record's time (ROS 1 header field)."""
    return data.index(b"time=", data.index(b"compression=")) + len(b"time=")


@pytest.mark.parametrize(("storage", "locate", "found"), [
    ("mcap", _first_image_pixels, "fails its CRC"),  # read silently before: the pixels changed
    ("sqlite3", _topic_name, "(truncated or corrupt?)"),  # an uncaught UnicodeDecodeError before
    ("ros1", _message_time, "index entry"),  # an uncaught AssertionError in rosbags before
])
def test_known_damage_raises_one_bag_error(
    tmp_path: Path, storage: str, locate: Any, found: str
) -> None:
    bag = write_frames_bag(tmp_path / ("b.bag" if storage == "ros1" else "b"), frames(),
                           FramesBagConfig(storage=storage, poses="tf"))  # type: ignore[arg-type]
    data = bytearray(storage_file(bag).read_bytes())
    offset = locate(bytes(data))
    data[offset] ^= 0xC0
    storage_file(bag).write_bytes(bytes(data))
    with pytest.raises(BagError) as caught:
        read_everything(bag)
    assert found in str(caught.value)
    assert "\n" not in str(caught.value)
