"""Refinement against keyframes on exact synthetic geometry: it recovers the true pose from a
perturbed one, weighs keyframe matches against head correspondences by their precision, and
its gates reject what they must."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import invert_transform, make_transform, pose_error, transform_points
from seqace_ros.core.keyframes import Keyframes
from seqace_ros.core.sparse_features import SparseFeatures, mutual_nearest_neighbours
from seqace_ros.pipeline.localization import refinement as refinement_module
from seqace_ros.pipeline.localization.refinement import (
    KeyframeMatcher,
    RefinementConfig,
    recover_pose,
    refine_pose,
    tighten_matches,
)
from seqace_ros.ransac import solve_pnp

INTRINSICS = Intrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480)
#: No head correspondences: the keyframe matches alone decide.
NO_PATCHES = (np.zeros((0, 2)), np.zeros((0, 3)))


def _rotation(axis: NDArray[np.float64], angle_deg: float) -> NDArray[np.float64]:
    axis = axis / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.deg2rad(angle_deg)
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def _scene(seed: int = 0, points: int = 300) -> tuple[NDArray[np.float64], Keyframes,
                                                      NDArray[np.float64]]:
    """True query pose, three keyframes holding ``points`` map points with random descriptors,
    and those descriptors."""
    rng = np.random.default_rng(seed)
    T_true = make_transform(_rotation(np.array([0.2, 1.0, 0.1]), 7.0), [0.3, -0.1, 0.2])
    pixels = rng.uniform([20, 20], [620, 460], size=(points, 2))
    depths = rng.uniform(2.0, 4.0, size=points)
    rays = np.stack([(pixels[:, 0] - INTRINSICS.cx) / INTRINSICS.fx,
                     (pixels[:, 1] - INTRINSICS.cy) / INTRINSICS.fy, np.ones(points)], axis=1)
    world = transform_points(T_true, rays * depths[:, None])
    descriptors = rng.normal(size=(points, 64))
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    poses = np.stack([T_true @ make_transform(np.eye(3), [dx, 0.0, 0.0]) for dx in (-0.3, 0, 0.3)])
    keyframes = Keyframes(
        T_world_cam_K44=poses.astype(np.float32),
        offsets_K1=np.array([0, 100, 200, points], np.int64),
        descriptors_ND=descriptors.astype(np.float16),
        points_N3=world.astype(np.float32),
    )
    return T_true, keyframes, descriptors


def _query(T_true: NDArray[np.float64], keyframes: Keyframes, descriptors: NDArray[np.float64],
           seed: int = 1, outliers: int = 100) -> SparseFeatures:
    """The query's keypoints: every map point projected by the true pose (0.3 px noise, same
    descriptor), plus ``outliers`` random keypoints with random descriptors."""
    rng = np.random.default_rng(seed)
    cam = transform_points(invert_transform(T_true), keyframes.points_N3.astype(np.float64))
    pixels = np.stack([INTRINSICS.fx * cam[:, 0] / cam[:, 2] + INTRINSICS.cx,
                       INTRINSICS.fy * cam[:, 1] / cam[:, 2] + INTRINSICS.cy], axis=1)
    pixels += rng.normal(scale=0.3, size=pixels.shape)
    noise = rng.normal(size=(outliers, 64))
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    return SparseFeatures(
        keypoints_N2=np.concatenate([pixels, rng.uniform(0, 480, (outliers, 2))]).astype(
            np.float32),
        descriptors_ND=np.concatenate([descriptors, noise]).astype(np.float32),
        scores_N=np.ones(len(pixels) + outliers, np.float32),
    )


def _matches_off_by(
    T_true: NDArray[np.float64], points_M3: NDArray[np.float64], offset_px: tuple[float, float],
    seed: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Pixels (M, 2) of ``points_M3`` under ``T_true`` with 0.3 px noise, every third one moved
    by its offset: ``offset_px`` (low, high) pixels in a random direction; with the exact
    projections (M, 2) and every point's offset (M, 2)."""
    rng = np.random.default_rng(seed)
    exact_M2, _ = INTRINSICS.project(transform_points(invert_transform(T_true), points_M3))
    angles_M = rng.uniform(0.0, 2.0 * np.pi, len(points_M3))
    offsets_M2 = rng.uniform(*offset_px, len(points_M3))[:, None] * np.stack(
        [np.cos(angles_M), np.sin(angles_M)], axis=1)
    pixels_M2 = exact_M2 + rng.normal(scale=0.3, size=exact_M2.shape)
    off_M = np.arange(len(points_M3)) % 3 == 0
    pixels_M2[off_M] += offsets_M2[off_M]
    return pixels_M2, exact_M2, offsets_M2


def test_tightening_keeps_only_the_matches_within_the_tighter_bound() -> None:
    """Every third keyframe match 1.5 to 2 px off, the rest 0.3 px: 3 robust standard
    deviations (about 2.2 px) still hold most of the imprecise third, 1.5 of them (1.1 px)
    leave it out. Over twenty draws the poses solved from the matches kept by 1.5 are nearer the
    truth (median) than those kept by 3."""
    T_true, keyframes, _ = _scene()
    points_M3 = keyframes.points_N3.astype(np.float64)
    config = RefinementConfig()
    errors_m: dict[float, list[float]] = {1.5: [], 3.0: []}
    for seed in range(20):
        pixels_M2, _, _ = _matches_off_by(T_true, points_M3, (1.5, 2.0), seed)
        T_joint = np.asarray(solve_pnp(pixels_M2, points_M3, INTRINSICS.as_tuple,
                                       config.ransac_options(0)).T_world_cam)
        for keep, errors in errors_m.items():
            tightened = tighten_matches(T_joint, pixels_M2, points_M3, INTRINSICS,
                                        replace(config, polish_keep_sigmas=keep), 0)
            # None: the bound holds every inlier already, and the joint pose stays
            assert tightened is not None or keep == 3.0
            errors.append(pose_error(T_joint if tightened is None else tightened, T_true)[0])
    assert np.median(errors_m[1.5]) < 0.8 * np.median(errors_m[3.0])


def _perturbed(T: NDArray[np.float64], metres: float, degrees: float) -> NDArray[np.float64]:
    delta = make_transform(_rotation(np.array([1.0, -0.5, 0.3]), degrees),
                           metres * np.array([0.6, 0.0, 0.8]))
    return T @ delta


def test_tightening_leaves_out_the_imprecise_matches_within_the_threshold() -> None:
    """A third of the keyframe matches are 4 to 7 px off, inside the 8 px threshold, the rest
    0.3 px: their 3 robust standard deviations are tighter than the threshold, and solved
    again from the matches within 1.5 of them, the pose is less than half as far from the
    truth as the one all inliers gave. With every match as imprecise as that third, the bound
    is not tighter than the threshold and nothing is solved again; nor with ``polish_sigmas``
    0."""
    T_true, keyframes, _ = _scene()
    points_M3 = keyframes.points_N3.astype(np.float64)
    pixels_M2, exact_M2, offsets_M2 = _matches_off_by(T_true, points_M3, (4.0, 7.0), seed=3)
    config = RefinementConfig()
    loose = solve_pnp(pixels_M2, points_M3, INTRINSICS.as_tuple, config.ransac_options(0))
    assert loose.success
    T_loose = np.asarray(loose.T_world_cam)
    assert np.sum(loose.inliers) == len(points_M3)  # every match within the threshold
    tightened = tighten_matches(T_loose, pixels_M2, points_M3, INTRINSICS, config, 0)
    assert tightened is not None
    assert pose_error(tightened, T_true)[0] < 0.5 * pose_error(T_loose, T_true)[0]
    assert tighten_matches(T_loose, pixels_M2, points_M3, INTRINSICS,
                           replace(config, polish_sigmas=0.0), 0) is None
    uniform_M2 = exact_M2 + offsets_M2
    uniform = np.asarray(solve_pnp(uniform_M2, points_M3, INTRINSICS.as_tuple,
                                   config.ransac_options(0)).T_world_cam)
    assert tighten_matches(uniform, uniform_M2, points_M3, INTRINSICS, config, 0) is None


def test_recovers_the_true_pose_from_a_coarse_one() -> None:
    T_true, keyframes, descriptors = _scene()
    query = _query(T_true, keyframes, descriptors)
    coarse = _perturbed(T_true, 0.08, 2.0)
    refinement = refine_pose(coarse, query, INTRINSICS, KeyframeMatcher(keyframes),
                             RefinementConfig(), *NO_PATCHES)
    assert refinement.accepted, refinement.reason
    translation_m, rotation_deg = pose_error(refinement.T_world_cam, T_true)
    assert translation_m < 0.003
    assert rotation_deg < 0.1
    assert refinement.matches >= 290
    assert refinement.inliers >= 290


def test_pixel_threshold_scales_with_the_image() -> None:
    """The RANSAC threshold is in network-input pixels: on an image half as tall as the map's
    input (``in_image_pixels(0.5)``) it halves, and the refinement still finds the pose."""
    half = RefinementConfig().in_image_pixels(0.5)
    assert half.threshold_px == 4.0
    assert replace(half, threshold_px=8.0) == RefinementConfig()
    T_true, keyframes, descriptors = _scene()
    refined = refine_pose(_perturbed(T_true, 0.08, 2.0), _query(T_true, keyframes, descriptors),
                          INTRINSICS, KeyframeMatcher(keyframes), half, *NO_PATCHES)
    assert refined.accepted, refined.reason
    assert pose_error(refined.T_world_cam, T_true)[0] < 0.003


def _exact_patches(T_world_cam: NDArray[np.float64], count: int,
                   seed: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``count`` head correspondences (pixels, map points) exact under ``T_world_cam``."""
    rng = np.random.default_rng(seed)
    pixels = rng.uniform([20, 20], [620, 460], size=(count, 2))
    rays = np.stack([(pixels[:, 0] - INTRINSICS.cx) / INTRINSICS.fx,
                     (pixels[:, 1] - INTRINSICS.cy) / INTRINSICS.fy, np.ones(count)], axis=1)
    return pixels, transform_points(T_world_cam, rays * rng.uniform(1.0, 1.5, size=(count, 1)))


def test_keyframe_matches_tighter_than_the_head_correspondences_outweigh_them() -> None:
    """Head correspondences right on average but with 3 px noise, keyframe matches with 0.3 px:
    the matches weigh the clipped maximum of 16 head correspondences each and the joint pose
    is as precise as the matches."""
    T_true, keyframes, descriptors = _scene()
    pixels, patches = _exact_patches(T_true, 1000, seed=3)
    noisy = pixels + np.random.default_rng(4).normal(scale=3.0, size=pixels.shape)
    refined = refine_pose(_perturbed(T_true, 0.01, 0.2), _query(T_true, keyframes, descriptors),
                          INTRINSICS, KeyframeMatcher(keyframes), RefinementConfig(), noisy,
                          patches)
    assert refined.accepted, refined.reason
    assert refined.keyframe_weight == RefinementConfig().max_weight_ratio
    assert pose_error(refined.T_world_cam, T_true)[0] < 0.003


def test_tightening_solves_from_the_matches_alone_when_the_head_is_biased() -> None:
    """Head correspondences with 3 px noise around a pose 1 cm off (the map's bias near the
    query), keyframe matches with 0.3 px: the joint pose leans towards the head; the matches
    are far more precise than the threshold, so the pose is solved again from them alone and
    lands within 1 mm of the truth, where without tightening it stays over 5 mm off."""
    T_true, keyframes, descriptors = _scene()
    pixels, patches = _exact_patches(_perturbed(T_true, 0.01, 0.1), 1000, seed=3)
    noisy = pixels + np.random.default_rng(4).normal(scale=3.0, size=pixels.shape)
    errors_m = {}
    for sigmas in (0.0, RefinementConfig().polish_sigmas):
        refined = refine_pose(_perturbed(T_true, 0.01, 0.2),
                              _query(T_true, keyframes, descriptors), INTRINSICS,
                              KeyframeMatcher(keyframes), RefinementConfig(polish_sigmas=sigmas),
                              noisy, patches)
        assert refined.accepted, refined.reason
        errors_m[sigmas] = pose_error(refined.T_world_cam, T_true)[0]
    assert errors_m[0.0] > 0.005
    assert errors_m[RefinementConfig().polish_sigmas] < 0.001


def test_head_correspondences_tighter_than_the_keyframe_matches_hold_the_pose() -> None:
    """Head correspondences exact under the coarse pose, 8 cm from the one the keyframe
    matches (0.3 px noise) give: the head is the more precise source, a match weighs 1/16 of
    a head correspondence, and the joint pose stays where the head puts it."""
    T_true, keyframes, descriptors = _scene()
    coarse = _perturbed(T_true, 0.08, 2.0)
    pixels, patches = _exact_patches(coarse, 1000, seed=3)
    refined = refine_pose(coarse, _query(T_true, keyframes, descriptors), INTRINSICS,
                          KeyframeMatcher(keyframes), RefinementConfig(), pixels, patches)
    assert refined.keyframe_weight == 1.0 / RefinementConfig().max_weight_ratio
    assert pose_error(refined.T_world_cam, coarse)[0] < 0.001
    equal = refine_pose(coarse, _query(T_true, keyframes, descriptors), INTRINSICS,
                        KeyframeMatcher(keyframes), RefinementConfig(max_weight_ratio=1.0),
                        pixels, patches)
    assert equal.keyframe_weight == 1.0  # clipped to 1: 1000 head points still outvote 300
    assert pose_error(equal.T_world_cam, coarse)[0] < 0.001


def test_gate_rejects_a_refined_pose_far_from_the_coarse_one() -> None:
    T_true, keyframes, descriptors = _scene()
    coarse = _perturbed(T_true, 0.5, 3.0)
    refinement = refine_pose(coarse, _query(T_true, keyframes, descriptors), INTRINSICS,
                             KeyframeMatcher(keyframes), RefinementConfig(max_translation_m=0.3),
                             *NO_PATCHES)
    assert not refinement.accepted
    assert "from the coarse one" in refinement.reason
    assert refinement.describe() == f"kept the head's pose: {refinement.reason}"
    np.testing.assert_array_equal(refinement.T_world_cam, coarse)
    wider = refine_pose(coarse, _query(T_true, keyframes, descriptors), INTRINSICS,
                        KeyframeMatcher(keyframes), RefinementConfig(max_translation_m=1.0),
                        *NO_PATCHES)
    assert wider.accepted
    assert wider.describe() == (f"refined: {wider.inliers} of {wider.matches} keyframe matches "
                                f"agree (match weight {wider.keyframe_weight:.2g})")
    assert pose_error(wider.T_world_cam, T_true)[0] < 0.003


def test_unmatched_query_keeps_the_coarse_pose() -> None:
    T_true, keyframes, _ = _scene()
    strangers = np.random.default_rng(5).normal(size=(300, 64))
    query = _query(T_true, keyframes, strangers / np.linalg.norm(strangers, axis=1,
                                                                   keepdims=True))
    coarse = _perturbed(T_true, 0.08, 2.0)
    refinement = refine_pose(coarse, query, INTRINSICS, KeyframeMatcher(keyframes),
                             RefinementConfig(), *NO_PATCHES)
    assert not refinement.accepted
    assert "keyframe matches" in refinement.reason
    assert refinement.matches < 30


def test_keyframe_points_beyond_the_depth_limit_are_not_matched() -> None:
    """The scene's points lie 2-4 m in front of the query; the keyframes sit on the query's
    plane, so a point's depth in its keyframe is its depth in the query: with a 3 m limit
    only the points nearer than 3 m are matched, and the pose is still found from them."""
    T_true, keyframes, descriptors = _scene()
    query = _query(T_true, keyframes, descriptors)
    matcher = KeyframeMatcher(keyframes)
    all_K = np.arange(keyframes.count)
    _, points = matcher.matches(query, all_K, 0.82)
    _, near = matcher.matches(query, all_K, 0.82, max_depth_m=3.0)
    depths = transform_points(invert_transform(T_true), points)[:, 2]
    assert len(near) == int(np.sum(depths <= 3.0)) < len(points)
    assert np.all(transform_points(invert_transform(T_true), near)[:, 2] <= 3.0)
    limited = refine_pose(_perturbed(T_true, 0.08, 2.0), query, INTRINSICS, matcher,
                          RefinementConfig(max_point_depth_m=3.0), *NO_PATCHES)
    assert limited.accepted, limited.reason
    assert limited.matches == len(near)
    assert pose_error(limited.T_world_cam, T_true)[0] < 0.003


def test_far_points_are_matched_when_the_near_ones_are_too_few() -> None:
    """With a 2.4 m limit about a fifth of the scene's points (2-4 m) are near: their own
    solve has fewer than ``min_near_inliers`` inliers, so the far points are matched too and
    refinement and recovery solve from all of them; with ``min_near_inliers`` 0 refinement
    uses the near points alone, and recovery finds too few of them."""
    T_true, keyframes, descriptors = _scene()
    query = _query(T_true, keyframes, descriptors)
    matcher = KeyframeMatcher(keyframes)
    config = RefinementConfig(max_point_depth_m=2.4)
    near = len(matcher.matches(query, np.arange(keyframes.count), 0.82, max_depth_m=2.4)[0])
    assert config.min_inliers < near < config.min_near_inliers
    coarse = _perturbed(T_true, 0.08, 2.0)
    refined = refine_pose(coarse, query, INTRINSICS, matcher, config, *NO_PATCHES)
    assert refined.accepted, refined.reason
    assert (refined.matches, refined.max_depth_m) == (300, 0.0)
    assert pose_error(refined.T_world_cam, T_true)[0] < 0.003
    only_near = replace(config, min_near_inliers=0)
    limited = refine_pose(coarse, query, INTRINSICS, matcher, only_near, *NO_PATCHES)
    assert limited.accepted, limited.reason
    assert (limited.matches, limited.max_depth_m) == (near, 2.4)
    recovery = recover_pose(query, INTRINSICS, matcher, config)
    assert recovery is not None
    assert len(recovery.inliers_M) == 300
    assert pose_error(recovery.T_world_cam, T_true)[0] < 0.003
    assert recover_pose(query, INTRINSICS, matcher, only_near) is None


def _with_strangers(keyframes: Keyframes, count: int, seed: int) -> Keyframes:
    """``keyframes`` and ``count`` more of 100 points each, with random descriptors."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(100 * count, 64))
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    last = keyframes.offsets_K1[-1]
    return Keyframes(
        T_world_cam_K44=np.concatenate([keyframes.T_world_cam_K44,
                                        np.repeat(keyframes.T_world_cam_K44[:1], count, 0)]),
        offsets_K1=np.concatenate([keyframes.offsets_K1,
                                   last + 100 * np.arange(1, count + 1)]).astype(np.int64),
        descriptors_ND=np.concatenate([keyframes.descriptors_ND, noise.astype(np.float16)]),
        points_N3=np.concatenate([keyframes.points_N3,
                                  rng.uniform(-1, 1, (100 * count, 3)).astype(np.float32)]),
    )


def test_keypoints_vote_for_the_keyframes_they_match() -> None:
    """Three keyframes the query sees (100 points each) among 20 it does not: the votes go to
    the three, ranked by how many of the voters hold their descriptors, and the strangers get
    none. Voting in blocks smaller than the descriptor set gives the same answer."""
    T_true, keyframes, descriptors = _scene()
    matcher = KeyframeMatcher(_with_strangers(keyframes, 20, seed=6))
    query = _query(T_true, keyframes, descriptors)
    voted = matcher.voted(query, 4, 0.82, voters=400, per_keyframe=256)
    assert sorted(voted.tolist()) == [0, 1, 2]
    few = matcher.voted(query, 2, 0.82, voters=400, per_keyframe=256)
    assert len(few) == 2
    assert set(few.tolist()) <= {0, 1, 2}
    matcher.VOTE_BLOCK = 7
    np.testing.assert_array_equal(
        matcher.voted(query, 4, 0.82, voters=400, per_keyframe=256), voted)


def test_quantized_keyframes_match_with_the_similarity_threshold_scaled_by_their_fidelity(
) -> None:
    """Decoded descriptors lie a little off the originals, so a query's exact descriptor is
    less similar to its decoding than to the original. Matching and voting scale the threshold
    by the codes' fidelity; the same decoded descriptors held as plain values (scale 1) lose
    the matches that fall between the two thresholds."""
    T_true, keyframes, descriptors = _scene()
    quantized = keyframes.quantize(16)
    assert quantized.quantized is not None
    assert quantized.similarity_scale == quantized.quantized.fidelity < 1.0
    plain = replace(quantized, quantized=None)
    query = _query(T_true, keyframes, descriptors)
    everything = np.arange(3)
    # a threshold the decodings' similarities straddle: 0.995 against their mean of 0.996
    scaled_pixels, _ = KeyframeMatcher(quantized).matches(query, everything, 0.995)
    plain_pixels, _ = KeyframeMatcher(plain).matches(query, everything, 0.995)
    assert len(plain_pixels) < 0.8 * len(scaled_pixels)
    assert len(scaled_pixels) >= 0.9 * len(keyframes.points_N3)
    assert len(KeyframeMatcher(quantized).voted(query, 3, 0.999, 400, 100)) == 3
    assert len(KeyframeMatcher(plain).voted(query, 3, 1.0, 400, 100)) == 0


def test_votes_search_only_the_strongest_keypoints_of_each_keyframe() -> None:
    """A query holding only keyframe 0's keypoints ranked 50 to 99 (a keyframe's rows are in
    descending score) votes for keyframe 0 when the 100 strongest of each keyframe are
    searched and for none when only the 50 strongest are."""
    _, keyframes, descriptors = _scene()
    matcher = KeyframeMatcher(keyframes)
    weaker = SparseFeatures(keypoints_N2=np.zeros((50, 2), np.float32),
                            descriptors_ND=descriptors[50:100].astype(np.float32),
                            scores_N=np.ones(50, np.float32))
    assert matcher.voted(weaker, 4, 0.82, voters=50, per_keyframe=100).tolist() == [0]
    assert len(matcher.voted(weaker, 4, 0.82, voters=50, per_keyframe=50)) == 0


def test_recovers_a_pose_from_the_keyframes_alone() -> None:
    """No coarse pose: the keyframes the keypoints vote for give the true pose, with the
    matches as the result's correspondences; above the inlier bar it gives none."""
    T_true, keyframes, descriptors = _scene()
    matcher = KeyframeMatcher(_with_strangers(keyframes, 20, seed=6))
    query = _query(T_true, keyframes, descriptors)
    recovery = recover_pose(query, INTRINSICS, matcher, RefinementConfig())
    assert recovery is not None
    assert pose_error(recovery.T_world_cam, T_true)[0] < 0.003
    assert recovery.inliers_M.sum() >= 290
    assert recovery.points2d_M2.shape == (len(recovery.inliers_M), 2)
    assert recovery.points3d_M3.shape == (len(recovery.inliers_M), 3)
    assert recover_pose(query, INTRINSICS, matcher,
                        RefinementConfig(min_recovery_inliers=400)) is None


def test_no_recovery_from_keyframes_the_query_does_not_match() -> None:
    T_true, keyframes, _ = _scene()
    strangers = np.random.default_rng(5).normal(size=(300, 64))
    query = _query(T_true, keyframes, strangers / np.linalg.norm(strangers, axis=1,
                                                                   keepdims=True))
    matcher = KeyframeMatcher(keyframes)
    assert len(matcher.voted(query, 4, 0.82, voters=512, per_keyframe=256)) == 0
    assert recover_pose(query, INTRINSICS, matcher, RefinementConfig()) is None


@pytest.mark.parametrize("bad", [{"keyframes": 0}, {"min_inliers": 3}, {"threshold_px": 0.0},
                                 {"max_translation_m": 0.0}, {"max_rotation_deg": -1.0},
                                 {"rotation_weight_m": -1.0}, {"max_weight_ratio": 0.5},
                                 {"max_view_angle_deg": 0.0}, {"max_view_angle_deg": 190.0},
                                 {"candidates": 3}, {"voters": 0},
                                 {"min_recovery_inliers": 20}, {"max_point_depth_m": -1.0},
                                 {"min_near_inliers": -1}, {"vote_keypoints": 0},
                                 {"polish_sigmas": -1.0}, {"polish_keep_sigmas": 0.0},
                                 {"polish_keep_sigmas": 4.0}])
def test_config_rejects_bad_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"refinement|rotation_weight_m|max_weight_ratio|"
                                         r"max_point_depth_m|max_view_angle_deg|candidates|"
                                         r"min_near_inliers|polish_sigmas"):
        RefinementConfig(**bad)  # type: ignore[arg-type]


def test_matcher_matches_each_keyframe_once_per_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second refinement of the same query (sequence mode) reuses the matches of the
    keyframes it shares with the first; a new query is matched afresh."""
    T_true, keyframes, descriptors = _scene()
    calls: list[int] = []

    def counted(a: NDArray[np.float32], b: NDArray[np.float16], min_similarity: float) -> tuple[
            NDArray[np.int64], NDArray[np.int64]]:
        calls.append(len(b))
        return mutual_nearest_neighbours(a, b, min_similarity)

    monkeypatch.setattr(refinement_module, "mutual_nearest_neighbours", counted)
    matcher = KeyframeMatcher(keyframes)
    query = _query(T_true, keyframes, descriptors)
    first = matcher.matches(query, np.array([0, 1]), 0.82)
    again = matcher.matches(query, np.array([1, 2]), 0.82)
    assert len(calls) == 3  # keyframes 0, 1, then only 2
    np.testing.assert_array_equal(again[0][: len(first[0]) // 2], first[0][len(first[0]) // 2:])
    fresh = matcher.matches(_query(T_true, keyframes, descriptors, seed=2), np.array([1]), 0.82)
    assert len(calls) == 4
    assert len(fresh[0]) == 100


def test_keyframes_are_chosen_by_shared_view_only_when_their_points_are_sensor_depth(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyframe 1 sits at the query's pose but its points lie behind the camera: depth-lifted
    keyframes are chosen by the view the query shares with them (keyframe 0 or 2, which see
    all of theirs), head-point keyframes by pose distance (keyframe 1)."""
    T_true, keyframes, descriptors = _scene()
    points = keyframes.points_N3.copy()
    points[100:200] = transform_points(T_true, np.array([[0.0, 0.0, -3.0]]))
    chosen: list[list[int]] = []
    original = KeyframeMatcher.matches

    def recorded(self: KeyframeMatcher, query: SparseFeatures, keyframes_K: NDArray[np.int64],
                 min_similarity: float,
                 max_depth_m: float = 0.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        chosen.append(keyframes_K.tolist())
        return original(self, query, keyframes_K, min_similarity, max_depth_m)

    monkeypatch.setattr(KeyframeMatcher, "matches", recorded)
    for from_depth in (True, False):
        moved = replace(keyframes, points_N3=points, points_from_depth=from_depth)
        refine_pose(T_true, _query(T_true, moved, descriptors), INTRINSICS,
                    KeyframeMatcher(moved), RefinementConfig(keyframes=1, candidates=3),
                    *NO_PATCHES)
    assert chosen[0] in ([0], [2])
    assert chosen[1] == [1]
