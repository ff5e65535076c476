"""Choosing keyframes over the mapped poses, and building them with a real map's head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.depth import depths_at
from seqace_ros.core.geometry import (
    invert_transform,
    make_transform,
    rotation_from_quaternion_xyzw,
    transform_points,
)
from seqace_ros.core.keyframes import Keyframes
from seqace_ros.core.map_file import SceneMap
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.pipeline.localization.local_map import reprojection_errors_px
from seqace_ros.pipeline.localization.single import Localizer
from seqace_ros.pipeline.mapping.keyframes import (
    KeyframeConfig,
    SensorDepth,
    build_keyframes,
    on_keypoint_rays,
    select_keyframes,
)


def _line_of_poses(count: int, step_m: float = 0.1) -> np.ndarray:
    return np.stack([make_transform(np.eye(3), [k * step_m, 0.0, 0.0]) for k in range(count)])


def test_selection_spreads_keyframes_over_the_poses() -> None:
    chosen = select_keyframes(_line_of_poses(21), count=3, rotation_weight_m=0.5)
    assert chosen.tolist() == [0, 10, 20]  # first, farthest, then the middle


def test_selection_takes_every_distinct_pose_and_stops_at_repeats() -> None:
    poses = np.concatenate([_line_of_poses(4), _line_of_poses(4)])  # each pose twice
    chosen = select_keyframes(poses, count=100, rotation_weight_m=0.5)
    assert len(chosen) == 4
    assert sorted({int(p) % 4 for p in chosen}) == [0, 1, 2, 3]
    assert select_keyframes(poses, count=0, rotation_weight_m=0.5).size == 0


def test_selection_counts_viewing_direction() -> None:
    turned = make_transform(np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]),
                            [0.05, 0.0, 0.0])  # 5 cm from the first pose, looking 90 deg away
    poses = np.concatenate([_line_of_poses(3, 0.2), turned[None]])
    assert select_keyframes(poses, 2, rotation_weight_m=0.5).tolist() == [0, 3]
    assert select_keyframes(poses, 2, rotation_weight_m=0.0).tolist() == [0, 2]


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="keypoints >= 16"):
        KeyframeConfig(keypoints=8)
    with pytest.raises(ValueError, match="count >= 0"):
        KeyframeConfig(count=-1)
    with pytest.raises(ValueError, match="max_error_px"):
        KeyframeConfig(max_error_px=0.0)


def test_head_points_move_onto_their_keypoint_rays_at_their_depth() -> None:
    """A point off its keypoint's ray lands on it (reprojects onto the keypoint) at the same
    camera-frame depth; a point behind the camera gets no position."""
    intrinsics = Intrinsics(fx=500.0, fy=510.0, cx=320.0, cy=240.0, width=640, height=480)
    T_world_cam = make_transform(rotation_from_quaternion_xyzw([0.1, 0.2, -0.1, 0.97]),
                                 [0.4, -0.2, 1.0])
    keypoints = np.array([[100.0, 50.0], [320.0, 240.0], [600.0, 400.0]])
    depths = np.array([0.8, 2.0, 4.5])
    on_rays = intrinsics.backproject(keypoints, depths)
    sideways = on_rays + np.array([[0.02, -0.01, 0.0], [-0.03, 0.02, 0.0], [0.0, 0.05, 0.0]])
    moved = on_keypoint_rays(T_world_cam, intrinsics, keypoints,
                             transform_points(T_world_cam, sideways))
    np.testing.assert_allclose(transform_points(invert_transform(T_world_cam), moved), on_rays,
                               atol=1e-9)
    behind = transform_points(T_world_cam, np.array([[0.1, 0.1, -1.0]]))
    assert np.isnan(on_keypoint_rays(T_world_cam, intrinsics, keypoints[:1], behind)).all()


@pytest.mark.real_data
def test_built_keyframes_hold_the_heads_points_at_their_keypoints(
    dev_data: Path, dev_scene_map: SceneMap
) -> None:
    """Each keyframe point is the head's prediction at its keypoint moved onto the keypoint's
    ray: reprojected into its keyframe it lands on the keypoint, at the depth of the head's
    point interpolated there; and the map's stored keyframes are mapping frames."""
    dataset = FolderDataset(dev_data)
    localizer = Localizer(dev_scene_map, device="cpu")
    frames = [0, 150, 295]  # mapping frames of the shared map
    config = KeyframeConfig(keypoints=300, max_error_px=1e6)  # keep every keypoint
    keyframes = build_keyframes(dataset, frames, localizer.encoder, localizer.head, config)
    assert keyframes.count == 3
    assert 200 <= int(keyframes.offsets_K1[-1]) <= 900
    for k, index in enumerate(frames):
        frame = dataset[index]
        np.testing.assert_allclose(keyframes.T_world_cam_K44[k], frame.T_world_cam, atol=1e-6)
        keypoints = localizer.encoder.encode(frame.image_rgb, num_keypoints=300).sparse
        assert keypoints is not None
        pixels = keypoints.keypoints_N2.astype(np.float64)
        points = keyframes.points_N3[keyframes.rows(k)].astype(np.float64)
        assert reprojection_errors_px(frame.T_world_cam, frame.intrinsics, pixels,
                                      points).max() < 1e-2
        patches = localizer.encode(frame.image_rgb)
        to_camera = invert_transform(frame.T_world_cam)
        patch_depths = transform_points(to_camera, localizer.regress(patches))[:, 2]
        offsets = np.linalg.norm(pixels[:, None] - patches.points2d_K2[None], axis=2)
        nearest, near = offsets.argmin(axis=1), offsets.min(axis=1) < 8.0
        assert near.sum() > 50
        relative = (transform_points(to_camera, points)[near, 2]
                    / patch_depths[nearest[near]] - 1.0)
        assert np.median(np.abs(relative)) < 0.05, (index, np.median(np.abs(relative)))
    stored = dev_scene_map.keyframes
    assert stored is not None
    assert stored.count == 8
    mapped = np.stack([dataset[i].T_world_cam for i in range(0, 300, 5)])
    for pose in stored.T_world_cam_K44:
        assert np.min(np.abs(mapped - pose).max(axis=(1, 2))) < 1e-5


def test_built_keyframes_store_quantized_descriptors_where_that_is_smaller(
    dev_data: Path, dev_scene_map: SceneMap
) -> None:
    """Three keyframes of 1024 keypoints store 16-byte codes whose decodings lie close to
    the float16 descriptors built from the same frames (same keypoints and points); three of
    64 keypoints stay float16, which the fixed-size codec would make larger."""
    dataset = FolderDataset(dev_data)
    localizer = Localizer(dev_scene_map, device="cpu")
    frames = [0, 150, 295]

    def build(keypoints: int, descriptor_bytes: int) -> Keyframes:
        config = KeyframeConfig(keypoints=keypoints, max_error_px=1e6,
                                descriptor_bytes=descriptor_bytes)
        return build_keyframes(dataset, frames, localizer.encoder, localizer.head, config)

    exact, coded = build(1024, 0), build(1024, 16)
    assert exact.quantized is None
    assert coded.quantized is not None
    assert coded.descriptor_bytes == 16
    assert coded.nbytes < 0.4 * exact.nbytes
    np.testing.assert_array_equal(coded.points_N3, exact.points_N3)
    cosines = np.sum(coded.descriptors_ND.astype(np.float64)
                     * exact.descriptors_ND.astype(np.float64), axis=1)
    assert np.mean(cosines) > 0.98
    assert coded.similarity_scale == pytest.approx(np.mean(cosines), abs=2e-3)
    few = build(64, 16)
    assert few.quantized is None
    assert few.quantize(16).nbytes > few.nbytes


@pytest.mark.real_data
def test_keyframes_of_an_rgbd_map_lift_their_keypoints_with_sensor_depth(
    dev_data: Path, dev_scene_map: SceneMap
) -> None:
    """With sensor depth, a keypoint's point is the keypoint lifted by the registered depth:
    it lies at that depth and reprojects exactly onto the keypoint; keypoints without valid
    depth keep the head's point where the head predicts it (not moved onto the ray); the head's
    reprojection filter never drops a lifted point.
    Frames without depth are an error, not a silent fallback."""
    localizer = Localizer(dev_scene_map, device="cpu")
    sensor_depth = SensorDepth(window_px=2, max_spread=0.05)
    dataset = FolderDataset(dev_data, depth=True)
    every = KeyframeConfig(keypoints=300, max_error_px=1e6)  # keep every keypoint
    lifted_keyframes = build_keyframes(dataset, [150], localizer.encoder, localizer.head, every,
                                       sensor_depth=sensor_depth)
    head_keyframes = build_keyframes(dataset, [150], localizer.encoder, localizer.head, every)
    assert lifted_keyframes.points_from_depth
    assert not head_keyframes.points_from_depth
    lifted = lifted_keyframes.points_N3.astype(np.float64)
    head = head_keyframes.points_N3.astype(np.float64)
    frame = dataset[150]
    assert frame.depth is not None
    keypoints = localizer.encoder.encode(frame.image_rgb, num_keypoints=300).sparse
    assert keypoints is not None
    pixels = keypoints.keypoints_N2.astype(np.float64)
    depth, has_depth = depths_at(pixels, frame.depth.registered_to(frame.intrinsics), 2, 0.05)
    assert len(lifted) == len(head) == len(pixels)
    assert 0.5 < has_depth.mean() < 1.0
    camera = transform_points(invert_transform(frame.T_world_cam), lifted[has_depth])
    np.testing.assert_allclose(camera[:, 2], depth[has_depth], rtol=1e-5)
    errors = reprojection_errors_px(frame.T_world_cam, frame.intrinsics, pixels[has_depth],
                                    lifted[has_depth])
    assert errors.max() < 1e-2
    np.testing.assert_allclose(  # the head's own points, which an RGB map moves onto the rays
        on_keypoint_rays(frame.T_world_cam, frame.intrinsics, pixels[~has_depth],
                         lifted[~has_depth]), head[~has_depth], atol=1e-4)
    assert reprojection_errors_px(frame.T_world_cam, frame.intrinsics, pixels[~has_depth],
                                  lifted[~has_depth]).max() > 0.1
    filtered = build_keyframes(dataset, [150], localizer.encoder, localizer.head,
                               KeyframeConfig(keypoints=300), sensor_depth=sensor_depth)
    assert len(filtered.points_N3) >= has_depth.sum()
    with pytest.raises(ValueError, match="no depth image"):
        build_keyframes(FolderDataset(dev_data), [150], localizer.encoder, localizer.head,
                        every, sensor_depth=sensor_depth)
