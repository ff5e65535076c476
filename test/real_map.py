"""The one real map the real-data tests share, trained once and cached across runs.

A map of redkitchen_dev frames 0-299, every 5th (:data:`MAPPING_FRAMES`), with the ``test``
mapping preset (the same code as ``seqace map --preset test``, seed 0, CPU). Every 5th frame
keeps the encoder pass short on a 2-core CI machine. The frames are chosen for the tests that
need accuracy: the single-frame and sequence tests localize held-out frames inside 0-299
(frames that are not multiples of 5, e.g. 21, 61..64, 271..274). Spreading the same small head
and step budget over frames 0-499 makes it too coarse for them (checked over three seeds). The
node tests query frames 500-599 and need only that the offline localizer finds a pose with
many inliers there, which this map gives: they check that a node reproduces the offline
localizer, not the map's accuracy.

The map is cached in pytest's cache directory, keyed by a hash of the mapping code, the frames
and the preset: a clean clone (CI) trains it once, later runs reuse it until something it
depends on changes. ``SEQACE_TEST_MAP=FILE`` uses a map of this scene built beforehand instead
(for local debugging; tests that check ``mapping_stats`` expect :data:`MAPPING_FRAMES`).

``test/conftest.py`` exposes it as the session fixtures ``dev_data``, ``dev_map_path`` and
``dev_scene_map``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAP_ENV = "SEQACE_TEST_MAP"
MAPPING_FRAMES = range(0, 300, 5)
MAP_PRESET = "test"
MAP_SEED = 0
#: Code whose changes invalidate the cached map.
_MAP_CODE = ("seqace_ros/core", "seqace_ros/pipeline/mapping", "seqace_ros/datasets/folder.py")


def _map_key(data: Path) -> str:
    """Hash of what the map depends on: mapping code, mapping frames, intrinsics, preset."""
    from seqace_ros.pipeline.mapping import preset

    digest = hashlib.sha256()
    files: list[Path] = []
    for entry in _MAP_CODE:
        path = ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    for index in MAPPING_FRAMES:
        files += [data / f"frame-{index:06d}.color.jpg", data / f"frame-{index:06d}.pose.txt"]
    files.append(data / "color-intrinsics.txt")
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    digest.update(repr(asdict(preset(MAP_PRESET, seed=MAP_SEED))).encode())
    return digest.hexdigest()[:16]


def dev_map_file(data: Path, cache_dir: Path) -> Path:
    """The shared map file: ``$SEQACE_TEST_MAP``, else the cached map, trained when missing.

    Args:
        data: the redkitchen_dev folder.
        cache_dir: where trained maps are kept between runs (pytest's cache).

    Returns:
        Path of the map file.
    """
    from seqace_ros.core.map_file import save_map
    from seqace_ros.datasets.folder import FolderDataset
    from seqace_ros.pipeline.mapping import map_scene, preset

    if MAP_ENV in os.environ:
        given = Path(os.environ[MAP_ENV])
        if not given.is_file():
            pytest.fail(f"{MAP_ENV}={given}: no such map file")
        return given
    frames = f"{MAPPING_FRAMES.start}-{MAPPING_FRAMES.stop - 1}s{MAPPING_FRAMES.step}"
    path = cache_dir / f"redkitchen_{frames}_{MAP_PRESET}_{_map_key(data)}.safetensors"
    if not path.is_file():
        scene_map = map_scene(FolderDataset(data), MAPPING_FRAMES,
                              preset(MAP_PRESET, seed=MAP_SEED), device="cpu", progress=False)
        save_map(scene_map, path)
    return path
