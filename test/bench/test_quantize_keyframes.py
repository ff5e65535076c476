"""bench/quantize_keyframes.py: a map's copy with quantized keyframe descriptors, the same head
and keyframes otherwise, and a report that gives the copy's sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from seqace_ros.core.head import HeadConfig, SceneHead
from seqace_ros.core.keyframes import Keyframes
from seqace_ros.core.map_file import SceneMap, load_map, save_map
from seqace_ros.pipeline.mapping.report import ReportPaths

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "quantize_keyframes.py"


def _map_with_float16_keyframes(path: Path) -> Path:
    rng = np.random.default_rng(0)
    descriptors = rng.normal(size=(3000, 64)) * np.geomspace(1.0, 0.1, 64)
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    keyframes = Keyframes(
        T_world_cam_K44=np.tile(np.eye(4, dtype=np.float32), (3, 1, 1)),
        offsets_K1=np.array([0, 1000, 2000, 3000], dtype=np.int64),
        descriptors_ND=descriptors.astype(np.float16),
        points_N3=rng.normal(size=(3000, 3)).astype(np.float32))
    head = SceneHead(HeadConfig(in_channels=8, width=16, num_blocks=0))
    scene_map = replace(SceneMap.from_head(head, "xfeat-ms192", "ab" * 32, 480),
                        keyframes=keyframes)
    save_map(scene_map, path)
    ReportPaths.for_map(path).json.write_text(json.dumps(
        {"map": {"path": str(path), "bytes": path.stat().st_size,
                 "keyframe_bytes": keyframes.nbytes}, "timing_s": {"total": 1.0}}))
    return path


def _run(*args: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, check=False, timeout=120)


def test_copy_stores_codes_and_reports_its_sizes(tmp_path: Path) -> None:
    source = _map_with_float16_keyframes(tmp_path / "f16.map")
    done = _run(source, tmp_path / "q.map", "--descriptor-bytes", "8")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    copy, original = load_map(tmp_path / "q.map"), load_map(source)
    assert copy.keyframes is not None
    assert original.keyframes is not None
    assert copy.keyframes.descriptor_bytes == 8
    np.testing.assert_array_equal(copy.keyframes.points_N3, original.keyframes.points_N3)
    assert all(np.array_equal(copy.state_dict[k], v) for k, v in original.state_dict.items())
    report = json.loads(ReportPaths.for_map(tmp_path / "q.map").json.read_text())
    assert report["map"]["bytes"] == (tmp_path / "q.map").stat().st_size
    assert report["map"]["keyframe_bytes"] == copy.keyframes.nbytes < original.keyframes.nbytes
    assert report["timing_s"] == {"total": 1.0}
    assert summary["map_bytes"] == [source.stat().st_size, (tmp_path / "q.map").stat().st_size]
    assert 0.9 < summary["mean_cosine"] < 1.0


def test_a_map_already_quantized_is_refused(tmp_path: Path) -> None:
    source = _map_with_float16_keyframes(tmp_path / "f16.map")
    assert _run(source, tmp_path / "q.map").returncode == 0
    again = _run(tmp_path / "q.map", tmp_path / "qq.map")
    assert again.returncode != 0
    assert "has no float16 keyframe descriptors" in again.stderr
    assert not (tmp_path / "qq.map").exists()
