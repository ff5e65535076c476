"""Mapping feature tracks: epipolar check, patch linking, and tracks checked against depth."""

from __future__ import annotations

import numpy as np
import pytest
from pinhole import project_world

from seqace_ros.core.geometry import invert_transform, make_transform, transform_points
from seqace_ros.datasets.synthetic import SyntheticScene, preset
from seqace_ros.pipeline.mapping.tracks import (
    FeatureTracks,
    TrackConfig,
    TrackError,
    XFeatMatcher,
    build_tracks,
    epipolar_distances_px,
    link_patches,
)

K = np.array([[400.0, 0.0, 160.0], [0.0, 410.0, 120.0], [0.0, 0.0, 1.0]])


def test_epipolar_distances() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform([-1, -1, 3], [1, 1, 5], (50, 3))
    T_world_a = np.eye(4)
    angle = np.radians(5.0)
    R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    T_world_b = make_transform(R, [0.3, 0.05, 0.1])
    pixels_a, pixels_b = project_world(T_world_a, points, K), project_world(T_world_b, points, K)
    distances = epipolar_distances_px(pixels_a, pixels_b, K, K, T_world_a, T_world_b)
    np.testing.assert_allclose(distances, 0.0, atol=1e-6)
    # a match moved off its epipolar line by 5 px along the line's normal is 5 px away
    T_b_a = invert_transform(T_world_b) @ T_world_a
    t = T_b_a[:3, 3]
    t_cross = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    F = np.linalg.inv(K).T @ t_cross @ T_b_a[:3, :3] @ np.linalg.inv(K)
    line = F @ np.append(pixels_a[0], 1.0)
    moved = pixels_b[:1] + 5.0 * line[:2] / np.linalg.norm(line[:2])
    distance = epipolar_distances_px(pixels_a[:1], moved, K, K, T_world_a, T_world_b)
    np.testing.assert_allclose(distance, 5.0, atol=1e-6)


def test_link_patches() -> None:
    tracks = FeatureTracks(
        frame_ids_T=np.array([1, 1, 2]),
        pixels_T2=np.array([[10.0, 10.0], [50.0, 50.0], [10.0, 10.0]], dtype=np.float32),
        keyframe_ids_T=np.array([0, 0, 0]),
        keyframe_pixels_T2=np.array([[12.0, 9.0], [48.0, 55.0], [20.0, 5.0]], dtype=np.float32),
        keyframe_ids=(0,),
    )
    frame_ids = np.array([0, 1, 1, 1, 2, 3])
    pixels = np.array([[10, 10], [11, 10], [50, 47], [30, 30], [10, 10], [10, 10]],
                      dtype=np.float32)
    keyframe_ids, targets = link_patches(tracks, frame_ids, pixels, radius_px=4.0)
    assert keyframe_ids.tolist() == [-1, 0, 0, -1, 0, -1]
    np.testing.assert_allclose(targets[1], [13.0, 9.0])  # offset (1, 0) carried over
    np.testing.assert_allclose(targets[2], [48.0, 52.0])
    np.testing.assert_allclose(targets[4], [20.0, 5.0])


def test_config_errors() -> None:
    with pytest.raises(TrackError, match="keypoints_per_frame"):
        TrackConfig(keypoints_per_frame=2)
    with pytest.raises(TrackError, match="min_surviving_fraction"):
        TrackConfig(min_surviving_fraction=1.0)
    with pytest.raises(TrackError, match="max_epipolar_px"):
        TrackConfig(max_epipolar_px=0.0)


@pytest.mark.slow
def test_tracks_agree_with_rendered_depth() -> None:
    """Every track observation must show the 3D point its keyframe pixel sees (exact depth)."""
    scene = SyntheticScene(preset("small", seed=1))
    indices = list(range(8))
    config = TrackConfig(keypoints_per_frame=512, max_keyframe_distance_m=0.04)
    tracks = build_tracks(scene, indices, config, XFeatMatcher(512, device="cpu"),
                          progress=False)
    assert tracks.keyframe_ids[0] == 0
    assert len(tracks.keyframe_ids) >= 2  # 8 frames at 1.2 cm/frame pass 4 cm
    assert len(tracks) > 300
    assert (tracks.keyframe_ids_T < tracks.frame_ids_T).all()
    depths = {k: scene.render_rgbd(k)[1].astype(np.float64) / 1000.0 for k in tracks.keyframe_ids}
    K_s = scene.intrinsics.K
    errors = []
    for frame_id in np.unique(tracks.frame_ids_T):
        rows = tracks.frame_ids_T == frame_id
        for keyframe in np.unique(tracks.keyframe_ids_T[rows]):
            sel = rows & (tracks.keyframe_ids_T == keyframe)
            uv = tracks.keyframe_pixels_T2[sel].astype(np.float64)
            z = depths[keyframe][np.rint(uv[:, 1]).astype(int), np.rint(uv[:, 0]).astype(int)]
            ok = z > 0
            rays = np.column_stack([uv[ok], np.ones(ok.sum())]) @ np.linalg.inv(K_s).T
            world = transform_points(scene.T_world_cam_N44[keyframe], rays * z[ok, None])
            projected = project_world(scene.T_world_cam_N44[frame_id], world, K_s)
            errors.append(np.linalg.norm(projected - tracks.pixels_T2[sel][ok], axis=1))
    errors_px = np.concatenate(errors)
    # XFeat keypoints at 320x240 repeat to about 1-2 px; a broken chain is tens of pixels off
    assert np.median(errors_px) < 2.5
    assert np.mean(errors_px < 5.0) > 0.9
