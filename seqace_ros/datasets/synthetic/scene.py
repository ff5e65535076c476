"""Scene geometry of a synthetic room: an inverted box (walls, floor, ceiling) plus boxes.

World frame: z up, the room spans ``[0, size]`` on each axis (metres). Boxes may be
rotated about the world z axis by ``yaw_rad`` around their centre (tables); walls,
furniture and posters are axis-aligned.

Faces are numbered 0..5 as (-x, +x, -y, +y, -z, +z) in the box's own frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from seqace_ros.datasets.synthetic.config import SyntheticSceneConfig
from seqace_ros.datasets.synthetic.textures import (
    ALL_TEXTURES,
    PHOTO_TEXTURES,
    REPETITIVE_CELLS,
    REPETITIVE_SOURCES,
    TextureAtlas,
    make_repetitive_texture,
    make_texture,
)

N_FACES = 6
# Metres covered by one repeat of a photo / procedural texture (varied mode).
PHOTO_TILE_M = (1.6, 2.6)
PROCEDURAL_TILE_M = (0.8, 1.8)


@dataclass(frozen=True)
class Box:
    """A solid box.

    Attributes:
        centre: (x, y, z) of the centre in the world frame, metres.
        half_size: half extents (x, y, z) in the box's own frame, metres.
        yaw_rad: rotation of the box about the world z axis through its centre.
        material: index of the material of all its faces.
        kind: what it stands for (``furniture``, ``table``, ``object``, ``poster``).
    """

    centre: tuple[float, float, float]
    half_size: tuple[float, float, float]
    yaw_rad: float
    material: int
    kind: str


@dataclass(frozen=True)
class Material:
    """Planar texture mapping of a surface.

    Texture coordinates are the surface's in-plane coordinates in metres (measured from
    the box corner, right and down as seen from outside), divided by ``tile_m`` and shifted
    by ``offset``: one texture repeat covers ``tile_m`` metres.
    """

    texture: int
    tile_m: tuple[float, float]
    offset: tuple[float, float]


@dataclass(frozen=True)
class Scene:
    """A room with boxes, their materials and the textures they use.

    Attributes:
        room_size_m: (x, y, z) extent of the room; its inner faces are the walls.
        room_materials: material index of each room face (-x, +x, -y, +y, floor, ceiling).
        boxes: the solid boxes inside the room.
        materials: every material; ``texture`` indexes ``atlas``.
        atlas: the textures, mip-mapped.
    """

    room_size_m: tuple[float, float, float]
    room_materials: tuple[int, int, int, int, int, int]
    boxes: tuple[Box, ...]
    materials: tuple[Material, ...]
    atlas: TextureAtlas

    def box_arrays(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Centres (M, 3), half sizes (M, 3) and yaws (M,) of the boxes, float64."""
        centres_M3 = np.array([b.centre for b in self.boxes], dtype=np.float64).reshape(-1, 3)
        halves_M3 = np.array([b.half_size for b in self.boxes], dtype=np.float64).reshape(-1, 3)
        yaws_M = np.array([b.yaw_rad for b in self.boxes], dtype=np.float64)
        return centres_M3, halves_M3, yaws_M

    def clearance(self, points_N3: NDArray[np.float64]) -> NDArray[np.float64]:
        """Distance (N,) from each point to the nearest surface, metres.

        Negative inside a box or outside the room.
        """
        points = np.asarray(points_N3, dtype=np.float64).reshape(-1, 3)
        size_3 = np.asarray(self.room_size_m)
        distance_N = np.minimum(points, size_3 - points).min(axis=1)
        centres_M3, halves_M3, yaws_M = self.box_arrays()
        for centre, half, yaw in zip(centres_M3, halves_M3, yaws_M, strict=True):
            local = to_box_frame(points - centre, yaw)
            q = np.abs(local) - half
            outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
            inside = np.minimum(q.max(axis=1), 0.0)
            distance_N = np.minimum(distance_N, outside + inside)
        return distance_N


def to_box_frame(vectors_N3: NDArray[np.float64], yaw_rad: float) -> NDArray[np.float64]:
    """Rotate world vectors (N, 3) by -yaw about z: into a box frame of yaw ``yaw_rad``."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    x, y = vectors_N3[:, 0], vectors_N3[:, 1]
    return np.stack([c * x + s * y, -s * x + c * y, vectors_N3[:, 2]], axis=1)


def from_box_frame(vectors_N3: NDArray[np.float64], yaw_rad: float) -> NDArray[np.float64]:
    """Inverse of :func:`to_box_frame`: rotate by +yaw about z."""
    return to_box_frame(vectors_N3, -yaw_rad)


@dataclass
class _Layout:
    """Mutable state while placing boxes: footprints (x0, y0, x1, y1, top z) already taken."""

    footprints: list[tuple[float, float, float, float, float]]
    boxes: list[Box]


def generate_scene(config: SyntheticSceneConfig, rng: np.random.Generator) -> Scene:
    """Random room layout, materials and textures for ``config``; deterministic given ``rng``."""
    lx, ly, lz = config.room_size_m
    layout = _Layout(footprints=[], boxes=[])
    n_groups = 6 + config.n_furniture + 2 * config.n_tables + config.n_posters
    texture_plan = _plan_textures(config, rng, n_groups)

    materials: list[Material] = []

    def new_material(fixed_tile: tuple[float, float] | None = None) -> int:
        group = len(materials)
        texture, plan_tile = texture_plan[group]
        if fixed_tile is not None:  # posters: one whole image, corner-aligned
            materials.append(Material(texture, fixed_tile, (0.0, 0.0)))
        elif config.texture_mode == "repetitive":  # one world-aligned grid everywhere
            materials.append(Material(texture, (plan_tile, plan_tile), (0.0, 0.0)))
        else:
            offset_u, offset_v = rng.random(2)
            materials.append(Material(texture, (plan_tile, plan_tile),
                                      (float(offset_u), float(offset_v))))
        return group

    room_groups = [new_material() for _ in range(N_FACES)]
    for _ in range(config.n_furniture):
        _place_furniture(layout, config, rng, new_material)
    for _ in range(config.n_tables):
        _place_table(layout, config, rng, new_material)
    for _ in range(config.n_posters):
        _place_poster(layout, config, rng, new_material)

    # Keep only the materials and textures that something uses (placement may give up).
    used_groups = sorted(set(room_groups) | {box.material for box in layout.boxes})
    group_index = {group: i for i, group in enumerate(used_groups)}
    used_textures = sorted({materials[g].texture for g in used_groups})
    texture_index = {texture: i for i, texture in enumerate(used_textures)}
    images, names = texture_plan.build(used_textures, config.texture_size)
    return Scene(
        room_size_m=(float(lx), float(ly), float(lz)),
        room_materials=tuple(group_index[g] for g in room_groups),  # type: ignore[arg-type]
        boxes=tuple(dataclasses.replace(box, material=group_index[box.material])
                    for box in layout.boxes),
        materials=tuple(
            dataclasses.replace(materials[g], texture=texture_index[materials[g].texture])
            for g in used_groups),
        atlas=TextureAtlas.from_images(images, names))


class _TexturePlan:
    """Which texture each material group gets; textures are built only if used."""

    def __init__(self, specs: list[tuple[str, int]], tiles: list[float], plan: list[int]) -> None:
        self._specs = specs  # (texture name, rng seed) per distinct texture
        self._tiles = tiles  # metres per repeat per distinct texture
        self._plan = plan  # distinct-texture index per group

    def __getitem__(self, group: int) -> tuple[int, float]:
        texture = self._plan[group]
        return texture, self._tiles[texture]

    def build(self, used: list[int], size: int) -> tuple[list[NDArray[np.uint8]], list[str]]:
        images, names = [], []
        for index in used:
            name, seed = self._specs[index]
            rng = np.random.default_rng(seed)
            if name.startswith("repetitive:"):
                images.append(make_repetitive_texture(name.split(":", 1)[1], size, rng))
            else:
                images.append(make_texture(name, size, rng))
            names.append(name)
        return images, names


def _plan_textures(config: SyntheticSceneConfig, rng: np.random.Generator,
                   n_groups: int) -> _TexturePlan:
    """Assign a texture to each material group, in the order groups are created.

    Groups: 6 room faces, then furniture, tables (top + object), posters. In repetitive
    mode every group but the posters shares one repeated-cell texture.
    """
    n_posters = config.n_posters
    n_plain = n_groups - n_posters
    seeds = rng.integers(0, 2**63 - 1, size=n_groups + 1)
    specs: list[tuple[str, int]] = []
    tiles: list[float] = []
    plan: list[int] = []
    if config.texture_mode == "repetitive":
        source = str(rng.choice(REPETITIVE_SOURCES))
        specs.append((f"repetitive:{source}", int(seeds[-1])))
        tiles.append(config.repetitive_cell_m * REPETITIVE_CELLS)  # the whole cell grid
        plan.extend([0] * n_plain)
    else:
        order = rng.permutation(len(ALL_TEXTURES))
        for group in range(n_plain):
            specs.append((ALL_TEXTURES[order[group % len(order)]], int(seeds[group])))
            name = specs[-1][0]
            tiles.append(float(rng.uniform(
                *(PHOTO_TILE_M if name in PHOTO_TEXTURES else PROCEDURAL_TILE_M))))
            plan.append(group)
    photo_order = rng.permutation(len(PHOTO_TEXTURES))
    for poster in range(n_posters):
        name = PHOTO_TEXTURES[photo_order[poster % len(photo_order)]]
        specs.append((name, int(seeds[n_plain + poster])))
        tiles.append(1.0)
        plan.append(len(specs) - 1)
    return _TexturePlan(specs, tiles, plan)


def _free(layout: _Layout, x0: float, y0: float, x1: float, y1: float, gap: float) -> bool:
    return all(x1 + gap <= a0 or a1 + gap <= x0 or y1 + gap <= b0 or b1 + gap <= y0
               for a0, b0, a1, b1, _ in layout.footprints)


def _against_wall(wall: int, start: float, width: float, inset: float, depth: float,
                  room_x: float, room_y: float) -> tuple[float, float, float, float]:
    """Footprint (x0, x1, y0, y1) of something ``width`` long from ``start`` along a wall
    (0: x = 0, 1: x = room_x, 2: y = 0, 3: y = room_y), ``depth`` deep, ``inset`` from it."""
    if wall == 0:
        return inset, inset + depth, start, start + width
    if wall == 1:
        return room_x - inset - depth, room_x - inset, start, start + width
    if wall == 2:
        return start, start + width, inset, inset + depth
    return start, start + width, room_y - inset - depth, room_y - inset


def _upright_box(x0: float, x1: float, y0: float, y1: float, bottom: float, height: float,
                 material: int, kind: str) -> Box:
    """An axis-aligned box over the footprint, from ``bottom`` up ``height`` metres."""
    return Box(centre=((x0 + x1) / 2, (y0 + y1) / 2, bottom + height / 2),
               half_size=((x1 - x0) / 2, (y1 - y0) / 2, height / 2), yaw_rad=0.0,
               material=material, kind=kind)


_MAX_TRIES = 200


def _place_furniture(layout: _Layout, config: SyntheticSceneConfig, rng: np.random.Generator,
                     new_material: Callable[..., int]) -> None:
    """A cabinet or shelf with its back to a random wall; skipped if no free spot is found."""
    lx, ly, lz = config.room_size_m
    for _ in range(_MAX_TRIES):
        wall = int(rng.integers(0, 4))
        width = float(rng.uniform(0.6, 1.6))
        depth = float(rng.uniform(0.3, 0.6))
        height = float(rng.uniform(0.4, min(2.0, lz - 0.4)))
        along = lx if wall in (2, 3) else ly
        if along < width + 0.1:
            continue
        start = float(rng.uniform(0.02, along - width - 0.02))
        x0, x1, y0, y1 = _against_wall(wall, start, width, 0.01, depth, lx, ly)
        if not _free(layout, x0, y0, x1, y1, gap=0.05):
            continue
        layout.footprints.append((x0, y0, x1, y1, height))
        layout.boxes.append(_upright_box(x0, x1, y0, y1, 0.0, height, new_material(), "furniture"))
        return
    new_material()  # keep the material sequence independent of placement success


def _place_table(layout: _Layout, config: SyntheticSceneConfig, rng: np.random.Generator,
                 new_material: Callable[..., int]) -> None:
    """A free-standing table (top, four legs) near the centre with one object on it."""
    lx, ly, _ = config.room_size_m
    table_material = new_material()
    object_material = new_material()
    for _ in range(_MAX_TRIES):
        half_x = float(rng.uniform(0.4, 0.7))
        half_y = float(rng.uniform(0.3, 0.45))
        height = float(rng.uniform(0.72, 0.78))
        yaw = float(rng.uniform(-np.pi / 6, np.pi / 6)) if config.rotate_tables else 0.0
        cx = float(rng.uniform(0.35, 0.65) * lx)
        cy = float(rng.uniform(0.35, 0.65) * ly)
        radius = float(np.hypot(half_x, half_y))
        if not _free(layout, cx - radius, cy - radius, cx + radius, cy + radius, gap=0.3):
            continue
        layout.footprints.append((cx - radius, cy - radius, cx + radius, cy + radius, height))
        top = 0.02
        leg = 0.025

        def part(dx: float, dy: float, z: float, half: tuple[float, float, float], kind: str,
                 material: int, centre_xy: tuple[float, float] = (cx, cy),
                 yaw: float = yaw) -> Box:
            """A table part offset by (dx, dy) in the table's frame, at height z."""
            offset = from_box_frame(np.array([[dx, dy, 0.0]]), yaw)[0]
            return Box((centre_xy[0] + offset[0], centre_xy[1] + offset[1], z), half, yaw,
                       material, kind)

        layout.boxes.append(
            part(0.0, 0.0, height - top, (half_x, half_y, top), "table", table_material))
        leg_half = (leg, leg, (height - 2 * top) / 2)
        for sx in (-1, 1):
            for sy in (-1, 1):
                layout.boxes.append(part(sx * (half_x - 2 * leg), sy * (half_y - 2 * leg),
                                         leg_half[2], leg_half, "table", table_material))
        obj_half = (float(rng.uniform(0.08, 0.2)), float(rng.uniform(0.08, 0.2)),
                    float(rng.uniform(0.04, 0.08)))
        ox = float(rng.uniform(-1, 1) * (half_x - obj_half[0]))
        oy = float(rng.uniform(-1, 1) * (half_y - obj_half[1]))
        layout.boxes.append(part(ox, oy, height + obj_half[2], obj_half, "object", object_material))
        return


def _place_poster(layout: _Layout, config: SyntheticSceneConfig, rng: np.random.Generator,
                  new_material: Callable[..., int]) -> None:
    """A thin panel on a wall showing one whole image, above any furniture in front of it."""
    lx, ly, lz = config.room_size_m
    for _ in range(_MAX_TRIES):
        wall = int(rng.integers(0, 4))
        width = float(rng.uniform(0.5, 1.0))
        height = float(rng.uniform(0.4, 0.8))
        bottom = float(rng.uniform(0.9, max(0.9, lz - 0.3 - height)))
        along = lx if wall in (2, 3) else ly
        if along < width + 0.2 or bottom + height > lz - 0.1:
            continue
        start = float(rng.uniform(0.1, along - width - 0.1))
        x0, x1, y0, y1 = _against_wall(wall, start, width, 0.0, 0.01, lx, ly)
        if any(not (x1 <= a0 or a1 <= x0 or y1 <= b0 or b1 <= y0) and top > bottom - 0.05
               for a0, b0, a1, b1, top in layout.footprints):
            continue
        # Posters hang above furniture, so they only block later posters (top = the wall).
        layout.footprints.append((x0, y0, x1, y1, lz))
        layout.boxes.append(_upright_box(x0, x1, y0, y1, bottom, height,
                                         new_material((width, height)), "poster"))
        return
    new_material((1.0, 1.0))
