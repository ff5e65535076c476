"""Fixtures of the relocalization-node tests: a real map of the dev frames, built once.

``dev_map_path`` trains a map of redkitchen_dev frames 0-499 (every 5th frame: the encoder
pass over all 500 costs minutes on 2 CPU cores, and the node tests check that the node
reproduces the offline localizer, not the map's accuracy) with the ``test`` mapping preset
(the same code as ``seqace map --preset test``) and caches it in pytest's cache directory,
keyed by a hash of the mapping code, the frames and the preset: a clean clone (CI) builds it
once, later runs reuse it until something it depends on changes. For local debugging,
``SEQACE_NODE_TEST_MAP=FILE`` uses a map built beforehand instead (e.g. by
``seqace map ../shared/data/redkitchen_dev --frames 0:500 --preset test --out FILE``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

import pytest
from data_paths import require_redkitchen

ROOT = Path(__file__).resolve().parents[2]
MAP_ENV = "SEQACE_NODE_TEST_MAP"
MAPPING_FRAMES = range(0, 500, 5)
MAP_PRESET = "test"
#: Code whose changes invalidate the cached map.
_MAP_CODE = [
    "seqace_ros/core", "seqace_ros/pipeline/mapping", "seqace_ros/datasets/folder.py",
]


@pytest.fixture(scope="session")
def dev_data() -> Path:
    """The dev data folder; skips (with the reason) when it is absent."""
    return require_redkitchen()


def _map_key(data: Path) -> str:
    from seqace_ros.pipeline.mapping.config import preset

    digest = hashlib.sha256()
    files = []
    for entry in _MAP_CODE:
        path = ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    for index in MAPPING_FRAMES:
        files += [data / f"frame-{index:06d}.color.jpg", data / f"frame-{index:06d}.pose.txt"]
    files.append(data / "color-intrinsics.txt")
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    digest.update(repr(asdict(preset(MAP_PRESET))).encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def dev_map_path(dev_data: Path, pytestconfig: pytest.Config) -> Path:
    """A map of dev frames 0-499, every 5th (``test`` preset, CPU, seed 0), cached."""
    from seqace_ros.core.map_file import save_map
    from seqace_ros.datasets.folder import FolderDataset
    from seqace_ros.pipeline.mapping import map_scene, preset

    if MAP_ENV in os.environ:
        given = Path(os.environ[MAP_ENV])
        if not given.is_file():
            pytest.fail(f"{MAP_ENV}={given}: no such map file")
        return given
    cache_dir = Path(pytestconfig.cache.mkdir("seqace_ros_node_maps"))
    path = cache_dir / f"redkitchen_0-499s5_{MAP_PRESET}_{_map_key(dev_data)}.safetensors"
    if not path.is_file():
        scene_map = map_scene(
            FolderDataset(dev_data), MAPPING_FRAMES, preset(MAP_PRESET), device="cpu",
            progress=False,
        )
        save_map(scene_map, path)
    return path
