"""The demo's scene as two rosbags: the mapping part and the query part.

``map.mcap`` holds the frames ``mapping_node`` maps; ``query.mcap`` the frames replayed live to
``relocalization_node``. Both carry what a robot records: images, ``CameraInfo`` and the
ground-truth camera pose as ``/tf`` ``map -> camera_optical`` at each image stamp. Two bags keep
the mapping node's input exactly the mapping part, with no frame-range logic in the node.

The bags are written once and reused: ``bags.json`` (what they hold) is written last, atomically,
so a scene folder without it, or with a different description, is rebuilt.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from seqace_ros.core.atomic_io import atomic_write_text
from seqace_ros.core.errors import SeqaceError
from seqace_ros.datasets.bag_writer import FramesBagConfig, write_frames_bag
from seqace_ros.datasets.base import PosedFrame, PosedFrameSource
from seqace_ros.datasets.folder import DatasetError, FolderDataset
from seqace_ros.datasets.synthetic import PRESETS, SyntheticScene, SyntheticSceneConfig
from seqace_ros.datasets.synthetic import preset as scene_preset
from seqace_ros.ros.demo.config import SceneSpec

MARKER = "bags.json"
MARKER_FORMAT = "seqace_ros.demo_bags"
MARKER_VERSION = 1
#: Stamp of the first real frame (folder frames carry their index as stamp) and the period
#: between frames: the dev frames were recorded at 30 Hz.
REAL_T0_NS = 1_700_000_000 * 1_000_000_000
REAL_FRAME_PERIOD_NS = 33_333_333
#: Synthetic frames are small and lossless: raw images, as ``seqace synth --bag`` writes them.
SYNTHETIC_BAG = FramesBagConfig()
#: Real 640x480 frames: JPEG, as a camera driver's compressed stream (a raw bag of 700 frames
#: would take 650 MB).
REAL_BAG = FramesBagConfig(image_topic="/camera/image_raw/compressed", transport="jpeg")


class DemoSceneError(SeqaceError, ValueError):
    """The demo's frames cannot be read (missing or incomplete data folder, unknown preset)."""


@dataclass(frozen=True)
class DemoBags:
    """The two bags of a scene and how to read them.

    Attributes:
        map_bag: rosbag2 (mcap) folder of the mapping frames.
        query_bag: rosbag2 (mcap) folder of the query frames.
        image_topic: image topic in both bags (Image, or CompressedImage for .../compressed).
        camera_info_topic: CameraInfo topic in both bags.
        map_frame: world frame of the ground-truth ``/tf``.
    """

    map_bag: Path
    query_bag: Path
    image_topic: str
    camera_info_topic: str
    map_frame: str


def prepare_bags(
    spec: SceneSpec, scene_dir: Path, log: Callable[[str], None] = print
) -> DemoBags:
    """The scene's bags in ``scene_dir``: reused when complete and of ``spec``, else written.

    Raises:
        DemoSceneError: missing or unusable real data, an unknown synthetic preset, or too few
            frames for the split.
    """
    check_scene(spec)
    bag_config = REAL_BAG if spec.source == "real" else SYNTHETIC_BAG
    bags = DemoBags(scene_dir / "map.mcap", scene_dir / "query.mcap", bag_config.image_topic,
                    bag_config.camera_info_topic, bag_config.map_frame)
    description = _describe(spec, bag_config)
    if _complete(scene_dir, bags, description):
        log(f"scene: reusing the bags in {scene_dir}")
        return bags
    mapping, query = _split_frames(spec)
    scene_dir.mkdir(parents=True, exist_ok=True)
    (scene_dir / MARKER).unlink(missing_ok=True)
    for bag in (bags.map_bag, bags.query_bag):
        shutil.rmtree(bag, ignore_errors=True)
    log(f"scene: writing {spec.mapping_frames} mapping and {spec.query_frames} query frames "
        f"({spec.name}) to {scene_dir}")
    write_frames_bag(bags.map_bag, mapping, bag_config, progress=True)
    write_frames_bag(bags.query_bag, query, bag_config, progress=True)
    atomic_write_text(scene_dir / MARKER, json.dumps(description, indent=2) + "\n")
    return bags


def check_scene(spec: SceneSpec) -> None:
    """Cheap checks of the scene's inputs, before any work: a known synthetic preset, an
    existing real data folder.

    Raises:
        DemoSceneError: the preset or the folder does not exist.
    """
    if spec.source == "synthetic" and spec.scene_preset not in PRESETS:
        raise DemoSceneError(f"unknown synthetic scene preset {spec.scene_preset!r}; "
                             f"known: {sorted(PRESETS)}")
    if spec.source == "real" and not (spec.data_dir is not None and spec.data_dir.is_dir()):
        raise DemoSceneError(f"real data not found: {spec.data_dir} is not a folder (pass "
                             "--data DIR with a 7-Scenes layout folder, e.g. redkitchen_dev)")


def _describe(spec: SceneSpec, bag_config: FramesBagConfig) -> dict[str, object]:
    """What the bags hold: compared with ``bags.json`` to decide on reuse."""
    scene: dict[str, object] = dataclasses.asdict(spec)
    scene["data_dir"] = None if spec.data_dir is None else str(spec.data_dir.resolve())
    if spec.source == "synthetic":
        scene["scene_config"] = _synthetic_config(spec).to_json_dict()
    return {"format": MARKER_FORMAT, "format_version": MARKER_VERSION, "scene": scene,
            "bag": dataclasses.asdict(bag_config)}


def _complete(scene_dir: Path, bags: DemoBags, description: dict[str, object]) -> bool:
    marker = scene_dir / MARKER
    if not (marker.is_file() and bags.map_bag.is_dir() and bags.query_bag.is_dir()):
        return False
    try:
        return bool(json.loads(marker.read_text()) == json.loads(json.dumps(description)))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def _synthetic_config(spec: SceneSpec) -> SyntheticSceneConfig:
    return scene_preset(spec.scene_preset, seed=spec.scene_seed,
                        n_mapping_frames=spec.mapping_frames, n_query_frames=spec.query_frames)


def _split_frames(spec: SceneSpec) -> tuple[Iterator[PosedFrame], Iterator[PosedFrame]]:
    """Lazy iterators over the mapping frames and the query frames, in time order."""
    if spec.source == "synthetic":
        scene = SyntheticScene(_synthetic_config(spec))
        n_map = spec.mapping_frames
        return _frames(scene, range(n_map)), _frames(scene, range(n_map, len(scene)))
    assert spec.data_dir is not None  # SceneSpec checks it
    dataset = _real_dataset(spec.data_dir)
    needed = spec.mapping_frames + spec.query_frames
    if len(dataset) < needed:
        raise DemoSceneError(
            f"{spec.data_dir} has {len(dataset)} frames; the demo needs {needed} "
            f"({spec.mapping_frames} mapping + {spec.query_frames} query)")
    return (_restamped(dataset, range(spec.mapping_frames)),
            _restamped(dataset, range(spec.mapping_frames, needed)))


def _real_dataset(data_dir: Path) -> FolderDataset:
    try:
        return FolderDataset(data_dir)
    except DatasetError as error:
        raise DemoSceneError(f"real data in {data_dir} is unusable: {error}") from None


def _frames(source: PosedFrameSource, indices: Sequence[int]) -> Iterator[PosedFrame]:
    return (source[i] for i in indices)


def _restamped(source: PosedFrameSource, indices: Sequence[int]) -> Iterator[PosedFrame]:
    """Folder frames stamped as a 30 Hz camera would stamp them (their index otherwise)."""
    for i in indices:
        yield dataclasses.replace(source[i], stamp_ns=REAL_T0_NS + i * REAL_FRAME_PERIOD_NS)
