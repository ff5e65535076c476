"""Configuration of a synthetic scene, and the named presets, in one place."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from seqace_ros.core.camera import Intrinsics

TextureMode = Literal["varied", "repetitive"]
TEXTURE_MODES: tuple[str, ...] = ("varied", "repetitive")


@dataclass(frozen=True)
class SyntheticSceneConfig:
    """Everything that defines a synthetic scene; the same config and seed give the same files.

    World frame: z up, the room spans ``[0, room_size_m[i]]`` on each axis, floor at z = 0.
    Cameras use OpenCV axes (x right, y down, z forward).

    Attributes:
        seed: seed of every random draw (layout, textures, trajectory, noise).
        width: image width in pixels.
        height: image height in pixels.
        focal_ratio: focal length over image width, fx = fy = focal_ratio * width (7-Scenes:
            525 / 640); the principal point is the image centre (width / 2, height / 2).
        n_mapping_frames: frames of the mapping pass (the first frames written).
        n_query_frames: frames of the query pass (written after the mapping frames); it
            revisits the mapped part of the path from slightly different viewpoints.
        step_m: camera-centre travel along the base path between consecutive frames, metres.
        fps: frame rate, used for time stamps and hand-held tremor, Hz.
        room_size_m: room extent (x, y, z) in metres.
        n_furniture: boxes placed against the walls (cabinets, shelves).
        n_tables: free-standing tables (a top and four legs) near the room centre.
        n_posters: thin textured panels on the walls, each with its own image.
        rotate_tables: rotate the free-standing tables about z by a random angle.
        texture_mode: ``"varied"``: every surface has its own texture; ``"repetitive"``: every
            wall, floor, box and table has the same small tiled pattern and only the posters
            are distinctive.
        repetitive_cell_m: side of one repeated pattern cell in ``"repetitive"`` mode, metres.
        texture_size: side of every texture in texels (a power of two).
        noise_std: standard deviation of additive Gaussian image noise, in 8-bit levels.
        min_clearance_m: minimum distance from every camera centre to every surface, metres.
        query_offset_m: amplitude of the query pass's smooth position offset, metres.
        query_yaw_deg: amplitude of the query pass's smooth viewing-direction offset, degrees.
        query_inward_m: constant offset of the query pass towards the inside of the loop
            (away from the walls the cameras face), metres.
        query_reverse: the query pass walks the mapped stretch of the loop backwards.
        query_turn_deg: constant yaw of the query cameras away from the mapping cameras'
            viewing direction, degrees (with ``query_reverse``: revisiting the room from
            another direction).
        jitter_position_m: amplitude of hand-held position tremor, metres.
        jitter_rotation_deg: amplitude of hand-held rotation tremor, degrees.
    """

    seed: int = 0
    width: int = 640
    height: int = 480
    focal_ratio: float = 525.0 / 640.0
    n_mapping_frames: int = 600
    n_query_frames: int = 200
    step_m: float = 0.012
    fps: float = 30.0
    room_size_m: tuple[float, float, float] = (6.0, 5.0, 2.7)
    n_furniture: int = 7
    n_tables: int = 1
    n_posters: int = 4
    rotate_tables: bool = True
    texture_mode: TextureMode = "varied"
    repetitive_cell_m: float = 0.25
    texture_size: int = 512
    noise_std: float = 1.0
    min_clearance_m: float = 0.5
    query_offset_m: float = 0.12
    query_yaw_deg: float = 10.0
    query_inward_m: float = 0.0
    query_reverse: bool = False
    query_turn_deg: float = 0.0
    jitter_position_m: float = 0.004
    jitter_rotation_deg: float = 0.4

    def __post_init__(self) -> None:
        for name, minimum in (("seed", 0), ("width", 16), ("height", 16), ("n_mapping_frames", 1),
                              ("n_query_frames", 0), ("n_furniture", 0), ("n_tables", 0),
                              ("n_posters", 0), ("texture_size", 16)):
            _check_int(name, getattr(self, name), minimum)
        if self.texture_size & (self.texture_size - 1):
            raise ValueError(f"texture_size must be a power of two, got {self.texture_size}")
        _check_float("focal_ratio", self.focal_ratio, positive=True)
        if not 0.2 <= self.focal_ratio <= 5.0:
            raise ValueError(f"focal_ratio must be in [0.2, 5], got {self.focal_ratio}")
        if len(self.room_size_m) != 3 or not all(
                math.isfinite(s) and 2.0 <= s <= 50.0 for s in self.room_size_m):
            raise ValueError(
                f"room_size_m must be three sizes in [2, 50] m, got {self.room_size_m}")
        if self.texture_mode not in TEXTURE_MODES:
            raise ValueError(
                f"texture_mode must be one of {TEXTURE_MODES}, got {self.texture_mode!r}")
        for name in ("step_m", "fps", "repetitive_cell_m", "min_clearance_m"):
            _check_float(name, getattr(self, name), positive=True)
        if not isinstance(self.query_reverse, bool):
            raise ValueError(f"query_reverse must be a bool, got {self.query_reverse!r}")
        if not -180.0 <= self.query_turn_deg <= 180.0:
            raise ValueError(f"query_turn_deg must be in [-180, 180], got {self.query_turn_deg}")
        for name in ("noise_std", "query_offset_m", "query_yaw_deg", "query_inward_m",
                     "jitter_position_m", "jitter_rotation_deg"):
            _check_float(name, getattr(self, name), positive=False)

    @property
    def n_frames(self) -> int:
        """Mapping plus query frames."""
        return self.n_mapping_frames + self.n_query_frames

    @property
    def intrinsics(self) -> Intrinsics:
        """The pinhole camera of every frame."""
        focal_px = self.focal_ratio * self.width
        return Intrinsics(fx=focal_px, fy=focal_px, cx=self.width / 2.0, cy=self.height / 2.0,
                          width=self.width, height=self.height)

    def to_json_dict(self) -> dict[str, object]:
        """The config as JSON-ready values (tuples become lists)."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }

    @classmethod
    def from_json_dict(cls, values: dict[str, object]) -> SyntheticSceneConfig:
        """Inverse of :meth:`to_json_dict`.

        Raises:
            ValueError: on unknown keys (a typo must not silently fall back to a default).
        """
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown SyntheticSceneConfig keys {unknown}; known: {sorted(names)}")
        converted = {key: tuple(value) if isinstance(value, list) else value
                     for key, value in values.items()}
        return cls(**converted)  # type: ignore[arg-type]


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_float(name: str, value: object, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0.0 or (positive and value == 0.0):
        raise ValueError(f"{name} must be {'>' if positive else '>='} 0, got {value!r}")


PRESETS: dict[str, SyntheticSceneConfig] = {
    # Unit tests: renders in about a second.
    "tiny": SyntheticSceneConfig(width=160, height=120, n_mapping_frames=14, n_query_frames=6,
                                 texture_size=256),
    # Integration tests and quick experiments.
    "small": SyntheticSceneConfig(width=320, height=240, n_mapping_frames=300, n_query_frames=100),
    # The 7-Scenes-like default: 640x480, fx = fy = 525.
    "default": SyntheticSceneConfig(),
    # Issue 5: strongly repetitive texture, where single-frame relocalization often fails.
    "repetitive": SyntheticSceneConfig(texture_mode="repetitive"),
    # Hard benchmarks (bench/splits_bench.py): query passes that step 10, 25 and 50 cm back
    # from the mapping pass and turn 20 degrees, and one that walks the room backwards
    # looking 45 degrees away from the mapping views.
    **{
        f"offset_{round(100 * inward_m)}cm": SyntheticSceneConfig(
            width=320, height=240, n_mapping_frames=300, n_query_frames=100,
            query_offset_m=0.02, query_inward_m=inward_m, query_turn_deg=20.0)
        for inward_m in (0.10, 0.25, 0.50)
    },
    "reverse": SyntheticSceneConfig(
        width=320, height=240, n_mapping_frames=300, n_query_frames=100,
        query_reverse=True, query_turn_deg=45.0),
    "repetitive_small": SyntheticSceneConfig(
        width=320, height=240, n_mapping_frames=300, n_query_frames=100,
        texture_mode="repetitive"),
}


def preset(name: str, **overrides: object) -> SyntheticSceneConfig:
    """A named preset, optionally with some fields replaced (e.g. ``seed=3``).

    Raises:
        KeyError: if ``name`` is not a preset.
        TypeError: if an override names no field.
    """
    if name not in PRESETS:
        raise KeyError(f"unknown synthetic scene preset {name!r}; known: {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)  # type: ignore[arg-type]
