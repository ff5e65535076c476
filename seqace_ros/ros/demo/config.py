"""The demo's settings: one frozen config, and the per-source defaults in one place."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from seqace_ros.core.errors import SeqaceError
from seqace_ros.pipeline.localization.modes import MODE_NAMES

DemoSource = Literal["synthetic", "real"]


class DemoConfigError(SeqaceError, ValueError):
    """A demo setting is out of range or inconsistent."""


class DemoError(SeqaceError, RuntimeError):
    """A step of the demo failed; the message says which and why."""


@dataclass(frozen=True)
class SceneSpec:
    """Where the demo's posed frames come from and how they split into map and query parts.

    Attributes:
        source: ``synthetic`` (a rendered room) or ``real`` (a 7-Scenes layout folder).
        scene_preset: synthetic scene preset name
            (:data:`seqace_ros.datasets.synthetic.PRESETS`); synthetic only.
        scene_seed: seed of the synthetic scene.
        mapping_frames: synthetic: the scene's mapping frames (its first frames); real: the
            first ``mapping_frames`` frames of the folder.
        query_frames: synthetic: the scene's query frames (rendered after the mapping frames);
            real: the ``query_frames`` frames following the mapping part.
        data_dir: the folder of real frames; real only.
    """

    source: DemoSource
    mapping_frames: int
    query_frames: int
    scene_preset: str = "small"
    scene_seed: int = 0
    data_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.source not in ("synthetic", "real"):
            raise DemoConfigError(f"source must be synthetic or real, got {self.source!r}")
        if self.mapping_frames < 1 or self.query_frames < 1:
            raise DemoConfigError(
                f"need at least one mapping and one query frame, got {self.mapping_frames} "
                f"and {self.query_frames}")
        if self.source == "real" and self.data_dir is None:
            raise DemoConfigError("a real scene needs data_dir")

    @property
    def name(self) -> str:
        """Folder name of the scene's bags, encoding what they hold."""
        if self.source == "real":
            assert self.data_dir is not None  # checked in __post_init__
            return f"real-{self.data_dir.name}-{self.mapping_frames}+{self.query_frames}"
        return (f"synthetic-{self.scene_preset}-s{self.scene_seed}-"
                f"{self.mapping_frames}+{self.query_frames}")


@dataclass(frozen=True)
class DemoConfig:
    """Everything one demo run does.

    Attributes:
        scene: the posed frames and their map / query split.
        out_dir: root of the demo's outputs (bags, map, report, plot, logs).
        mapping_preset: mapping preset of ``mapping_node``
            (:data:`seqace_ros.pipeline.mapping.config.PRESETS`).
        mapping_iterations: training steps; 0 keeps the preset's.
        mapping_seed: seed of the mapping run.
        mode: relocalization mode of ``relocalization_node`` (one of
            :data:`~seqace_ros.pipeline.localization.modes.MODE_NAMES`).
        rate_hz: replay rate of the query frames, frames per second.
        device: torch device of both nodes (auto, cpu, cuda).
        threads: torch threads of each node (``OMP_NUM_THREADS``); None leaves the
            environment's. One by default: on a machine with few, shared cores, several threads
            per process spin against each other and against the other node.
        node_timeout_s: longest wait for a node to start (map loaded) or to finish the
            frames sent to it, seconds.
        reuse_map: use the map of an earlier run with the same scene and mapping settings
            when there is one (e.g. to try the other mode) instead of mapping again.
    """

    scene: SceneSpec
    out_dir: Path
    mapping_preset: str
    mapping_iterations: int = 0
    mapping_seed: int = 0
    mode: str = "single"
    rate_hz: float = 5.0
    device: str = "cpu"
    threads: int | None = 1
    node_timeout_s: float = 120.0
    reuse_map: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODE_NAMES:
            raise DemoConfigError(f"mode must be one of {MODE_NAMES}, got {self.mode!r}")
        if not (math.isfinite(self.rate_hz) and 0.0 < self.rate_hz <= 100.0):
            raise DemoConfigError(f"rate must be in (0, 100] Hz, got {self.rate_hz}")
        if self.mapping_iterations < 0:
            raise DemoConfigError(
                f"mapping iterations must be >= 0 (0: the preset's), got {self.mapping_iterations}")
        if self.threads is not None and self.threads < 1:
            raise DemoConfigError(f"threads must be >= 1, got {self.threads}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise DemoConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.node_timeout_s <= 0:
            raise DemoConfigError(f"node timeout must be > 0 s, got {self.node_timeout_s}")

    @property
    def scene_dir(self) -> Path:
        """The scene's bags (reused by later runs)."""
        return self.out_dir / self.scene.name

    @property
    def map_path(self) -> Path:
        """The map of the scene's mapping bag with these mapping settings (and, beside it,
        ``mapping_node``'s report)."""
        iterations = self.mapping_iterations or "preset"
        name = f"{self.mapping_preset}-{iterations}-s{self.mapping_seed}"
        return self.scene_dir / name / "map.safetensors"

    @property
    def run_dir(self) -> Path:
        """This run's report, plot and node logs."""
        return self.map_path.parent / self.mode


@dataclass(frozen=True)
class SourceDefaults:
    """The demo's defaults for one source, chosen to fit its time budget (timings: README)."""

    mapping_frames: int
    query_frames: int
    mapping_preset: str
    mapping_iterations: int
    scene_preset: str = "small"


#: One place for the defaults of ``--real`` and of the synthetic demo.
SOURCE_DEFAULTS: dict[str, SourceDefaults] = {
    # The "small" synthetic room (320x240): 300 mapping frames, 100 query frames.
    "synthetic": SourceDefaults(mapping_frames=300, query_frames=100, mapping_preset="demo",
                                mapping_iterations=0),
    # redkitchen_dev: frames 0-499 map, 500-699 query (the dev split of the README).
    "real": SourceDefaults(mapping_frames=500, query_frames=200, mapping_preset="demo",
                           mapping_iterations=0),
}
