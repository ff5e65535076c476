"""Vectorised numpy ray caster for :class:`~seqace_ros.datasets.synthetic.scene.Scene`.

Every pixel (u, v) casts one ray through its centre, direction ((u - cx)/fx, (v - cy)/fy, 1)
in the camera frame (OpenCV axes), so the ray parameter t of a hit is its camera z-depth.
Intersections use the slab method against the room (an inverted box: the ray leaves it)
and every box (the ray enters it); geometry is float64. Surfaces are shaded with a view-
independent Lambert model (ambient + a directional light + a point light below the
ceiling, no shadows), so a surface point has the same colour from every viewpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import invert_transform, transform_points
from seqace_ros.datasets.synthetic.scene import Scene, from_box_frame, to_box_frame

AMBIENT = 0.45
DIRECTIONAL = 0.3
DIRECTIONAL_TOWARDS_LIGHT = np.array([0.35, 0.55, 0.76]) / np.linalg.norm([0.35, 0.55, 0.76])
POINT = 0.55
POINT_FALLOFF_M = 3.0
POINT_BELOW_CEILING_M = 0.3
ROOM = -1  # box index of rays that hit the room's walls, floor or ceiling


@dataclass(frozen=True)
class RayHits:
    """Nearest surface hit by each of N rays.

    Attributes:
        t_N: ray parameter of the hit (z-depth for camera rays with unit z), float64.
        points_N3: hit points in the world frame, metres.
        normals_N3: unit normals of the hit faces in the world frame, towards the ray origin.
        surface_uv_N2: in-plane surface coordinates (right, down as seen from the front),
            metres, measured from the box (or room) corner.
        material_N: material index of the hit face.
    """

    t_N: NDArray[np.float64]
    points_N3: NDArray[np.float64]
    normals_N3: NDArray[np.float64]
    surface_uv_N2: NDArray[np.float64]
    material_N: NDArray[np.intp]


@functools.lru_cache(maxsize=8)
def camera_rays(intrinsics: Intrinsics) -> NDArray[np.float64]:
    """Camera-frame ray directions (H*W, 3) of all pixel centres, row-major, z = 1 (read-only)."""
    u = (np.arange(intrinsics.width, dtype=np.float64) - intrinsics.cx) / intrinsics.fx
    v = (np.arange(intrinsics.height, dtype=np.float64) - intrinsics.cy) / intrinsics.fy
    rays_HW3 = np.empty((intrinsics.height, intrinsics.width, 3))
    rays_HW3[..., 0] = u[None, :]
    rays_HW3[..., 1] = v[:, None]
    rays_HW3[..., 2] = 1.0
    rays_N3 = rays_HW3.reshape(-1, 3)
    rays_N3.flags.writeable = False
    return rays_N3


# Corner sign patterns (8, 3) and the 12 edges between corners that differ in one axis.
_CORNER_SIGNS_83 = np.array([[(i >> a & 1) * 2 - 1 for a in range(3)] for i in range(8)], float)
_BOX_EDGES = [(i, i | 1 << a) for i in range(8) for a in range(3) if not i >> a & 1]
_NEAR_Z = 1e-6


def candidate_rays(scene: Scene, intrinsics: Intrinsics,
                   T_cam_world: NDArray[np.float64]) -> list[NDArray[np.intp] | None]:
    """Per box, the pixels (row-major indices) whose rays may hit it: its projected bounding
    rectangle, after clipping the box to the half-space in front of the camera.

    A conservative superset, so rendering with it equals rendering without it.
    """
    centres_M3, halves_M3, yaws_M = scene.box_arrays()
    width, height = intrinsics.width, intrinsics.height
    result: list[NDArray[np.intp] | None] = []
    for centre, half, yaw in zip(centres_M3, halves_M3, yaws_M, strict=True):
        corners_world_83 = centre + from_box_frame(_CORNER_SIGNS_83 * half, float(yaw))
        corners_83 = transform_points(T_cam_world, corners_world_83)
        z_8 = corners_83[:, 2]
        front = z_8 > _NEAR_Z
        if not front.any():
            result.append(np.empty(0, dtype=np.intp))
            continue
        points = [corners_83[front]]
        for i, j in _BOX_EDGES:
            if front[i] != front[j]:
                alpha = (_NEAR_Z - z_8[i]) / (z_8[j] - z_8[i])
                points.append((corners_83[i] + alpha * (corners_83[j] - corners_83[i]))[None])
        xyz_K3 = np.concatenate(points)
        u_K = intrinsics.fx * xyz_K3[:, 0] / xyz_K3[:, 2] + intrinsics.cx
        v_K = intrinsics.fy * xyz_K3[:, 1] / xyz_K3[:, 2] + intrinsics.cy
        u0 = max(int(np.floor(u_K.min())) - 1, 0)
        u1 = min(int(np.ceil(u_K.max())) + 2, width)
        v0 = max(int(np.floor(v_K.min())) - 1, 0)
        v1 = min(int(np.ceil(v_K.max())) + 2, height)
        if u0 >= u1 or v0 >= v1:
            result.append(np.empty(0, dtype=np.intp))
        else:
            rows = np.arange(v0, v1, dtype=np.intp)[:, None] * width
            result.append((rows + np.arange(u0, u1, dtype=np.intp)[None, :]).reshape(-1))
    return result


def cast_rays(scene: Scene, origin_3: NDArray[np.float64], dirs_N3: NDArray[np.float64],
              candidates: Sequence[NDArray[np.intp] | None] | None = None) -> RayHits:
    """Nearest hit of rays ``origin + t * dir`` (t > 0) from a point inside the room.

    Args:
        scene: the scene.
        origin_3: common ray origin in the world frame (3,), strictly inside the room.
        dirs_N3: ray directions in the world frame (N, 3), not necessarily unit length.
        candidates: optional, per box, the indices of the rays that may hit it (a superset;
            an empty array skips the box, ``None`` tests every ray); ``None`` tests all.

    Raises:
        ValueError: if the origin is not strictly inside the room, or ``candidates`` does
            not have one entry per box.
    """
    origin = np.asarray(origin_3, dtype=np.float64).reshape(3)
    dirs = np.asarray(dirs_N3, dtype=np.float64).reshape(-1, 3)
    size_3 = np.asarray(scene.room_size_m)
    if not np.all((origin > 0.0) & (origin < size_3)):
        raise ValueError(f"ray origin {origin.tolist()} is not inside the room [0, {list(size_3)}]")
    if candidates is not None and len(candidates) != len(scene.boxes):
        raise ValueError(
            f"need one candidate set per box ({len(scene.boxes)}), got {len(candidates)}")
    n = dirs.shape[0]
    dirs_3N = np.ascontiguousarray(dirs.T)
    inv_3N = _safe_inverse(dirs_3N)
    with np.errstate(invalid="ignore"):
        t_exit_3N = np.maximum(-origin[:, None] * inv_3N, (size_3 - origin)[:, None] * inv_3N)
    axis_N = _argmin3(t_exit_3N)
    rows = np.arange(n)
    t_N = t_exit_3N[axis_N, rows]
    box_N = np.full(n, ROOM, dtype=np.intp)

    centres_M3, halves_M3, yaws_M = scene.box_arrays()
    for m in range(centres_M3.shape[0]):
        subset = None if candidates is None else candidates[m]
        if subset is not None and subset.size == 0:
            continue
        yaw = yaws_M[m]
        o_local = to_box_frame((origin - centres_M3[m])[None], yaw)[0] + halves_M3[m]
        inv_local_3N = inv_3N if subset is None else inv_3N[:, subset]
        if yaw != 0.0:
            d_3N = dirs_3N if subset is None else dirs_3N[:, subset]
            inv_local_3N = _safe_inverse(to_box_frame(d_3N.T, yaw).T)
        t_near, t_far, axis = _slab(o_local, 2.0 * halves_M3[m], inv_local_3N)
        t_current = t_N if subset is None else t_N[subset]
        hit = (t_near <= t_far) & (t_near > 0.0) & (t_near < t_current)
        local_idx = np.flatnonzero(hit)
        idx = local_idx if subset is None else subset[local_idx]
        t_N[idx] = t_near[local_idx]
        axis_N[idx] = axis[local_idx]
        box_N[idx] = m

    points_N3 = origin + t_N[:, None] * dirs
    local_N3 = points_N3.copy()  # room: corner at the world origin, no rotation
    dirs_local_N3 = dirs.copy()
    yaw_N = np.zeros(n)
    material_N = np.asarray(scene.room_materials, dtype=np.intp)[
        2 * axis_N + (dirs[rows, axis_N] > 0.0)]
    for m, box in enumerate(scene.boxes):
        idx = np.flatnonzero(box_N == m)
        if idx.size == 0:
            continue
        local_N3[idx] = to_box_frame(points_N3[idx] - centres_M3[m], box.yaw_rad) + halves_M3[m]
        dirs_local_N3[idx] = to_box_frame(dirs[idx], box.yaw_rad)
        yaw_N[idx] = box.yaw_rad
        material_N[idx] = box.material

    # The visible face's normal opposes the ray along the hit axis (room and boxes alike).
    normals_local_N3 = np.zeros((n, 3))
    normals_local_N3[rows, axis_N] = -np.sign(dirs_local_N3[rows, axis_N])
    normals_N3 = normals_local_N3.copy()
    rotated = np.flatnonzero(yaw_N != 0.0)
    for yaw in np.unique(yaw_N[rotated]):
        idx = rotated[yaw_N[rotated] == yaw]
        normals_N3[idx] = from_box_frame(normals_local_N3[idx], float(yaw))

    surface_uv_N2 = _surface_uv(local_N3, normals_local_N3, axis_N)
    return RayHits(t_N, points_N3, normals_N3, surface_uv_N2, material_N)


def _slab(
    origin_3: NDArray[np.float64], extent_3: NDArray[np.float64], inv_3N: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """Entry t, exit t and entry axis (N,) of rays against the box ``[0, extent]``."""
    with np.errstate(invalid="ignore"):
        t_a = -origin_3[:, None] * inv_3N
        t_b = (extent_3 - origin_3)[:, None] * inv_3N
        t_enter_3N = np.minimum(t_a, t_b)
        t_leave_3N = np.maximum(t_a, t_b)
    t_near = np.maximum(np.maximum(t_enter_3N[0], t_enter_3N[1]), t_enter_3N[2])
    t_far = np.minimum(np.minimum(t_leave_3N[0], t_leave_3N[1]), t_leave_3N[2])
    axis = np.where((t_enter_3N[0] >= t_enter_3N[1]) & (t_enter_3N[0] >= t_enter_3N[2]), 0,
                    np.where(t_enter_3N[1] >= t_enter_3N[2], 1, 2))
    return t_near, t_far, axis


def _argmin3(values_3N: NDArray[np.float64]) -> NDArray[np.intp]:
    """Row (0, 1, 2) of the smallest of three values per column, (N,)."""
    a, b, c = values_3N
    return np.where((a <= b) & (a <= c), 0, np.where(b <= c, 1, 2)).astype(np.intp)


def _safe_inverse(values: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        return 1.0 / values


def _surface_uv(local_N3: NDArray[np.float64], normals_local_N3: NDArray[np.float64],
                axis_N: NDArray[np.intp]) -> NDArray[np.float64]:
    """In-plane coordinates (N, 2): vertical faces (right, down) seen from the front,
    horizontal faces (x, y)."""
    nx, ny = normals_local_N3[:, 0], normals_local_N3[:, 1]
    vertical = axis_N != 2
    u = np.where(vertical, nx * local_N3[:, 1] - ny * local_N3[:, 0], local_N3[:, 0])
    v = np.where(vertical, -local_N3[:, 2], local_N3[:, 1])
    return np.stack([u, v], axis=1)


def shade(scene: Scene, hits: RayHits, dirs_N3: NDArray[np.float64],
          focal_px: float) -> NDArray[np.float32]:
    """Colours (N, 3) float32 in [0, 255] of ray hits: texture times Lambert lighting.

    The mip level follows the pixel footprint on the surface (distance / focal, widened at
    grazing angles), so distant textures are filtered rather than aliased.
    """
    texture_M = np.array([m.texture for m in scene.materials], dtype=np.intp)
    tile_M2 = np.array([m.tile_m for m in scene.materials], dtype=np.float64)
    offset_M2 = np.array([m.offset for m in scene.materials], dtype=np.float64)
    material = hits.material_N
    st_N2 = hits.surface_uv_N2 / tile_M2[material] + offset_M2[material]

    # Lighting and filtering need no float64 precision.
    normals_N3 = hits.normals_N3.astype(np.float32)
    dirs_f_N3 = dirs_N3.astype(np.float32)
    ray_length_N = np.sqrt(np.einsum("ij,ij->i", dirs_f_N3, dirs_f_N3))
    cos_incidence_N = np.abs(np.einsum("ij,ij->i", dirs_f_N3, normals_N3)) / ray_length_N
    footprint_m = (hits.t_N.astype(np.float32) * ray_length_N
                   / np.sqrt(np.maximum(cos_incidence_N, 0.05)))
    texel_m_M = (tile_M2.mean(axis=1) / scene.atlas.size * focal_px).astype(np.float32)
    level_N = np.log2(np.maximum(footprint_m / texel_m_M[material], 1e-6))
    albedo_N3 = scene.atlas.sample(texture_M[material], st_N2[:, 0], st_N2[:, 1], level_N)

    lx, ly, lz = scene.room_size_m
    light_3 = np.array([lx / 2, ly / 2, lz - POINT_BELOW_CEILING_M], dtype=np.float32)
    to_light_N3 = light_3 - hits.points_N3.astype(np.float32)
    light_distance_N = np.sqrt(np.einsum("ij,ij->i", to_light_N3, to_light_N3))
    facing_N = np.einsum("ij,ij->i", to_light_N3, normals_N3)
    point_N = np.maximum(facing_N, 0.0) / light_distance_N
    point_N /= 1.0 + (light_distance_N / POINT_FALLOFF_M) ** 2
    sun_N = np.einsum("ij,j->i", normals_N3, DIRECTIONAL_TOWARDS_LIGHT.astype(np.float32))
    light_N = AMBIENT + DIRECTIONAL * np.maximum(sun_N, 0.0) + POINT * point_N
    return np.clip(albedo_N3 * light_N[:, None], 0.0, 255.0)


def render_view(
    scene: Scene, intrinsics: Intrinsics, T_world_cam: NDArray[np.float64]
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Render one view.

    Args:
        scene: the scene.
        intrinsics: pinhole camera of the output image.
        T_world_cam: (4, 4) camera-to-world pose, OpenCV camera axes; the camera centre
            must be inside the room.

    Returns:
        ``rgb_HW3``: float32 RGB in [0, 255] (not yet quantised or noisy), and
        ``depth_HW``: float64 z-depth in metres along the camera's optical axis.
    """
    T = np.asarray(T_world_cam, dtype=np.float64)
    rays_cam_N3 = camera_rays(intrinsics)
    R = T[:3, :3]
    # Explicit sums: a (N, 3) @ (3, 3) matmul is many times slower here.
    dirs_world_N3 = rays_cam_N3[:, 0:1] * R[:, 0] + rays_cam_N3[:, 1:2] * R[:, 1] + R[:, 2]
    origin_3 = T[:3, 3]
    candidates = candidate_rays(scene, intrinsics, invert_transform(T))
    hits = cast_rays(scene, origin_3, dirs_world_N3, candidates)
    focal_px = 0.5 * (intrinsics.fx + intrinsics.fy)
    rgb_N3 = shade(scene, hits, dirs_world_N3, focal_px)
    shape = (intrinsics.height, intrinsics.width)
    return rgb_N3.reshape(*shape, 3), hits.t_N.reshape(shape)
