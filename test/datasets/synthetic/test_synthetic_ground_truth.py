"""The synthetic generator's ground truth is self-consistent (issue 8 acceptance).

Colour, depth and poses are read back from the written files, as every consumer reads them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from seqace_ros.core.geometry import (
    invert_transform,
    make_transform,
    rotation_from_quaternion_xyzw,
    transform_points,
)
from seqace_ros.datasets.synthetic import SyntheticScene, preset, render_scene
from seqace_ros.datasets.synthetic.render import render_view

Frame = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]

# Pairs of frames (index A, index B): consecutive and a few steps apart in the mapping
# pass, and query frames against mapping frames (a later pass over the same places).
PAIRS = [(0, 1), (0, 2), (5, 8), (10, 13), (14, 0), (16, 5), (19, 13)]


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def noiseless_folder(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Path:
    """The tiny preset without sensor noise: residuals then measure geometry alone."""
    out = tmp_path_factory.mktemp("synthetic_gt") / f"tiny_noiseless_{request.param}"
    return render_scene(preset("tiny", seed=request.param, noise_std=0.0), out)


def _load(folder: Path, index: int, blur_px: float = 0.0) -> Frame:
    """RGB (optionally Gaussian-blurred), depth in metres and pose of one written frame."""
    stem = str(folder / f"frame-{index:06d}")
    bgr = cv2.imread(stem + ".color.png", cv2.IMREAD_COLOR)
    depth_mm = cv2.imread(stem + ".depth.png", cv2.IMREAD_UNCHANGED)
    assert bgr is not None
    assert depth_mm is not None
    assert depth_mm.dtype == np.uint16
    rgb = bgr[..., ::-1].astype(np.float64)
    if blur_px > 0.0:
        rgb = cv2.GaussianBlur(rgb, (0, 0), blur_px)
    return rgb, depth_mm / 1000.0, np.loadtxt(stem + ".pose.txt")


def _bilinear(image: NDArray[np.float64], u: NDArray[np.float64], v: NDArray[np.float64]):
    u0 = np.floor(u).astype(int)
    v0 = np.floor(v).astype(int)
    a = (u - u0)[:, None]
    b = (v - v0)[:, None]
    return (
        image[v0, u0] * (1 - a) * (1 - b)
        + image[v0, u0 + 1] * a * (1 - b)
        + image[v0 + 1, u0] * (1 - a) * b
        + image[v0 + 1, u0 + 1] * a * b
    )


def _reproject(
    folder: Path, frame_a: Frame, frame_b: Frame, T_world_camB: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
    """Back-project A's depth with A's pose, project into B with ``T_world_camB``.

    Returns per projected pixel (inside B's image): the absolute colour difference (mean
    over RGB, 8-bit levels), whether B's depth agrees with the projected depth (not
    occluded), and whether A's pixel is textured (top 30 % of A's gradient magnitude).
    """
    K = np.loadtxt(folder / "color-intrinsics.txt")
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    rgb_a, depth_a, T_world_camA = frame_a
    rgb_b, depth_b, _ = frame_b
    height, width = depth_a.shape
    v, u = np.mgrid[0:height, 0:width]
    valid = depth_a > 0
    z = depth_a[valid]
    points_a = np.stack([(u[valid] - cx) / fx * z, (v[valid] - cy) / fy * z, z], axis=1)
    points_world = transform_points(T_world_camA, points_a)
    points_b = transform_points(invert_transform(T_world_camB), points_world)
    zb = points_b[:, 2]
    ub = fx * points_b[:, 0] / zb + cx
    vb = fy * points_b[:, 1] / zb + cy
    inside = (zb > 0.1) & (ub >= 0) & (ub < width - 1) & (vb >= 0) & (vb < height - 1)
    ub, vb, zb = ub[inside], vb[inside], zb[inside]
    depth_b_at = depth_b[np.rint(vb).astype(int), np.rint(ub).astype(int)]
    agrees = np.abs(depth_b_at - zb) < 0.01 + 0.01 * zb
    difference = np.abs(_bilinear(rgb_b, ub, vb) - rgb_a[valid][inside]).mean(axis=1)
    gradient = np.linalg.norm(np.stack(np.gradient(rgb_a.mean(axis=2))), axis=0)
    gradient_in = gradient[valid][inside]
    textured = gradient_in > np.percentile(gradient_in, 70)
    return difference, agrees, textured


def _perturbed(T_world_cam: NDArray[np.float64]) -> NDArray[np.float64]:
    """The pose moved by 1 cm and rotated by 0.5 deg (in the camera frame)."""
    axis = np.array([0.3, 0.8, 0.5]) / np.linalg.norm([0.3, 0.8, 0.5])
    half = np.radians(0.5) / 2
    R_delta = rotation_from_quaternion_xyzw(np.append(axis * np.sin(half), np.cos(half)))
    return T_world_cam @ make_transform(R_delta, [0.006, 0.0, 0.008])


@pytest.mark.parametrize(("index_a", "index_b"), PAIRS)
def test_depth_and_poses_reproject_with_photometric_agreement(
    noiseless_folder: Path, index_a: int, index_b: int
) -> None:
    # A 1-pixel blur removes near-Nyquist texture detail, so that resampling B bilinearly
    # at non-integer positions is accurate and the residual measures geometry, not aliasing.
    frame_a = _load(noiseless_folder, index_a, blur_px=1.0)
    frame_b = _load(noiseless_folder, index_b, blur_px=1.0)
    difference, agrees, textured = _reproject(noiseless_folder, frame_a, frame_b, frame_b[2])
    assert difference.size > 0.5 * frame_a[1].size, "the two frames barely overlap"
    # Nearby views: almost every projected point is seen, not occluded, by B, at its depth.
    assert agrees.mean() > 0.95
    seen = agrees & textured
    median_true = float(np.median(difference[seen]))
    assert median_true < 2.0, f"median |dI| on textured pixels {median_true:.2f} levels"
    assert float(np.percentile(difference[seen], 90)) < 6.0

    # The same check with a pose 1 cm / 0.5 deg off is clearly worse: the test can fail.
    wrong, _, wrong_textured = _reproject(
        noiseless_folder, frame_a, frame_b, _perturbed(frame_b[2])
    )
    median_wrong = float(np.median(wrong[wrong_textured]))
    assert median_wrong > 4.0 * median_true, (median_wrong, median_true)


def test_noisy_frames_agree_up_to_sensor_noise(tiny_folder: Path) -> None:
    """With the preset's noise (std 1 level per channel) the residual is the noise's."""
    for index_a, index_b in PAIRS[:3]:
        frame_a = _load(tiny_folder, index_a)
        frame_b = _load(tiny_folder, index_b)
        difference, agrees, _ = _reproject(tiny_folder, frame_a, frame_b, frame_b[2])
        # |n1 - n2| for two N(0, 1) averaged over 3 channels has a median near 1.0.
        assert float(np.median(difference[agrees])) < 1.6


def _empty_room(**overrides: object) -> SyntheticScene:
    return SyntheticScene(
        preset("tiny", n_furniture=0, n_tables=0, n_posters=0, noise_std=0.0, **overrides)
    )


def _camera(position: list[float], yaw_deg: float, pitch_deg: float) -> NDArray[np.float64]:
    """T_world_cam looking along (yaw, pitch) in the z-up world, OpenCV axes, no roll."""
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    forward = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return make_transform(np.column_stack([right, np.cross(forward, right), forward]), position)


def test_depth_of_a_fronto_parallel_wall_is_its_distance() -> None:
    source = _empty_room()
    lx, ly, lz = source.scene.room_size_m
    K = source.intrinsics
    position = [2.5, 2.3, 1.4]
    _, depth_HW = render_view(source.scene, K, _camera(position, 0.0, 0.0))
    # Pixels whose rays meet the plane x = lx inside the wall's rectangle.
    v, u = np.mgrid[0 : K.height, 0 : K.width]
    distance = lx - position[0]
    y_hit = position[1] - (u - K.cx) / K.fx * distance  # camera x points to world -y
    z_hit = position[2] - (v - K.cy) / K.fy * distance  # camera y points to world -z
    on_wall = (y_hit > 0.01) & (y_hit < ly - 0.01) & (z_hit > 0.01) & (z_hit < lz - 0.01)
    assert on_wall.mean() > 0.5
    np.testing.assert_allclose(depth_HW[on_wall], distance, atol=1e-9)
    assert np.all(depth_HW[~on_wall] < distance)  # side walls, floor, ceiling are nearer


def test_depth_of_oblique_wall_and_floor_matches_plane_intersection() -> None:
    """A yawed, pitched camera: the z-depth of every pixel (ray through the pixel centre,
    ((u - cx) / fx, (v - cy) / fy, 1)) is the distance to the nearest room plane."""
    source = _empty_room(width=96, height=72)
    lx, ly, lz = source.scene.room_size_m
    T_world_cam = _camera([2.0, 1.7, 1.4], 35.0, -25.0)
    _, depth_HW = render_view(source.scene, source.intrinsics, T_world_cam)

    K = source.intrinsics
    v, u = np.mgrid[0 : K.height, 0 : K.width]
    rays_cam = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones(u.shape)], axis=-1)
    rays_world = rays_cam @ T_world_cam[:3, :3].T  # z-component 1 in the camera: t = depth
    origin = T_world_cam[:3, 3]
    candidates = []
    for axis, size in enumerate((lx, ly, lz)):
        for plane in (0.0, size):
            with np.errstate(divide="ignore"):
                t = (plane - origin[axis]) / rays_world[..., axis]
            candidates.append(np.where(t > 0, t, np.inf))
    expected_m = np.min(candidates, axis=0)
    np.testing.assert_allclose(depth_HW, expected_m, rtol=0, atol=1e-9)
    floor = np.argmin(candidates, axis=0) == 4
    assert floor.mean() > 0.2  # the floor is in view, so its plane is tested too


def test_backprojected_depth_lies_on_scene_surfaces(
    tiny_folder: Path, tiny_scene: SyntheticScene
) -> None:
    """Every depth pixel of every written frame, back-projected with the written intrinsics
    and pose, lands on a surface of the scene (within the 1 mm depth quantisation)."""
    K = np.loadtxt(tiny_folder / "color-intrinsics.txt")
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    for index in range(len(tiny_scene)):
        _, depth_HW, T_world_cam = _load(tiny_folder, index)
        assert np.all(depth_HW > 0)  # a closed room: every ray hits something
        v, u = np.mgrid[0 : depth_HW.shape[0], 0 : depth_HW.shape[1]]
        points_cam = np.stack(
            [(u - cx) / fx * depth_HW, (v - cy) / fy * depth_HW, depth_HW], axis=-1
        ).reshape(-1, 3)
        distance_m = np.abs(tiny_scene.scene.clearance(transform_points(T_world_cam, points_cam)))
        assert distance_m.max() < 1e-3, f"frame {index}: {distance_m.max() * 1000:.2f} mm off"
