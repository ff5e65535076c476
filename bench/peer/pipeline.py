"""The peer localizer: query image -> retrieval -> XFeat matching -> poselib RANSAC PnP.

For a query: XFeat sparse features; its VLAD; the ``top_k_frames`` mapping frames with the
most similar VLADs; mutual-nearest-neighbour matches against each of them; every match to a
mapping keypoint with a 3D point gives a 2D-3D correspondence (a query keypoint may get one
per retrieved frame: RANSAC sorts them out); ``poselib.estimate_absolute_pose`` (LO-RANSAC
with P3P, then bundle adjustment) gives the pose. It has the ``localize`` interface of
seqace's localizers and returns their :class:`LocalizationResult`, so the same evaluation
code scores both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import poselib
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import invert_transform, make_transform
from seqace_ros.core.sparse_features import mutual_nearest_neighbours
from seqace_ros.pipeline.localization.single import LocalizationResult

from .database import PeerDatabase
from .matching import XFeatSparse
from .retrieval import nearest_frames, vlad


@dataclass(frozen=True)
class PeerConfig:
    """Query-time settings.

    Attributes:
        num_keypoints: XFeat keypoints per query image.
        top_k_frames: mapping frames retrieved per query.
        min_similarity: minimum descriptor cosine similarity of a match.
        threshold_px: RANSAC inlier threshold (reprojection error, pixels).
        min_inliers: fewer inliers than this is a failure.
        seed: RANSAC seed.
    """

    num_keypoints: int = 2048
    top_k_frames: int = 3
    min_similarity: float = 0.82
    threshold_px: float = 8.0
    min_inliers: int = 12
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_keypoints < 4 or self.top_k_frames < 1 or self.min_inliers < 4:
            raise ValueError("need num_keypoints >= 4, top_k_frames >= 1, min_inliers >= 4; got "
                             f"{self.num_keypoints}, {self.top_k_frames}, {self.min_inliers}")
        if self.threshold_px <= 0:
            raise ValueError(f"threshold_px must be positive, got {self.threshold_px}")


class PeerLocalizer:
    """Retrieval + matching + PnP against a :class:`PeerDatabase`.

    Args:
        database: the mapping frames.
        extractor: the XFeat network (shared with the database build).
        config: query-time settings.
    """

    def __init__(self, database: PeerDatabase, extractor: XFeatSparse,
                 config: PeerConfig | None = None) -> None:
        self.database = database
        self.extractor = extractor
        self.config = config or PeerConfig()

    def correspondences(
        self, keypoints_N2: NDArray[np.float32], descriptors_ND: NDArray[np.float32],
        frames_K: NDArray[np.int64],
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """2D query pixels (C, 2) and 3D world points (C, 3) matched in mapping frames
        ``frames_K`` (positions in the database)."""
        db = self.database
        points2d, points3d = [], []
        for m in frames_K:
            rows = db.frame_slice(int(m))
            index_q, index_db = mutual_nearest_neighbours(
                descriptors_ND, db.descriptors_ND[rows], self.config.min_similarity)
            lifted = db.valid_N[rows][index_db]
            points2d.append(keypoints_N2[index_q[lifted]])
            points3d.append(db.points_world_N3[rows][index_db[lifted]])
        return (np.concatenate(points2d).astype(np.float64),
                np.concatenate(points3d).astype(np.float64))

    def localize(self, image_rgb: NDArray[np.uint8], intrinsics: Intrinsics) -> LocalizationResult:
        """Pose of the camera that took ``image_rgb``; timings ``extract``, ``retrieval``,
        ``matching``, ``pnp`` and ``total`` in milliseconds."""
        start = time.perf_counter()
        features = self.extractor.detect(image_rgb, self.config.num_keypoints)
        extracted = time.perf_counter()
        frames_K, _ = nearest_frames(vlad(features.descriptors_ND, self.database.codebook_KD),
                                     self.database.global_MG, self.config.top_k_frames)
        retrieved = time.perf_counter()
        points2d_C2, points3d_C3 = self.correspondences(
            features.keypoints_N2, features.descriptors_ND, frames_K)
        matched = time.perf_counter()
        T_world_cam, inliers_C = None, np.zeros(len(points2d_C2), dtype=bool)
        if len(points2d_C2) >= 4:
            camera = {"model": "PINHOLE", "width": intrinsics.width,
                      "height": intrinsics.height, "params": list(intrinsics.as_tuple)}
            pose, info = poselib.estimate_absolute_pose(
                points2d_C2, points3d_C3, camera,
                {"max_reproj_error": self.config.threshold_px, "seed": self.config.seed}, {})
            inliers_C = np.asarray(info["inliers"], dtype=bool)
            T_world_cam = invert_transform(make_transform(pose.R, pose.t))
        solved = time.perf_counter()
        timings_ms = {"extract": 1000 * (extracted - start),
                      "retrieval": 1000 * (retrieved - extracted),
                      "matching": 1000 * (matched - retrieved), "pnp": 1000 * (solved - matched),
                      "total": 1000 * (solved - start)}
        return LocalizationResult.from_inliers(T_world_cam, points2d_C2, points3d_C3, inliers_C,
                                               timings_ms, self.config.min_inliers)
