"""Write a synthetic scene in the 7-Scenes folder layout, atomically.

Layout (identical to ``redkitchen_dev`` except that colour is lossless PNG, as in the
original 7-Scenes release, and depth is registered to the colour camera):

- ``frame-XXXXXX.color.png``: RGB, 8 bit.
- ``frame-XXXXXX.depth.png``: uint16 z-depth in millimetres, 0 = invalid.
- ``frame-XXXXXX.pose.txt``: 4x4 camera-to-world matrix, metres, OpenCV camera axes.
- ``color-intrinsics.txt``: the 3x3 calibration matrix.
- ``scene.json``: config, seed, mapping/query split, intrinsics, layout summary.

The scene is rendered into a hidden sibling folder and renamed into place when complete,
so an interrupted render never leaves a folder that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.atomic_io import atomic_write_text
from seqace_ros.core.camera import Intrinsics
from seqace_ros.datasets.synthetic.config import SyntheticSceneConfig
from seqace_ros.datasets.synthetic.source import SyntheticScene, frame_name

FORMAT = "seqace_ros.synthetic_scene"
FORMAT_VERSION = 1
SCENE_JSON = "scene.json"


def render_scene(config: SyntheticSceneConfig, out_dir: str | os.PathLike[str],
                 overwrite: bool = False) -> Path:
    """Render ``config`` into ``out_dir`` (7-Scenes folder layout) and return its path.

    Idempotent: if ``out_dir`` already holds a finished scene of the same config, nothing is
    rendered.

    Raises:
        FileExistsError: if ``out_dir`` holds something else (a different scene, or other
            files) and ``overwrite`` is False.
    """
    out = Path(out_dir)
    existing = _finished_config(out)
    if existing is not None and existing == config.to_json_dict() and not overwrite:
        return out
    if existing is not None and not overwrite:
        raise FileExistsError(
            f"{out} holds a synthetic scene of a different config; pass overwrite=True "
            f"to replace it (differs in: {_differences(existing, config.to_json_dict())})")
    return write_folder(SyntheticScene(config), out, overwrite=overwrite)


def write_folder(scene: SyntheticScene, out_dir: str | os.PathLike[str],
                 overwrite: bool = False) -> Path:
    """Render every frame of ``scene`` into ``out_dir``.

    Files are written into a temporary sibling folder, ``scene.json`` last, then the folder
    is renamed to ``out_dir``; on any error the temporary folder is removed.

    Raises:
        FileExistsError: if ``out_dir`` exists (other than as an empty folder) and
            ``overwrite`` is False.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder; pass overwrite=True")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (staging / "color-intrinsics.txt").write_text(intrinsics_text(scene.intrinsics))
        for index in range(len(scene)):
            rgb_HW3, depth_mm_HW = scene.render_rgbd(index)
            stem = staging / frame_name(index)
            _write_png(stem.with_name(stem.name + ".color.png"), rgb_HW3[..., ::-1])
            _write_png(stem.with_name(stem.name + ".depth.png"), depth_mm_HW)
            stem.with_name(stem.name + ".pose.txt").write_text(
                pose_text(scene.T_world_cam_N44[index]))
        atomic_write_text(staging / SCENE_JSON,
                          json.dumps(scene_metadata(scene), indent=2, sort_keys=True) + "\n")
        _replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def intrinsics_text(intrinsics: Intrinsics) -> str:
    """The 3x3 calibration matrix as 7-Scenes / redkitchen_dev write it (``525.0 0.0 320.0``)."""
    K = intrinsics.K
    return "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in K)


def pose_text(T_world_cam: NDArray[np.float64]) -> str:
    """A 4x4 pose as 7-Scenes writes it: four rows of ``%.18e`` separated by spaces."""
    return "".join(" ".join(f"{v:.18e}" for v in row) + "\n" for row in np.asarray(T_world_cam))


def scene_metadata(scene: SyntheticScene) -> dict[str, object]:
    """Contents of ``scene.json``: everything needed to regenerate and to split the frames."""
    config = scene.config
    K = scene.intrinsics
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "seed": config.seed,
        "config": config.to_json_dict(),
        "n_frames": config.n_frames,
        "mapping_frames": f"0:{config.n_mapping_frames}",
        "query_frames": f"{config.n_mapping_frames}:{config.n_frames}",
        "frame_rate_hz": config.fps,
        "intrinsics": {"fx": K.fx, "fy": K.fy, "cx": K.cx, "cy": K.cy, "width": K.width,
                       "height": K.height},
        "conventions": {
            "pose": "camera-to-world 4x4, metres, OpenCV camera axes (x right, y down, z forward)",
            "world": "z up, floor at z = 0, room spans [0, room_size_m] on each axis",
            "depth": "uint16 z-depth in millimetres registered to the colour image, 0 = invalid",
        },
        "textures": list(scene.scene.atlas.names),
        "boxes": [{"kind": box.kind, "centre_m": [round(v, 6) for v in box.centre],
                   "half_size_m": [round(v, 6) for v in box.half_size],
                   "yaw_deg": round(float(np.degrees(box.yaw_rad)), 6)}
                  for box in scene.scene.boxes],
    }


def _finished_config(out: Path) -> dict[str, object] | None:
    """The config of a finished scene in ``out``, or None if there is none."""
    path = out / SCENE_JSON
    if not path.is_file():
        return None
    try:
        metadata = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file (format = {metadata.get('format')!r})")
    if metadata.get("format_version") != FORMAT_VERSION:
        return {}
    config = metadata.get("config")
    return config if isinstance(config, dict) else {}


def _differences(old: dict[str, object], new: dict[str, object]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys) or "format version"


def _write_png(path: Path, image: NDArray[np.generic]) -> None:
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    path.write_bytes(encoded.tobytes())


def _replace_folder(staging: Path, out: Path) -> None:
    """Move the finished ``staging`` folder to ``out``; an old ``out`` is removed after."""
    if not out.exists():
        staging.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    out.rename(old)
    staging.rename(out)
    shutil.rmtree(old)
