"""How well a map's keyframes agree on the 3D of the keypoints they share, by depth.

Two keyframes that see the same surface each lift the keypoint there to 3D on their own (with
their depth image and their mapping pose). The distance between the two points of a mutual
nearest-neighbour match is what a query matched to either would inherit as error. With exact
depth and poses it stays at the keypoints' own localization error; with a depth sensor and
tracked mapping poses it grows with depth (depth noise and bias, depth-to-colour registration,
the pose's rotation error moving far points more), and from the depth where it exceeds the
precision a refined pose should have, a keyframe point costs more than it brings (measured:
README, Benchmarks, keyframe point depth). :func:`measure_depth_agreement` tabulates the median
distance per depth bin; :meth:`DepthAgreement.depth_limit` turns it into the depth up to which
points are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.keyframes import Keyframes, pose_distances
from seqace_ros.core.sparse_features import mutual_nearest_neighbours


@dataclass(frozen=True)
class DepthAgreement:
    """Median distance between two keyframes' 3D points of the same keypoint, per depth bin.

    Attributes:
        bin_edges_m: (B + 1,) increasing depth bin edges, metres: a pair falls in the bin of
            the deeper of its two points (depth along its own keyframe's optical axis).
        median_m: (B,) median distance (metres) of the pairs in each bin; NaN where fewer
            than ``min_pairs`` of :func:`measure_depth_agreement` fell.
        pairs: (B,) pairs counted in each bin.
    """

    bin_edges_m: NDArray[np.float64]
    median_m: NDArray[np.float64]
    pairs: NDArray[np.int64]

    def depth_limit(self, max_disagreement_m: float) -> float:
        """Depth (metres) up to which keyframe points are used: the far edge of the nearest
        run of bins whose median distance is below ``max_disagreement_m``, or of the nearest
        measured bin when even that one is not (refinement keeps its nearest points); 0 (no
        limit) when no measured bin reaches it, when nothing was measured, or for
        ``max_disagreement_m`` 0 (off)."""
        if max_disagreement_m <= 0:
            return 0.0
        measured = np.flatnonzero(np.isfinite(self.median_m))
        failing = measured[self.median_m[measured] >= max_disagreement_m]
        if not len(failing):
            return 0.0
        passing = measured[measured < failing[0]]
        last = passing[-1] if len(passing) else failing[0]
        return float(self.bin_edges_m[last + 1])


def point_depths(keyframes: Keyframes) -> NDArray[np.float64]:
    """(N,) depth of each keyframe point along its own keyframe's optical axis, metres."""
    depths_N = np.zeros(len(keyframes.points_N3))
    for k in range(keyframes.count):
        rows, T = keyframes.rows(k), keyframes.T_world_cam_K44[k].astype(np.float64)
        depths_N[rows] = (keyframes.points_N3[rows] - T[:3, 3]) @ T[:3, 2]
    return depths_N


def measure_depth_agreement(
    keyframes: Keyframes, neighbours: int = 2, min_similarity: float = 0.82,
    bin_m: float = 0.25, max_distance_m: float = 0.2, min_pairs: int = 200,
    rotation_weight_m: float = 0.5,
) -> DepthAgreement:
    """The :class:`DepthAgreement` of ``keyframes``: each keyframe's points are matched
    (mutual nearest neighbours above ``min_similarity``, refinement's matching, times the
    keyframes' ``similarity_scale`` once for each stored side) with those of
    its ``neighbours`` nearest keyframes (:func:`~seqace_ros.core.keyframes.pose_distances`;
    each pair of keyframes once);
    pairs farther apart than ``max_distance_m`` are wrong matches, not disagreement, and are
    left out; bins are ``bin_m`` deep; bins with fewer than ``min_pairs`` pairs stay NaN."""
    depths_N = point_depths(keyframes)
    T_K44 = keyframes.T_world_cam_K44.astype(np.float64)
    points_N3 = keyframes.points_N3.astype(np.float64)
    neighbour_pairs = set()  # unordered: mutual matching is symmetric, match each pair once
    for k in range(keyframes.count):
        order = np.argsort(pose_distances(T_K44, T_K44[k], rotation_weight_m), kind="stable")
        neighbour_pairs.update((min(k, int(j)), max(k, int(j)))
                               for j in order[order != k][:neighbours])
    deeper, distances = [np.zeros(0)], [np.zeros(0)]
    for k, j in sorted(neighbour_pairs):
        rows_a, rows_b = keyframes.rows(k), keyframes.rows(j)
        index_a, index_b = mutual_nearest_neighbours(
            keyframes.descriptors_ND[rows_a], keyframes.descriptors_ND[rows_b],
            min_similarity * keyframes.similarity_scale ** 2)
        a, b = index_a + rows_a.start, index_b + rows_b.start
        deeper.append(np.maximum(depths_N[a], depths_N[b]))
        distances.append(np.linalg.norm(points_N3[a] - points_N3[b], axis=1))
    depth_P, distance_P = np.concatenate(deeper), np.concatenate(distances)
    matched = distance_P < max_distance_m
    depth_P, distance_P = depth_P[matched], distance_P[matched]
    top = max(float(depth_P.max()) if len(depth_P) else 0.0, bin_m)
    edges_B1 = np.arange(0.0, top + bin_m, bin_m)
    bin_P = np.clip(np.digitize(depth_P, edges_B1) - 1, 0, len(edges_B1) - 2)
    pairs_B = np.bincount(bin_P, minlength=len(edges_B1) - 1).astype(np.int64)
    median_B = np.full(len(pairs_B), np.nan)
    for b in np.flatnonzero(pairs_B >= min_pairs):
        median_B[b] = float(np.median(distance_P[bin_P == b]))
    return DepthAgreement(edges_B1, median_B, pairs_B)
