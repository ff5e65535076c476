"""Salient cell selection (NMS + top-K on the 1/8 grid) and patch-centre pixels."""

from __future__ import annotations

import pytest
import torch

from seqace_ros.core.keypoints import cell_centres_px, select_salient_cells, window_maximum


def test_nms_keeps_local_maxima_first() -> None:
    scores = torch.zeros(5, 5)
    scores[1, 1] = 0.9
    scores[1, 2] = 0.8  # suppressed by its neighbour (1, 1)
    scores[3, 4] = 0.5
    picked = select_salient_cells(scores, top_k=2, nms_radius=1)
    assert picked.tolist() == [1 * 5 + 1, 3 * 5 + 4]


def test_suppressed_cells_fill_up_to_top_k() -> None:
    scores = torch.rand(6, 7, generator=torch.Generator().manual_seed(0))
    picked = select_salient_cells(scores, top_k=42, nms_radius=1)
    assert picked.numel() == 42
    assert len(set(picked.tolist())) == 42
    assert select_salient_cells(scores, top_k=100).numel() == 42


def test_no_nms_is_plain_top_k() -> None:
    scores = torch.rand(4, 4, generator=torch.Generator().manual_seed(1))
    picked = select_salient_cells(scores, top_k=5, nms_radius=0)
    assert picked.tolist() == torch.topk(scores.flatten(), 5).indices.tolist()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="top_k"):
        select_salient_cells(torch.zeros(3, 3), top_k=0)
    with pytest.raises(ValueError, match="shape"):
        select_salient_cells(torch.zeros(3), top_k=1)


def test_cell_centres() -> None:
    indices = torch.tensor([0, 1, 80])  # grid width 80: (row 0, col 0), (0, 1), (1, 0)
    uv = cell_centres_px(indices, grid_width=80, stride=8)
    assert uv.tolist() == [[3.5, 3.5], [11.5, 3.5], [3.5, 11.5]]
    # network image at half the original size: centre 3.5 -> (3.5 + 0.5) * 2 - 0.5
    uv2 = cell_centres_px(indices[:1], grid_width=80, stride=8, scale_x=2.0, scale_y=2.0)
    assert uv2.tolist() == [[7.5, 7.5]]


@pytest.mark.parametrize(("height", "width", "window"), [(480, 640, 5), (37, 53, 5), (9, 4, 3),
                                                       (3, 2, 7)])
def test_window_maximum_equals_two_dimensional_max_pooling(height: int, width: int,
                                                           window: int) -> None:
    """The separable maximum filter is exactly the 2-D pooling NMS used to compute, ties
    (integer-valued maps) and borders included."""
    generator = torch.Generator().manual_seed(height * width)
    for map_HW in (torch.rand(height, width, generator=generator),
                   torch.randint(0, 4, (height, width), generator=generator).float()):
        expected = torch.nn.functional.max_pool2d(map_HW[None, None], window, stride=1,
                                                  padding=window // 2)[0, 0]
        assert torch.equal(window_maximum(map_HW, window), expected)
