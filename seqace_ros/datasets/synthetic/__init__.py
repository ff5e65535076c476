"""Synthetic indoor scenes with exact ground truth (issue 8).

Textured rooms with furniture-like boxes, rendered by a vectorised numpy ray caster along
smooth hand-held trajectories: RGB, registered depth and camera-to-world poses, written in
the 7-Scenes folder layout (``render_scene``) or as a rosbag with Image, CameraInfo and TF
``map -> camera_optical`` (``render_bag``). Deterministic per seed. The ``repetitive``
presets cover every surface with one small repeated pattern, leaving only a few distinctive
posters (issue 5).

Typical use::

    from seqace_ros.datasets.synthetic import preset, render_scene
    folder = render_scene(preset("small", seed=3), "out/synthetic_small_3")

or, without files, ``SyntheticScene(preset("tiny"))`` is a posed-frame source.
"""

from seqace_ros.datasets.synthetic.bag import render_bag
from seqace_ros.datasets.synthetic.config import (
    INT_LIMITS,
    MAX_FRAMES_PER_PASS,
    MAX_IMAGE_SIDE,
    PRESETS,
    SyntheticConfigError,
    SyntheticSceneConfig,
    preset,
)
from seqace_ros.datasets.synthetic.source import SyntheticScene
from seqace_ros.datasets.synthetic.trajectory import CameraPathError
from seqace_ros.datasets.synthetic.writer import render_scene, write_folder

__all__ = [
    "INT_LIMITS",
    "MAX_FRAMES_PER_PASS",
    "MAX_IMAGE_SIDE",
    "PRESETS",
    "CameraPathError",
    "SyntheticConfigError",
    "SyntheticScene",
    "SyntheticSceneConfig",
    "preset",
    "render_bag",
    "render_scene",
    "write_folder",
]
