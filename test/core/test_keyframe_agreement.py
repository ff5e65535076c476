"""Keyframe depth agreement: measured on keyframes that share points with known errors, the
depth limit it gives, and how refinement's matcher combines it with a fixed limit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from numpy.typing import NDArray

from seqace_ros.core.geometry import make_transform
from seqace_ros.core.keyframe_agreement import (
    DepthAgreement,
    measure_depth_agreement,
    point_depths,
)
from seqace_ros.core.keyframes import Keyframes
from seqace_ros.pipeline.localization.refinement import KeyframeMatcher, RefinementConfig

#: Median distance between two points each off by N(0, sigma^2) per axis: sqrt(2) * sigma times
#: the median of a chi distribution with 3 degrees of freedom.
PAIR_MEDIAN_PER_SIGMA = np.sqrt(2.0) * 1.5382


def _shared_keyframes(error_std_m: NDArray[np.float64] | None, seed: int = 0,
                      count: int = 6, points: int = 3000) -> Keyframes:
    """``count`` keyframes in a row 10 cm apart, all looking along +z at the same ``points``
    points 0.5-4 m deep; each keyframe's copy of a point is off by Gaussian noise of the
    (depth -> per-axis std, metres) function ``error_std_m`` (None: exact), and its descriptor
    is the point's own with a little noise, so that neighbouring keyframes match."""
    rng = np.random.default_rng(seed)
    world_P3 = np.stack([rng.uniform(-1.5, 2.0, points), rng.uniform(-1.0, 1.0, points),
                         rng.uniform(0.5, 4.0, points)], axis=1)
    descriptor_PD = rng.normal(size=(points, 64))
    descriptor_PD /= np.linalg.norm(descriptor_PD, axis=1, keepdims=True)
    poses, descriptors, lifted = [], [], []
    for k in range(count):
        poses.append(make_transform(np.eye(3), [0.1 * k, 0.0, 0.0]))
        noisy = descriptor_PD + rng.normal(scale=0.02, size=descriptor_PD.shape)
        descriptors.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
        std_P = (np.zeros(points) if error_std_m is None
                 else error_std_m(world_P3[:, 2]))  # depth = z for these poses
        lifted.append(world_P3 + rng.normal(size=world_P3.shape) * std_P[:, None])
    return Keyframes(
        T_world_cam_K44=np.stack(poses).astype(np.float32),
        offsets_K1=(points * np.arange(count + 1)).astype(np.int64),
        descriptors_ND=np.concatenate(descriptors).astype(np.float16),
        points_N3=np.concatenate(lifted).astype(np.float32),
        points_from_depth=True,
    )


def _grows_with_depth(depth_m: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-axis error std 4 mm per square metre of depth, like a depth sensor's."""
    return 0.004 * depth_m ** 2


def test_exact_points_agree_at_every_depth() -> None:
    agreement = measure_depth_agreement(_shared_keyframes(None))
    measured = np.isfinite(agreement.median_m)
    assert measured.sum() >= 12  # 0.5-4 m in 0.25 m bins
    assert np.all(agreement.median_m[measured] < 1e-5)
    assert agreement.depth_limit(0.02) == 0.0  # no limit


def test_disagreement_growing_with_depth_gives_the_depth_where_it_reaches_the_bound() -> None:
    """With a per-axis error of 0.004 d^2 the pair median is about 0.0087 d^2 metres: below
    2 cm up to 1.52 m, so the 0.25 m bins pass up to 1.5 m; below 1 cm only up to 1.07 m."""
    agreement = measure_depth_agreement(_shared_keyframes(_grows_with_depth))
    measured = np.flatnonzero(np.isfinite(agreement.median_m))
    centres = (agreement.bin_edges_m[measured] + agreement.bin_edges_m[measured + 1]) / 2
    expected = PAIR_MEDIAN_PER_SIGMA * _grows_with_depth(centres)
    np.testing.assert_allclose(agreement.median_m[measured], expected, rtol=0.15)
    assert agreement.pairs[measured].min() >= 200
    assert agreement.depth_limit(0.02) == 1.5
    assert agreement.depth_limit(0.01) == 1.0
    assert agreement.depth_limit(0.0) == 0.0  # off


@pytest.mark.parametrize(("medians", "limit"), [
    ([np.nan, 0.010, 0.015, 0.025, 0.010], 1.5),  # a far bin passing again does not count
    ([np.nan, 0.030, 0.010, 0.010, 0.010], 1.0),  # nearest measured bin fails: it is kept
    ([np.nan, 0.010, np.nan, 0.025, 0.010], 1.0),  # unmeasured bins are skipped
    ([np.nan, 0.010, 0.015, 0.019, 0.010], 0.0),  # every bin passes: no limit
    ([np.nan] * 5, 0.0),  # nothing measured
])
def test_depth_limit_is_the_far_edge_of_the_nearest_agreeing_bins(medians: list[float],
                                                                    limit: float) -> None:
    agreement = DepthAgreement(np.arange(0.0, 2.51, 0.5), np.array(medians),
                               np.full(5, 1000, dtype=np.int64))
    assert agreement.depth_limit(0.02) == limit


def test_point_depths_are_along_each_keyframes_optical_axis() -> None:
    keyframes = _shared_keyframes(None, count=2, points=50)
    turned = replace(keyframes, T_world_cam_K44=np.stack([
        keyframes.T_world_cam_K44[0],
        make_transform(np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]),
                       [0.0, 0.0, 0.0]).astype(np.float32)]))  # second one looks along +x
    depths = point_depths(turned)
    np.testing.assert_allclose(depths[:50], turned.points_N3[:50, 2], atol=1e-6)
    np.testing.assert_allclose(depths[50:], turned.points_N3[50:, 0], atol=1e-6)


def test_matcher_uses_the_nearer_of_the_measured_and_the_fixed_limit() -> None:
    matcher = KeyframeMatcher(_shared_keyframes(_grows_with_depth))
    assert matcher.depth_limit(RefinementConfig()) == 1.5  # default bound: 2 cm
    assert matcher.depth_limit(RefinementConfig(max_point_depth_m=1.0)) == 1.0
    assert matcher.depth_limit(RefinementConfig(max_point_depth_m=3.0)) == 1.5
    assert matcher.depth_limit(RefinementConfig(max_point_disagreement_m=0.0)) == 0.0
    assert matcher.depth_limit(RefinementConfig(max_point_disagreement_m=0.0,
                                                max_point_depth_m=3.0)) == 3.0


def test_head_points_are_not_limited_by_agreement() -> None:
    """Keyframe points that are the head's predictions (RGB maps) carry no sensor-depth error:
    only a fixed limit applies to them."""
    head_points = replace(_shared_keyframes(_grows_with_depth), points_from_depth=False)
    matcher = KeyframeMatcher(head_points)
    assert matcher.depth_agreement is None
    assert matcher.depth_limit(RefinementConfig()) == 0.0
    assert matcher.depth_limit(RefinementConfig(max_point_depth_m=2.0)) == 2.0
