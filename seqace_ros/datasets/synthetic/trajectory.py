"""Smooth hand-held camera paths through the free space of a synthetic room.

The camera walks a closed loop around the room (a centripetal Catmull-Rom spline through
control points in free space), at eye height, looking mostly outwards at the walls and
furniture with slowly varying yaw, pitch and roll, plus a small hand-held tremor.

- Mapping pass: frames at equal steps along the loop from a random start.
- Query pass: the same stretch of the loop again, later in time, with a smooth position
  offset and viewing-direction offset, so it revisits the mapped places from slightly
  different viewpoints (as the query part of a 7-Scenes sequence does); optionally walked
  backwards and turned by a constant yaw (the room revisited from another direction).

Every camera centre keeps at least ``config.min_clearance_m`` from every surface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import make_transform, rotation_from_quaternion_xyzw
from seqace_ros.datasets.synthetic.config import SyntheticSceneConfig
from seqace_ros.datasets.synthetic.scene import Scene

N_CONTROL_POINTS = 10
SAMPLES_PER_SEGMENT = 80
MAX_ATTEMPTS = 60
EYE_HEIGHT_RANGE_M = (1.45, 1.6)
HEIGHT_SWAY_M = 0.08
YAW_SWAY_DEG = 45.0
PITCH_MEAN_DEG = -15.0
PITCH_SWAY_DEG = 8.0
ROLL_SWAY_DEG = 3.0
TANGENT_BASELINE_M = 0.6
# Control points sit at these quantiles of the free radii from the room centre: low enough
# that the camera sees walls from a distance, high enough that the loop goes around.
CONTROL_RADIUS_QUANTILES = (0.2, 0.55)

Signal = Callable[[NDArray[np.float64]], NDArray[np.float64]]


class CameraPathError(SeqaceError, RuntimeError):
    """No camera path with the required clearance fits the room layout."""


@dataclass(frozen=True)
class _Loop:
    """A closed planar path, densely sampled.

    Attributes:
        points_P2: (P, 2) xy samples, counter-clockwise, first point not repeated.
        arc_P: (P + 1,) cumulative arc length at each sample and back at the first.
    """

    points_P2: NDArray[np.float64]
    arc_P: NDArray[np.float64]

    @property
    def length_m(self) -> float:
        return float(self.arc_P[-1])

    def at(self, s_N: NDArray[np.float64]) -> NDArray[np.float64]:
        """xy (N, 2) at arc lengths ``s_N`` (wrapping around the loop)."""
        closed_P2 = np.vstack([self.points_P2, self.points_P2[:1]])
        s = np.mod(s_N, self.length_m)
        return np.stack([np.interp(s, self.arc_P, closed_P2[:, 0]),
                         np.interp(s, self.arc_P, closed_P2[:, 1])], axis=1)


def generate_trajectory(config: SyntheticSceneConfig, scene: Scene,
                        rng: np.random.Generator) -> NDArray[np.float64]:
    """Camera poses of the mapping frames followed by the query frames.

    Returns:
        (config.n_frames, 4, 4) float64 camera-to-world poses ``T_world_cam``, OpenCV axes.

    Raises:
        CameraPathError: when no loop with the required clearance is found.
    """
    eye_height_m = float(rng.uniform(*EYE_HEIGHT_RANGE_M))
    margin_m = config.min_clearance_m + config.query_offset_m + config.jitter_position_m + 0.03
    loop = _find_loop(scene, rng, eye_height_m, margin_m)
    length = loop.length_m

    height = _periodic_signal(rng, length)
    yaw_sway = _periodic_signal(rng, length, harmonics=3)
    pitch_sway = _periodic_signal(rng, length)
    roll_sway = _periodic_signal(rng, length)
    query_xyz = [_periodic_signal(rng, length) for _ in range(3)]
    query_yaw = _periodic_signal(rng, length)
    query_pitch = _periodic_signal(rng, length)
    tremor_xyz = [_tremor(rng) for _ in range(3)]
    tremor_rot = [_tremor(rng) for _ in range(3)]

    start = float(rng.uniform(0.0, length))
    n_map, n_query = config.n_mapping_frames, config.n_query_frames
    span = min(n_map * config.step_m, length)
    query_step = span / max(n_query, 1)
    query_s = (np.arange(n_query) + 0.5) * query_step
    if config.query_reverse:
        query_s = span - query_s
    s_N = start + np.concatenate([np.arange(n_map) * config.step_m, query_s])
    is_query_N = np.arange(n_map + n_query) >= n_map
    time_N = np.arange(n_map + n_query) / config.fps
    query_N = is_query_N.astype(np.float64)

    xy_N2 = loop.at(s_N)
    tangent_N2 = loop.at(s_N + TANGENT_BASELINE_M) - loop.at(s_N - TANGENT_BASELINE_M)
    outward_yaw_N = np.arctan2(-tangent_N2[:, 0], tangent_N2[:, 1])
    position_N3 = np.column_stack([xy_N2, eye_height_m + HEIGHT_SWAY_M * height(s_N)])
    position_N3 += (config.query_offset_m * query_N[:, None]
                    * np.column_stack([query_xyz[0](s_N), query_xyz[1](s_N),
                                       0.5 * query_xyz[2](s_N)]))
    position_N3 += config.jitter_position_m * np.column_stack([f(time_N) for f in tremor_xyz])
    inward_N2 = -np.column_stack([np.cos(outward_yaw_N), np.sin(outward_yaw_N)])
    position_N3[:, :2] += config.query_inward_m * query_N[:, None] * inward_N2

    yaw_N = outward_yaw_N + np.radians(
        YAW_SWAY_DEG * yaw_sway(s_N)
        + query_N * (config.query_yaw_deg * query_yaw(s_N) + config.query_turn_deg))
    pitch_N = np.radians(PITCH_MEAN_DEG + PITCH_SWAY_DEG * pitch_sway(s_N)
                         + 0.5 * config.query_yaw_deg * query_N * query_pitch(s_N))
    roll_N = np.radians(ROLL_SWAY_DEG * roll_sway(s_N))
    tremor_rotvec_N3 = np.radians(config.jitter_rotation_deg) * np.column_stack(
        [f(time_N) for f in tremor_rot])

    T_world_cam_N44 = np.stack([
        make_transform(_camera_rotation(yaw, pitch, roll) @ _rotation_from_rotvec(rotvec), p)
        for yaw, pitch, roll, rotvec, p in zip(yaw_N, pitch_N, roll_N, tremor_rotvec_N3,
                                               position_N3, strict=True)])
    clearance_N = scene.clearance(position_N3)
    if clearance_N.min() < config.min_clearance_m:
        worst = int(np.argmin(clearance_N))
        raise CameraPathError(
            f"camera {worst} is {clearance_N[worst]:.3f} m from a surface, expected >= "
            f"{config.min_clearance_m} m")
    return T_world_cam_N44


def _find_loop(scene: Scene, rng: np.random.Generator, height_m: float, margin_m: float) -> _Loop:
    """A closed loop around the room centre whose dense samples all keep ``margin_m``
    (plus the height sway) from every surface."""
    lx, ly, _ = scene.room_size_m
    centre_2 = np.array([lx / 2.0, ly / 2.0])
    radii_R = np.arange(0.2, 0.5 * np.hypot(lx, ly), 0.02)
    for _ in range(MAX_ATTEMPTS):
        angles_K = ((np.arange(N_CONTROL_POINTS) + rng.uniform(-0.3, 0.3, N_CONTROL_POINTS))
                    * (2.0 * np.pi / N_CONTROL_POINTS))
        controls = []
        for angle in angles_K:
            ray_R2 = centre_2 + radii_R[:, None] * np.array([np.cos(angle), np.sin(angle)])
            feasible = radii_R[_clearance_band(scene, ray_R2, height_m) >= margin_m]
            if feasible.size == 0:
                break
            radius = np.quantile(feasible, rng.uniform(*CONTROL_RADIUS_QUANTILES))
            controls.append(centre_2 + radius * np.array([np.cos(angle), np.sin(angle)]))
        if len(controls) < N_CONTROL_POINTS:
            continue
        points_P2 = _closed_catmull_rom(np.array(controls))
        if _clearance_band(scene, points_P2, height_m).min() < margin_m:
            continue
        segment_P = np.linalg.norm(np.diff(np.vstack([points_P2, points_P2[:1]]), axis=0), axis=1)
        return _Loop(points_P2, np.concatenate([[0.0], np.cumsum(segment_P)]))
    raise CameraPathError(
        f"no closed camera loop keeps {margin_m:.2f} m from every surface in this "
        f"{scene.room_size_m} m room after {MAX_ATTEMPTS} attempts; use a bigger room, fewer "
        "boxes, or a smaller min_clearance_m / query_offset_m")


def _clearance_band(scene: Scene, xy_N2: NDArray[np.float64],
                    height_m: float) -> NDArray[np.float64]:
    """Clearance (N,) over the eye-height band the camera may sway through."""
    return np.minimum.reduce([
        scene.clearance(np.column_stack([xy_N2, np.full(len(xy_N2), z)]))
        for z in (height_m - HEIGHT_SWAY_M, height_m, height_m + HEIGHT_SWAY_M)])


def _closed_catmull_rom(controls_K2: NDArray[np.float64]) -> NDArray[np.float64]:
    """Dense samples (K * SAMPLES_PER_SEGMENT, 2) of a closed centripetal Catmull-Rom spline."""
    k = controls_K2.shape[0]
    samples = []
    u = np.linspace(0.0, 1.0, SAMPLES_PER_SEGMENT, endpoint=False)[:, None]
    for i in range(k):
        p0, p1, p2, p3 = (controls_K2[(i + j) % k] for j in (-1, 0, 1, 2))
        t0 = 0.0
        t1 = t0 + np.linalg.norm(p1 - p0) ** 0.5
        t2 = t1 + np.linalg.norm(p2 - p1) ** 0.5
        t3 = t2 + np.linalg.norm(p3 - p2) ** 0.5
        t = t1 + u * (t2 - t1)
        a1 = (t1 - t) / (t1 - t0) * p0 + (t - t0) / (t1 - t0) * p1
        a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
        a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
        b1 = (t2 - t) / (t2 - t0) * a1 + (t - t0) / (t2 - t0) * a2
        b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
        samples.append((t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2)
    return np.concatenate(samples)


def _periodic_signal(rng: np.random.Generator, period: float, harmonics: int = 4) -> Signal:
    """A smooth random function of s with period ``period`` and |f| <= 1 (sum of sines with
    1..harmonics cycles per period, amplitudes falling with frequency)."""
    cycles = np.arange(1, harmonics + 1)
    amplitudes = rng.uniform(0.3, 1.0, harmonics) / cycles
    return _sum_of_sines(cycles, amplitudes, rng.uniform(0.0, 2.0 * np.pi, harmonics), period)


def _tremor(rng: np.random.Generator) -> Signal:
    """Hand tremor: a smooth random function of time (s) with |f| <= 1, 0.4 to 2.5 Hz."""
    frequencies_hz = rng.uniform(0.4, 2.5, 3)
    amplitudes = rng.uniform(0.3, 1.0, 3)
    return _sum_of_sines(frequencies_hz, amplitudes, rng.uniform(0.0, 2.0 * np.pi, 3))


def _sum_of_sines(cycles: NDArray[np.float64], amplitudes: NDArray[np.float64],
                  phases: NDArray[np.float64], period: float = 1.0) -> Signal:
    """``x -> sum_k a_k sin(2 pi x cycles_k / period + phase_k)`` with the amplitudes
    normalised to sum to 1 (so |f| <= 1)."""
    weights = amplitudes / amplitudes.sum()

    def signal(x_N: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.sin(2.0 * np.pi * np.asarray(x_N)[:, None] * cycles / period + phases) @ weights

    return signal


def _camera_rotation(yaw: float, pitch: float, roll: float) -> NDArray[np.float64]:
    """R_world_cam (3, 3) of a camera looking along (yaw, pitch) in a z-up world, rolled by
    ``roll`` about its optical axis; OpenCV camera axes (x right, y down, z forward)."""
    forward = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c, s = np.cos(roll), np.sin(roll)
    R_level_rolled = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return np.column_stack([right, down, forward]) @ R_level_rolled


def _rotation_from_rotvec(rotvec_3: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rotation (3, 3) of an axis-angle vector (radians)."""
    angle = float(np.linalg.norm(rotvec_3))
    if angle < 1e-15:
        return np.eye(3)
    axis = rotvec_3 / angle
    return rotation_from_quaternion_xyzw(np.append(axis * np.sin(angle / 2), np.cos(angle / 2)))
