"""Configuration of a synthetic scene, and the named presets, in one place."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.errors import SeqaceError

TextureMode = Literal["varied", "repetitive"]
TEXTURE_MODES: tuple[str, ...] = ("varied", "repetitive")

# Limits of every numeric field (inclusive), checked when a config is built, so that the
# command line, the demo and the Python API refuse a scene that would render for days or
# exhaust memory instead of starting it. Rendering is a numpy ray caster holding whole images
# (a few hundred bytes per pixel while it runs) and every texture's mip pyramid in memory.
MAX_SEED = 2**31 - 1  # as the mapping seed
MAX_IMAGE_SIDE = 2048  # pixels, width and height
MAX_FRAMES_PER_PASS = 20_000  # mapping frames, and query frames (7-Scenes' largest: 12 000 in all)
INT_LIMITS: dict[str, tuple[int, int]] = {
    "seed": (0, MAX_SEED),
    "width": (16, MAX_IMAGE_SIDE),
    "height": (16, MAX_IMAGE_SIDE),
    "n_mapping_frames": (1, MAX_FRAMES_PER_PASS),
    "n_query_frames": (0, MAX_FRAMES_PER_PASS),
    "n_furniture": (0, 32),
    "n_tables": (0, 8),
    "n_posters": (0, 32),
    "texture_size": (16, 2048),
}
POSITIVE_FLOAT_LIMITS: dict[str, float] = {  # each in (0, maximum]
    "step_m": 1.0,
    "fps": 1000.0,
    "repetitive_cell_m": 5.0,
    "min_clearance_m": 5.0,
}
NON_NEGATIVE_FLOAT_LIMITS: dict[str, float] = {  # each in [0, maximum]
    "noise_std": 255.0,
    "query_offset_m": 5.0,
    "query_yaw_deg": 180.0,
    "query_inward_m": 5.0,
    "jitter_position_m": 1.0,
    "jitter_rotation_deg": 45.0,
}


class SyntheticConfigError(SeqaceError, ValueError):
    """A synthetic scene config field out of its limits (see :data:`INT_LIMITS` and the
    float limits beside it); the message names the field, its limits and the value."""


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

    Every numeric field has limits (:data:`INT_LIMITS`, :data:`POSITIVE_FLOAT_LIMITS`,
    :data:`NON_NEGATIVE_FLOAT_LIMITS`; e.g. at most :data:`MAX_FRAMES_PER_PASS` frames per
    pass and :data:`MAX_IMAGE_SIDE` pixels per side).

    Raises:
        SyntheticConfigError: (a ``ValueError``) on a field of the wrong type or out of its
            limits.
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
        for name, (minimum, maximum) in INT_LIMITS.items():
            _check_int(name, getattr(self, name), minimum, maximum)
        if self.texture_size & (self.texture_size - 1):
            raise SyntheticConfigError(
                f"texture_size must be a power of two, got {self.texture_size}")
        _check_float("focal_ratio", self.focal_ratio, positive=False, maximum=5.0, minimum=0.2)
        if not isinstance(self.room_size_m, tuple | list) or len(self.room_size_m) != 3 or not all(
                _is_number(s) and math.isfinite(s) and 2.0 <= s <= 50.0
                for s in self.room_size_m):
            raise SyntheticConfigError(
                f"room_size_m must be three sizes in [2, 50] m, got {self.room_size_m}")
        if self.texture_mode not in TEXTURE_MODES:
            raise SyntheticConfigError(
                f"texture_mode must be one of {TEXTURE_MODES}, got {self.texture_mode!r}")
        for name, maximum in POSITIVE_FLOAT_LIMITS.items():
            _check_float(name, getattr(self, name), positive=True, maximum=maximum)
        for name in ("query_reverse", "rotate_tables"):
            if not isinstance(getattr(self, name), bool):
                raise SyntheticConfigError(f"{name} must be a bool, got {getattr(self, name)!r}")
        _check_float("query_turn_deg", self.query_turn_deg, positive=False, maximum=180.0,
                     minimum=-180.0)
        for name, maximum in NON_NEGATIVE_FLOAT_LIMITS.items():
            _check_float(name, getattr(self, name), positive=False, maximum=maximum)

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
            SyntheticConfigError: on unknown keys (a typo must not silently fall back to a
                default) or a bad value.
        """
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise SyntheticConfigError(
                f"unknown SyntheticSceneConfig keys {unknown}; known: {sorted(names)}")
        converted = {key: tuple(value) if isinstance(value, list) else value
                     for key, value in values.items()}
        return cls(**converted)  # type: ignore[arg-type]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_int(name: str, value: object, minimum: int, maximum: int) -> None:
    if not (_is_number(value) and isinstance(value, int) and minimum <= value <= maximum):
        raise SyntheticConfigError(
            f"{name} must be an integer >= {minimum} and <= {maximum}, got {value!r}")


def _check_float(name: str, value: object, positive: bool, maximum: float,
                 minimum: float = 0.0) -> None:
    if not _is_number(value) or not math.isfinite(value):  # type: ignore[arg-type]
        raise SyntheticConfigError(f"{name} must be a finite number, got {value!r}")
    low_ok = value > minimum if positive else value >= minimum  # type: ignore[operator]
    if not low_ok or value > maximum:  # type: ignore[operator]
        raise SyntheticConfigError(
            f"{name} must be {'>' if positive else '>='} {minimum:g} and <= {maximum:g}, "
            f"got {value!r}")


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
