"""Scene head: shapes, scene-centre offset, homogeneous output range, config round trip."""

from __future__ import annotations

import pytest
import torch

from seqace_ros.core.head import HeadConfig, SceneHead


def test_output_shape_and_parameter_count() -> None:
    config = HeadConfig(in_channels=64, width=32, num_blocks=2)
    head = SceneHead(config)
    assert head(torch.randn(10, 64)).shape == (10, 3)
    wide, square = 64 * 32 + 32, 32 * 32 + 32
    block0 = wide + 2 * square + wide  # fc1 64->32, fc2, fc3, skip projection 64->32
    blocks = 2 * 3 * square
    output = 2 * square + (32 * 4 + 4)
    expected = block0 + blocks + output
    assert sum(p.numel() for p in head.parameters()) == expected


def test_zero_output_layer_predicts_the_scene_centre() -> None:
    centre = torch.tensor([1.0, -2.0, 3.0])
    head = SceneHead(HeadConfig(in_channels=8, width=16, num_blocks=0), centre)
    torch.nn.init.zeros_(head.out3.weight)
    torch.nn.init.zeros_(head.out3.bias)
    out = head(torch.randn(4, 8))
    torch.testing.assert_close(out, centre.expand(4, 3))


def test_homogeneous_scale_is_bounded() -> None:
    config = HeadConfig(in_channels=8, width=16, num_blocks=0, homogeneous_min_scale=0.01,
                        homogeneous_max_scale=4.0)
    head = SceneHead(config)
    torch.nn.init.zeros_(head.out3.weight)
    with torch.no_grad():
        head.out3.bias.copy_(torch.tensor([1.0, 0.0, 0.0, -1e4]))  # h -> its minimum 1/4
    assert head(torch.randn(2, 8))[:, 0].tolist() == pytest.approx([4.0, 4.0])
    with torch.no_grad():
        head.out3.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1e4]))  # h clamped at 1/0.01
    assert head(torch.randn(2, 8))[:, 0].tolist() == pytest.approx([0.01, 0.01])


def test_wrong_feature_width_is_rejected() -> None:
    head = SceneHead(HeadConfig(in_channels=8, width=16))
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        head(torch.randn(3, 9))


def test_config_round_trip_and_validation() -> None:
    config = HeadConfig(in_channels=192, width=256, num_blocks=1)
    assert HeadConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="keys"):
        HeadConfig.from_dict({"width": 3})
    with pytest.raises(ValueError, match="width"):
        HeadConfig(width=0)
    with pytest.raises(ValueError, match="homogeneous"):
        HeadConfig(homogeneous_min_scale=5.0, homogeneous_max_scale=4.0)
