"""Salient patch selection on the encoder's 1/8 grid, patch-centre pixel coordinates, and the
maximum filter behind non-maximum suppression (here and in sparse keypoint detection).

SeqACE regresses scene coordinates only for salient patches: the top-K cells of the keypoint
score map after non-maximum suppression. A patch at grid cell (row, col) is centred at pixel
``(stride * col + (stride - 1) / 2, stride * row + (stride - 1) / 2)`` of the network input
(3.5 px for stride 8), mapped back to the original image with the pixel-centre convention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def window_maximum(map_HW: torch.Tensor, window: int) -> torch.Tensor:
    """The maximum of ``map_HW`` (H, W) over the ``window`` x ``window`` square (odd side)
    centred on each pixel, edges padded: equal to ``max_pool2d(map, window, 1, window // 2)``.

    Computed as two 1-D maximum filters (rows, then columns): the maximum over a square is
    separable, and torch's 1-D pooling on CPU is far faster than its 2-D pooling (which was
    the largest cost of XFeat keypoint detection on a full-resolution heatmap).
    """
    pad = window // 2
    along_rows_HW = F.max_pool1d(map_HW, window, stride=1, padding=pad)
    return F.max_pool1d(along_rows_HW.T.contiguous(), window, stride=1, padding=pad).T


def select_salient_cells(scores_HW: torch.Tensor, top_k: int, nms_radius: int = 1) -> torch.Tensor:
    """Flat indices (K,) of the top-``top_k`` cells that are local maxima of ``scores_HW``.

    A cell survives non-maximum suppression when it equals the maximum of its
    (2 * nms_radius + 1)^2 neighbourhood. When fewer than ``top_k`` cells survive, the
    best suppressed cells fill up the rest, so the result has ``min(top_k, H * W)`` cells,
    ordered by decreasing priority (surviving maxima first, by score).

    Args:
        scores_HW: (H, W) float keypoint scores.
        top_k: number of cells wanted (> 0).
        nms_radius: suppression radius in cells (0 disables suppression).
    """
    if scores_HW.ndim != 2:
        raise ValueError(f"scores must have shape (H, W), got {tuple(scores_HW.shape)}")
    if top_k <= 0:
        raise ValueError(f"top_k must be positive, got {top_k}")
    if nms_radius < 0:
        raise ValueError(f"nms_radius must be >= 0, got {nms_radius}")
    scores = scores_HW.float()
    if nms_radius > 0:
        is_max = scores >= window_maximum(scores, 2 * nms_radius + 1)
    else:
        is_max = torch.ones_like(scores, dtype=torch.bool)
    # Surviving maxima rank above every suppressed cell: scores are in [0, 1].
    priority = scores.flatten() + is_max.flatten().float() * 2.0
    k = min(top_k, priority.numel())
    return torch.topk(priority, k, sorted=True).indices


def cell_centres_px(
    indices_K: torch.Tensor,
    grid_width: int,
    stride: int,
    scale_x: float = 1.0,
    scale_y: float = 1.0,
) -> torch.Tensor:
    """Pixel centres (K, 2) as (u, v) of the patches with flat grid indices ``indices_K``.

    Args:
        indices_K: flat indices into a (H/stride, W/stride) grid of width ``grid_width``.
        grid_width: number of grid columns.
        stride: patch size in network-input pixels.
        scale_x: original image width / network input width.
        scale_y: original image height / network input height.

    Returns:
        (K, 2) float32 pixel coordinates in the original image (pixel-centre convention).
    """
    rows = torch.div(indices_K, grid_width, rounding_mode="floor")
    cols = indices_K - rows * grid_width
    half = (stride - 1) / 2.0
    u = (cols.float() * stride + half + 0.5) * scale_x - 0.5
    v = (rows.float() * stride + half + 0.5) * scale_y - 0.5
    return torch.stack([u, v], dim=1)
