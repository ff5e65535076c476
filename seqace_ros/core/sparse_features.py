"""Sparse keypoints and descriptors from one XFeat pass, and mutual-nearest-neighbour matching.

XFeat's keypoint head scores, for every 8x8 cell, which of its 64 pixels holds a keypoint (a
65-way softmax whose last class means "none"). Unfolding the 64 pixel probabilities gives a
full-resolution heatmap; its local maxima (5x5 non-maximum suppression) above a threshold are
the keypoints, ranked by heatmap value times the reliability map; descriptors are the 64-d
dense descriptor map sampled (bicubic) at the keypoints and L2-normalised. This is the
detector of XFeat's ``detectAndCompute``, computed from the encoder's own forward pass, so
localization gets keypoints without a second network pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from seqace_ros.core.keypoints import window_maximum

#: Minimum heatmap value of a keypoint (XFeat's default detection threshold).
DETECTION_THRESHOLD = 0.05
#: Side of the non-maximum suppression window, in network-input pixels.
NMS_WINDOW = 5


@dataclass(frozen=True)
class SparseFeatures:
    """Sparse local features of one image.

    Attributes:
        keypoints_N2: (N, 2) float32 keypoint pixels (u, v) in the original image,
            pixel-centre convention (as :func:`~seqace_ros.core.keypoints.cell_centres_px`).
        descriptors_ND: (N, 64) float32 L2-normalised descriptors.
        scores_N: (N,) float32 detection scores, descending.
    """

    keypoints_N2: NDArray[np.float32]
    descriptors_ND: NDArray[np.float32]
    scores_N: NDArray[np.float32]


def sample_at_pixels(map_CHW: torch.Tensor, pixels_N2: torch.Tensor, size_hw: tuple[int, int],
                     mode: str) -> torch.Tensor:
    """``map_CHW`` (C, h, w), covering an image of ``size_hw`` = (H, W) pixels, sampled
    (``mode``: ``bilinear`` or ``bicubic``) at the pixels ``pixels_N2`` (u, v, pixel-centre
    convention): (N, C)."""
    height, width = size_hw
    grid = torch.stack([(2.0 * pixels_N2[:, 0] + 1.0) / width - 1.0,
                        (2.0 * pixels_N2[:, 1] + 1.0) / height - 1.0], dim=1)
    sampled = F.grid_sample(map_CHW[None], grid[None, None].to(map_CHW.dtype), mode=mode,
                            align_corners=False)
    return sampled[0, :, 0].T


def detect_sparse(
    keypoint_logits_65hw: torch.Tensor, reliability_hw: torch.Tensor,
    descriptors_Dhw: torch.Tensor, num_keypoints: int, scale_x: float = 1.0,
    scale_y: float = 1.0,
) -> SparseFeatures:
    """The best ``num_keypoints`` keypoints of one image and their descriptors.

    Args:
        keypoint_logits_65hw: (65, h, w) keypoint-head logits, one 8x8 cell per position
            (channel ``8 * dy + dx`` is pixel (dx, dy) of the cell, channel 64 "no keypoint").
        reliability_hw: (h, w) reliability in [0, 1].
        descriptors_Dhw: (D, h, w) dense descriptors (normalised here).
        num_keypoints: keypoints kept (fewer when the image has fewer local maxima).
        scale_x: original image width / network input width (``8 w``).
        scale_y: original image height / network input height (``8 h``).

    Raises:
        ValueError: when ``num_keypoints`` < 1.
    """
    if num_keypoints < 1:
        raise ValueError(f"num_keypoints must be >= 1, got {num_keypoints}")
    _, h, w = keypoint_logits_65hw.shape
    size_hw = (8 * h, 8 * w)
    probabilities_64hw = torch.softmax(keypoint_logits_65hw.float(), dim=0)[:64]
    heat_HW = F.pixel_shuffle(probabilities_64hw[None], 8)[0, 0]
    candidates = (heat_HW == window_maximum(heat_HW, NMS_WINDOW)) & (heat_HW > DETECTION_THRESHOLD)
    rows, cols = candidates.nonzero(as_tuple=True)
    pixels_N2 = torch.stack([cols, rows], dim=1).float()
    reliability_N = sample_at_pixels(reliability_hw.float()[None], pixels_N2, size_hw,
                                     "bilinear")[:, 0]
    scores_N = heat_HW[rows, cols] * reliability_N
    order = torch.argsort(scores_N, descending=True)[:num_keypoints]
    pixels_N2, scores_N = pixels_N2[order], scores_N[order]
    descriptors_ND = F.normalize(
        sample_at_pixels(F.normalize(descriptors_Dhw.float(), dim=0), pixels_N2, size_hw,
                         "bicubic"), dim=1)
    scale = torch.tensor([scale_x, scale_y])
    keypoints_N2 = (pixels_N2 + 0.5) * scale - 0.5
    return SparseFeatures(keypoints_N2=keypoints_N2.cpu().numpy().astype(np.float32),
                          descriptors_ND=descriptors_ND.cpu().numpy().astype(np.float32),
                          scores_N=scores_N.cpu().numpy().astype(np.float32))


def mutual_nearest_neighbours(
    descriptors_a_ND: NDArray[np.floating], descriptors_b_MD: NDArray[np.floating],
    min_similarity: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Mutual nearest neighbours by cosine similarity of L2-normalised descriptors.

    Args:
        descriptors_a_ND: (N, D) descriptors of image a.
        descriptors_b_MD: (M, D) descriptors of image b.
        min_similarity: keep pairs whose cosine similarity exceeds this.

    Returns:
        (K,) indices into a and (K,) indices into b of the matched pairs.

    The products run in torch, on the thread pool the encoder uses: numpy's BLAS keeps its own
    threads spinning after a product, and on a 2-core machine they took the cores from the
    next frame's encoder.
    """
    if len(descriptors_a_ND) == 0 or len(descriptors_b_MD) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    a_ND = torch.from_numpy(np.ascontiguousarray(descriptors_a_ND, np.float32))
    b_MD = torch.from_numpy(np.ascontiguousarray(descriptors_b_MD, np.float32))
    similarity_NM = a_ND @ b_MD.T
    best_similarity_N, best_b_N = similarity_NM.max(dim=1)
    best_a_M = similarity_NM.argmax(dim=0)
    index_a = torch.arange(len(best_b_N))
    keep = (best_a_M[best_b_N] == index_a) & (best_similarity_N > min_similarity)
    return index_a[keep].numpy().astype(np.int64), best_b_N[keep].numpy().astype(np.int64)
