"""Texture images for synthetic scenes, and mip-mapped trilinear lookup.

Textures are square RGB uint8 images of a power-of-two side that tile seamlessly where
they are procedural; photographs come from scikit-image's bundled ``skimage.data`` images
(no download). Grayscale photographs are tinted with a random colour so two walls never
look alike only by luminance.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import skimage.data
from numpy.typing import NDArray

# Feature-rich bundled images (no large flat or black areas).
PHOTO_TEXTURES: tuple[str, ...] = (
    "brick", "grass", "gravel", "coffee", "chelsea", "astronaut", "camera", "rocket", "moon",
    "coins", "immunohistochemistry", "cell", "clock", "text", "page",
)
PROCEDURAL_TEXTURES: tuple[str, ...] = ("checker", "stripes", "value_noise", "tiles", "dots")
ALL_TEXTURES: tuple[str, ...] = PHOTO_TEXTURES + PROCEDURAL_TEXTURES
REPETITIVE_SOURCES: tuple[str, ...] = ("brick", "gravel", "grass", "coins")

# Texture cells along each side of a repetitive texture (the cell is repeated exactly).
REPETITIVE_CELLS = 4


def make_texture(name: str, size: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    """One texture image (size, size, 3) uint8 RGB.

    Args:
        name: a name from :data:`ALL_TEXTURES`.
        size: side in texels (a power of two).
        rng: source of the tint (grayscale photographs) or colours and layout (procedural).

    Raises:
        KeyError: on an unknown texture name.
    """
    if name in PHOTO_TEXTURES:
        return _photo_texture(name, size, rng)
    if name in PROCEDURAL_TEXTURES:
        return _PROCEDURAL[name](size, rng)
    raise KeyError(f"unknown texture {name!r}; known: {ALL_TEXTURES}")


def make_repetitive_texture(source: str, size: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    """A texture (size, size, 3) made of one small photo crop repeated exactly in a grid.

    The crop is ``size / REPETITIVE_CELLS`` texels square, so every cell is identical: local
    appearance says nothing about where on a surface one is.
    """
    if source not in PHOTO_TEXTURES:
        raise KeyError(f"repetitive source must be one of {PHOTO_TEXTURES}, got {source!r}")
    cell = size // REPETITIVE_CELLS
    photo = _photo_texture(source, size, rng)
    y0, x0 = rng.integers(0, size - cell, size=2)
    crop = photo[y0 : y0 + cell, x0 : x0 + cell]
    return np.tile(crop, (REPETITIVE_CELLS, REPETITIVE_CELLS, 1))


@functools.lru_cache(maxsize=len(PHOTO_TEXTURES))
def _load_photo(name: str) -> NDArray[np.generic]:
    """A ``skimage.data`` image as shipped (read-only; cached: each load decodes the file)."""
    image = np.asarray(getattr(skimage.data, name)())
    image.flags.writeable = False
    return image


def _photo_texture(name: str, size: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    image = _load_photo(name)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 3:
        image = image[..., :3]
    h, w = image.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    square = np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side])
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    resized = cv2.resize(square, (size, size), interpolation=interpolation)
    if resized.ndim == 2:
        tint_3 = rng.uniform(0.45, 1.0, size=3)
        tint_3 /= tint_3.max()
        return np.clip(resized[..., None] * tint_3, 0, 255).round().astype(np.uint8)
    return resized.astype(np.uint8)


def _random_colours(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    return rng.uniform(30.0, 230.0, size=(n, 3))


def _checker(size: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    cells = int(rng.choice([4, 8, 16]))
    idx = np.arange(size) * cells // size
    parity = (idx[:, None] + idx[None, :]) % 2
    colours = _random_colours(rng, 2)
    return colours[parity].round().astype(np.uint8)


def _stripes(size: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    n_colours = int(rng.integers(3, 6))
    widths = rng.integers(1, 5, size=int(rng.integers(6, 14)))
    pattern = np.repeat(np.arange(widths.size) % n_colours, widths)
    column = pattern[np.arange(size) * pattern.size // size]
    colours = _random_colours(rng, n_colours)
    return np.broadcast_to(colours[column][None, :, :], (size, size, 3)).round().astype(np.uint8)


def _periodic_noise(size: int, rng: np.random.Generator, octaves: int = 5) -> NDArray[np.float64]:
    """Tileable fractal value noise (size, size) in [0, 1]."""
    total = np.zeros((size, size))
    amplitude = 1.0
    for octave in range(octaves):
        grid = 4 * 2**octave
        lattice = rng.random((grid, grid))
        coords = np.arange(size) * grid / size
        i0 = np.floor(coords).astype(int)
        frac = coords - i0
        frac = frac * frac * (3.0 - 2.0 * frac)
        i1 = (i0 + 1) % grid
        rows = lattice[i0] * (1 - frac)[:, None] + lattice[i1] * frac[:, None]
        total += amplitude * (rows[:, i0] * (1 - frac) + rows[:, i1] * frac)
        amplitude *= 0.5
    total -= total.min()
    return total / max(total.max(), 1e-12)


def _value_noise(size: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    noise = _periodic_noise(size, rng)[..., None]
    low, high = _random_colours(rng, 2)
    return (low + noise * (high - low)).round().astype(np.uint8)


def _tiles(size: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    cells = int(rng.choice([4, 8]))
    cell = size // cells
    base = _random_colours(rng, 1)[0]
    shade_CC = rng.uniform(0.75, 1.15, size=(cells, cells))
    idx = np.arange(size) // cell
    image = base * shade_CC[idx[:, None], idx[None, :], None]
    grout = max(1, cell // 12)
    in_grout = np.arange(size) % cell < grout
    image[in_grout, :] = 40.0
    image[:, in_grout] = 40.0
    image *= 0.85 + 0.3 * _periodic_noise(size, rng, octaves=3)[..., None]
    return np.clip(image, 0, 255).round().astype(np.uint8)


def _dots(size: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    background, foreground = _random_colours(rng, 2)
    image = np.empty((size, size, 3))
    image[:] = background
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(int(rng.integers(12, 30))):
        cy, cx = rng.uniform(0, size, size=2)
        radius = rng.uniform(0.02, 0.08) * size
        dy = np.minimum(np.abs(yy - cy), size - np.abs(yy - cy))
        dx = np.minimum(np.abs(xx - cx), size - np.abs(xx - cx))
        image[dx * dx + dy * dy < radius * radius] = foreground * rng.uniform(0.6, 1.0)
    return image.round().astype(np.uint8)


_PROCEDURAL = {"checker": _checker, "stripes": _stripes, "value_noise": _value_noise,
               "tiles": _tiles, "dots": _dots}


@dataclass(frozen=True)
class TextureAtlas:
    """Mip pyramids of K square textures of the same power-of-two side.

    Attributes:
        levels: per mip level l, an array (K, S >> l, S >> l, 3) uint8, down to 1x1.
        names: the K texture names (for metadata).
    """

    levels: tuple[NDArray[np.uint8], ...]
    names: tuple[str, ...]
    _packed_cache: list[NDArray[np.generic]] = field(default_factory=list, init=False,
                                                      repr=False, compare=False)

    @classmethod
    def from_images(cls, images: Sequence[NDArray[np.uint8]], names: Sequence[str]) -> TextureAtlas:
        """Build the pyramids by 2x2 box filtering.

        Raises:
            ValueError: if the images are not all (S, S, 3) uint8 with S a power of two.
        """
        if len(images) == 0 or len(images) != len(names):
            raise ValueError(
                f"need one name per image, got {len(images)} images and {len(names)} names")
        stack = np.stack(images)
        size = stack.shape[1]
        shape_ok = stack.shape[1:] == (size, size, 3) and size >= 2 and not size & (size - 1)
        if stack.dtype != np.uint8 or not shape_ok:
            raise ValueError(
                f"textures must be (S, S, 3) uint8 with S >= 2 a power of two, got {stack.shape} "
                f"{stack.dtype}")
        levels = [stack]
        current = stack.astype(np.float32)
        while current.shape[1] > 1:
            current = 0.25 * (current[:, 0::2, 0::2] + current[:, 1::2, 0::2]
                              + current[:, 0::2, 1::2] + current[:, 1::2, 1::2])
            levels.append(current.round().astype(np.uint8))
        return cls(levels=tuple(levels), names=tuple(names))

    @property
    def size(self) -> int:
        """Side S of the full-resolution textures, in texels."""
        return int(self.levels[0].shape[1])

    def sample(self, texture_N: NDArray[np.intp], s_N: NDArray[np.float64],
               t_N: NDArray[np.float64], level_N: NDArray[np.float64]) -> NDArray[np.float32]:
        """Trilinear lookup of N points; textures repeat (wrap) in both directions.

        Args:
            texture_N: texture index of each point (N,).
            s_N: horizontal texture coordinate, one repeat per unit (N,).
            t_N: vertical texture coordinate, 0 at the top row, one repeat per unit (N,).
            level_N: mip level (N,), 0 is full resolution; clipped to the available levels.

        Returns:
            (N, 3) float32 RGB in [0, 255].
        """
        n_levels = len(self.levels)
        level = np.clip(level_N, 0.0, n_levels - 1.0)
        fine_N = np.minimum(level.astype(np.intp), n_levels - 2)
        weight_N1 = (level - fine_N).astype(np.float32)[:, None]
        s_frac = np.mod(s_N, 1.0).astype(np.float32)
        t_frac = np.mod(t_N, 1.0).astype(np.float32)
        fine_N4 = self._bilinear(fine_N, texture_N, s_frac, t_frac)
        coarse_N4 = self._bilinear(fine_N + 1, texture_N, s_frac, t_frac)
        return (fine_N4 + weight_N1 * (coarse_N4 - fine_N4))[:, :3]

    def _bilinear(self, level_N: NDArray[np.intp], texture_N: NDArray[np.intp],
                  s_N: NDArray[np.float32], t_N: NDArray[np.float32]) -> NDArray[np.float32]:
        """Bilinear RGBA (N, 4) at a per-point mip level; ``s_N``, ``t_N`` in [0, 1)."""
        texels, level_start_L = self._packed()
        side_N = (self.size >> level_N).astype(np.float32)
        x = s_N * side_N - 0.5  # in [-0.5, side - 0.5): texel centres at integers
        y = t_N * side_N - 0.5
        x0 = np.floor(x)
        y0 = np.floor(y)
        wx = (x - x0)[:, None]
        wy = (y - y0)[:, None]
        # Levels are stored with a one-texel wrapped border: column c of the texture is at
        # c + 1, so columns -1 and side need no modulo.
        stride_N = (self.size >> level_N) + 2
        index00 = (level_start_L[level_N] + texture_N * stride_N * stride_N
                   + (y0.astype(np.intp) + 1) * stride_N + (x0.astype(np.intp) + 1))

        def fetch(index_N: NDArray[np.intp]) -> NDArray[np.float32]:
            return texels[index_N].view(np.uint8).reshape(-1, 4).astype(np.float32)

        top = fetch(index00) * (1 - wx) + fetch(index00 + 1) * wx
        bottom = fetch(index00 + stride_N) * (1 - wx) + fetch(index00 + stride_N + 1) * wx
        return top * (1 - wy) + bottom * wy

    def _packed(self) -> tuple[NDArray[np.uint32], NDArray[np.intp]]:
        """All levels as one flat array of uint32 texels (RGBA bytes), level after level, each
        texture padded by a one-texel wrapped border, and where each level starts; built once."""
        if not self._packed_cache:
            parts = []
            for rgb in self.levels:
                padded = np.pad(rgb, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="wrap")
                rgba = np.zeros((*padded.shape[:3], 4), dtype=np.uint8)
                rgba[..., :3] = padded
                parts.append(rgba.reshape(-1, 4).view(np.uint32).reshape(-1))
            starts = np.cumsum([0] + [p.size for p in parts[:-1]]).astype(np.intp)
            self._packed_cache.extend([np.concatenate(parts), starts])
        texels, starts = self._packed_cache
        return texels, starts
