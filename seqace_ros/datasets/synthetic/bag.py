"""Write a synthetic scene as a rosbag (rosbag2 mcap by default): what a robot would record.

Topics (with the default :class:`~seqace_ros.datasets.bag_writer.FramesBagConfig`): raw
``sensor_msgs/Image`` on ``/camera/image_raw``, ``sensor_msgs/CameraInfo`` on
``/camera/camera_info`` (frame ``camera_optical``) and the ground-truth pose as ``/tf``
``map -> camera_optical`` at every image stamp (``index / fps``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from seqace_ros.datasets.bag_writer import FramesBagConfig, write_frames_bag
from seqace_ros.datasets.synthetic.config import SyntheticSceneConfig
from seqace_ros.datasets.synthetic.source import SyntheticScene


def render_bag(config: SyntheticSceneConfig, bag_path: str | os.PathLike[str],
               bag_config: FramesBagConfig | None = None, overwrite: bool = False) -> Path:
    """Render ``config`` into a new bag at ``bag_path`` and return its path.

    The bag is written under a temporary sibling name and renamed when complete, so an
    interrupted render leaves no bag behind (nor replaces an old one).

    Raises:
        FileExistsError: if ``bag_path`` exists and ``overwrite`` is False.
    """
    bag_config = bag_config or FramesBagConfig()
    out = Path(bag_path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    # A fresh, unused sibling name (the bag writer only creates new paths).
    staging_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    staging = staging_dir / out.name
    try:
        write_frames_bag(staging, SyntheticScene(config), bag_config)
        if out.is_dir():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()
        staging.rename(out)
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
    return out
