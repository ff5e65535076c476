"""End to end on real 7-Scenes frames: the shared real map (``real_map``), held-out frames."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from pinhole import project_world
from real_map import MAPPING_FRAMES

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.encoder import XFeatEncoder
from seqace_ros.core.geometry import pose_error
from seqace_ros.core.map_file import MapFileError, SceneMap, load_map, save_map
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.pipeline.localization.modes import create_localizer, mode_config
from seqace_ros.pipeline.localization.refinement import RefinementConfig
from seqace_ros.pipeline.localization.single import (
    LocalizationError,
    Localizer,
    LocalizerConfig,
)
from seqace_ros.pipeline.mapping import preset
from seqace_ros.pipeline.mapping.buffer import build_buffer

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

QUERY_FRAMES = (21, 41, 61, 81, 101)  # held out, between mapped frames


@pytest.fixture(scope="module")
def dataset(dev_data: Path) -> FolderDataset:
    return FolderDataset(dev_data)


@pytest.fixture(scope="module")
def scene_map(dev_scene_map: SceneMap) -> SceneMap:
    return dev_scene_map


@pytest.fixture(scope="module")
def localizer(scene_map: SceneMap) -> Localizer:
    return Localizer(scene_map, LocalizerConfig(), device="cpu")


def test_relocalizes_held_out_frames(dataset: FolderDataset, localizer: Localizer) -> None:
    errors = []
    for index in QUERY_FRAMES:
        frame = dataset[index]
        result = localizer.localize(frame.image_rgb, frame.intrinsics)
        if result.success:
            errors.append(pose_error(result.T_world_cam, frame.T_world_cam))
        else:
            errors.append((np.inf, np.inf))
    translation_m, rotation_deg = np.array(errors).T
    assert np.isfinite(translation_m).sum() >= 4, errors
    assert np.median(translation_m) < 0.10, errors
    assert np.median(rotation_deg) < 5.0, errors


def test_result_is_consistent(dataset: FolderDataset, localizer: Localizer) -> None:
    frame = dataset[QUERY_FRAMES[2]]
    result = localizer.localize(frame.image_rgb, frame.intrinsics)
    k = localizer.settings.top_k  # a 640x480 image has 4800 cells, more than top_k
    assert result.success
    assert result.T_world_cam.shape == (4, 4)
    assert result.num_correspondences == k
    assert result.points2d_N2.shape == (k, 2)
    assert result.scene_points_N3.shape == (k, 3)
    assert result.inliers_N.shape == (k,)
    assert result.num_inliers == int(result.inliers_N.sum()) >= 50
    assert result.confidence == pytest.approx(result.num_inliers / k)
    assert set(result.timings_ms) == {"encoder", "head", "ransac", "total"}
    assert (result.points2d_N2 >= 0).all()
    assert (result.points2d_N2[:, 0] < 640).all()
    assert (result.points2d_N2[:, 1] < 480).all()
    # inlier scene points project near their pixels under the estimated pose
    uv = project_world(result.T_world_cam, result.scene_points_N3[result.inliers_N],
                       frame.intrinsics.K)
    assert np.median(np.linalg.norm(uv - result.points2d_N2[result.inliers_N], axis=1)) < 10.0


def test_stages_match_localize(dataset: FolderDataset, localizer: Localizer) -> None:
    frame = dataset[QUERY_FRAMES[0]]
    encoded = localizer.encode(frame.image_rgb)
    points = localizer.regress(encoded)
    result = localizer.localize(frame.image_rgb, frame.intrinsics)
    np.testing.assert_allclose(points, result.scene_points_N3)
    np.testing.assert_allclose(encoded.points2d_K2, result.points2d_N2)


@pytest.mark.parametrize("image_height", [480, 240, 720])
def test_inlier_threshold_is_in_network_input_pixels(localizer: Localizer,
                                                      image_height: int) -> None:
    """``threshold_px`` counts pixels of the image scaled to the map's image height (ACE's
    convention): correspondences off by half of it are inliers, off by 1.6 times it outliers, in
    pixels of the image itself at every image size."""
    assert localizer.scene_map.image_height == 480
    scale = image_height / 480
    intrinsics = Intrinsics(525.0 * scale, 525.0 * scale, 320.0 * scale, 240.0 * scale,
                            round(640 * scale), image_height)
    threshold = localizer.settings.threshold_px * scale
    assert localizer.inlier_threshold_px(intrinsics) == pytest.approx(threshold)
    rng = np.random.default_rng(0)
    points_N3 = rng.uniform((-1.5, -1.0, 2.0), (1.5, 1.0, 4.0), size=(400, 3))
    pixels_N2 = project_world(np.eye(4), points_N3, intrinsics.K)
    offset_N = np.where(np.arange(400) % 4 == 0, 1.6, 0.5) * threshold
    angle_N = rng.uniform(0.0, 2.0 * np.pi, 400)
    pixels_N2 += offset_N[:, None] * np.stack([np.cos(angle_N), np.sin(angle_N)], axis=1)
    T_world_cam, inliers_N = localizer.solve(pixels_N2, points_N3, intrinsics)
    assert T_world_cam is not None
    # the 0.5 offsets pull the pose a little; the split holds away from the threshold
    assert inliers_N.sum() == pytest.approx(300, abs=15)
    assert inliers_N[offset_N < threshold].mean() > 0.95


def test_recovers_from_the_keyframes_where_ransac_finds_no_pose(
        dataset: FolderDataset, scene_map: SceneMap, monkeypatch: pytest.MonkeyPatch) -> None:
    """With refinement on, a frame the head's RANSAC finds no pose for (simulated: the solve
    stage patched to report none) gets one from the keyframes its keypoints vote for, with
    those matches as its correspondences; with ``recover`` off it stays without a pose. (The
    test preset's 8 keyframes hold 16 to 60 points each, hence the lower inlier bar.)"""
    frame = dataset[21]
    results, statuses = {}, {}
    for recover in (True, False):
        localizer = Localizer(scene_map, LocalizerConfig(refine=True, refinement=RefinementConfig(
            recover=recover, min_recovery_inliers=50)), device="cpu")
        monkeypatch.setattr(localizer, "solve", lambda points2d_N2, *_: (
            None, np.zeros(len(points2d_N2), dtype=bool)))
        results[recover] = localizer.localize(frame.image_rgb, frame.intrinsics)
        statuses[recover] = localizer.status.refinement
    recovered = results[True]
    assert recovered.success
    assert recovered.recovered
    assert not recovered.refined
    translation_m, rotation_deg = pose_error(recovered.T_world_cam, frame.T_world_cam)
    assert translation_m < 0.10, translation_m
    assert rotation_deg < 3.0, rotation_deg
    assert recovered.num_inliers == int(recovered.inliers_N.sum()) >= 50
    assert len(recovered.points2d_N2) == len(recovered.scene_points_N3)
    assert recovered.num_correspondences == len(recovered.points2d_N2)
    assert statuses[True] == (f"recovered from the keyframes: {recovered.num_inliers} of "
                              f"{recovered.num_correspondences} matches agree")
    assert not results[False].success
    assert not results[False].recovered
    assert statuses[False] == ""
    sequence = create_localizer(scene_map, mode_config("sequence").with_frame(LocalizerConfig(
        refine=True, refinement=RefinementConfig(min_recovery_inliers=50))), "cpu")
    monkeypatch.setattr(sequence._single, "solve", lambda points2d_N2, *_: (  # type: ignore[attr-defined]
        None, np.zeros(len(points2d_N2), dtype=bool)))
    first = sequence.localize(frame.image_rgb, frame.intrinsics)  # nothing tracked yet
    assert first.recovered
    assert sequence.status.refinement == statuses[True]
    np.testing.assert_allclose(first.T_world_cam, recovered.T_world_cam, atol=1e-9)
    assert results[False].T_world_cam is None


def test_keyframes_replace_a_head_pose_they_do_not_confirm(
        dataset: FolderDataset, scene_map: SceneMap, monkeypatch: pytest.MonkeyPatch) -> None:
    """A head pose the keyframes do not confirm (simulated: the solve stage patched to return
    the true pose moved 1 m, beyond refinement's gate) gives way to the pose from the
    keyframes the image's keypoints vote for when that one has more inliers; a wrong pose
    with more inliers than the keyframes' is kept, its status saying why it was not refined."""
    frame = dataset[21]
    T_wrong = frame.T_world_cam.copy()
    T_wrong[:3, 3] += (1.0, 0.0, 0.0)
    outcomes = {}
    for head_inliers in (60, None):  # None: every correspondence is an inlier
        localizer = Localizer(scene_map, LocalizerConfig(refine=True, refinement=RefinementConfig(
            min_recovery_inliers=50)), device="cpu")

        def wrong_pose(points2d_N2: np.ndarray, *_: object, count: int | None = head_inliers
                       ) -> tuple[np.ndarray, np.ndarray]:
            inliers_N = np.zeros(len(points2d_N2), dtype=bool)
            inliers_N[:count] = True
            return T_wrong, inliers_N

        monkeypatch.setattr(localizer, "solve", wrong_pose)
        outcomes[head_inliers] = (localizer.localize(frame.image_rgb, frame.intrinsics),
                                  localizer.status.refinement)
    recovered, status = outcomes[60]
    assert recovered.recovered
    assert not recovered.refined
    assert recovered.num_inliers > 60
    translation_m, rotation_deg = pose_error(recovered.T_world_cam, frame.T_world_cam)
    assert translation_m < 0.10, translation_m
    assert rotation_deg < 3.0, rotation_deg
    assert status.startswith(f"recovered from the keyframes: {recovered.num_inliers} of "
                             f"{recovered.num_correspondences} matches agree; the head's pose "
                             "(60 inliers) was not confirmed: "), status
    kept, status = outcomes[None]
    assert not kept.recovered
    assert not kept.refined
    np.testing.assert_array_equal(kept.T_world_cam, T_wrong)
    assert kept.num_inliers > recovered.num_inliers
    assert status.startswith("kept the head's pose: "), status


def test_status_says_what_refinement_did(dataset: FolderDataset, scene_map: SceneMap) -> None:
    """The mode's status (the node's diagnostics) says whether each frame's pose was refined
    and, when not, why; without refinement it says nothing."""
    refining = Localizer(scene_map, LocalizerConfig(refine=True), device="cpu")
    plain = Localizer(scene_map, LocalizerConfig(), device="cpu")
    outcomes = []
    for index in QUERY_FRAMES:
        frame = dataset[index]
        result = refining.localize(frame.image_rgb, frame.intrinsics)
        outcome = refining.status.refinement
        assert result.success
        assert outcome.startswith("refined: " if result.refined else "kept the head's pose: ")
        outcomes.append(outcome)
        plain.localize(frame.image_rgb, frame.intrinsics)
        assert plain.status.refinement == ""
    assert len(set(outcomes)) > 1, outcomes  # counts (or reasons) differ from frame to frame


def test_map_file_round_trip_gives_same_poses(
    tmp_path: Path, dataset: FolderDataset, scene_map: SceneMap, localizer: Localizer
) -> None:
    path = save_map(scene_map, tmp_path / "scene.map")
    assert path.stat().st_size < 4.1e6
    reloaded = Localizer(load_map(path), device="cpu")
    frame = dataset[QUERY_FRAMES[1]]
    a = localizer.localize(frame.image_rgb, frame.intrinsics)
    b = reloaded.localize(frame.image_rgb, frame.intrinsics)
    np.testing.assert_allclose(a.scene_points_N3, b.scene_points_N3)
    np.testing.assert_allclose(a.T_world_cam, b.T_world_cam)
    assert load_map(path).mapping_stats["frames"] == len(MAPPING_FRAMES)


def test_rejects_map_of_another_encoder_and_bad_intrinsics(
    dataset: FolderDataset, scene_map: SceneMap, localizer: Localizer
) -> None:
    foreign = dataclasses.replace(scene_map, encoder_weight_hash="0" * 64)
    with pytest.raises(MapFileError, match="encoder"):
        Localizer(foreign, device="cpu")
    frame = dataset[0]
    with pytest.raises(LocalizationError, match="640x480"):
        localizer.localize(frame.image_rgb, frame.intrinsics.resized(320, 240))


def test_buffer_is_deterministic(dataset: FolderDataset) -> None:
    encoder = XFeatEncoder(device="cpu")
    config = preset("test", seed=3, salient_per_image=300)
    a = build_buffer(dataset, [0, 50], encoder, config, progress=False)
    b = build_buffer(dataset, [0, 50], encoder, config, progress=False)
    assert torch.equal(a.features_NC, b.features_NC)
    assert torch.equal(a.pixels_N2, b.pixels_N2)
    assert len(a) == 2 * config.patches_per_image
    # salient patches (after NMS) come first in each image's block, then random valid ones
    assert 0 < int(a.salient_N.sum()) <= 2 * 300
    assert bool(a.salient_N[0])
    assert not bool(a.salient_N[config.patches_per_image - 1])
