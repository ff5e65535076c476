"""The scene-specific head: an ACE-style residual MLP regressing scene coordinates.

The head maps one encoder feature (one 8x8 patch) to the 3D point, in the map (world) frame,
that the patch sees. It is a stack of 1x1 convolutions, implemented as ``nn.Linear`` layers on
(N, C) feature rows (the same operation, applied only to the selected patches):

    in -> [Linear(in, W), ReLU, Linear(W, W), ReLU, Linear(W, W), ReLU] + skip(in)   (block 0)
       -> num_blocks x ([Linear(W, W), ReLU] x 3 + identity)                         (blocks)
       -> Linear(W, W), ReLU, Linear(W, W), ReLU, Linear(W, 4)                       (output)

The 4-d output is homogeneous: the last coordinate h goes through a softplus shifted so that
h is in [1 / max_scale, 1 / min_scale] with h = 1 for a raw zero, and the point is
(x, y, z) / h + scene_centre. The division lets the head reach far points without huge
weights; the scene centre (mean mapping camera position) makes the regressed offsets small.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class HeadConfig:
    """Architecture of a scene head; stored in the map file.

    Attributes:
        in_channels: encoder feature dimension C.
        width: hidden width W of every layer.
        num_blocks: residual blocks after the first one (ACE uses 1 at width 512).
        homogeneous_min_scale: smallest 1/h (metres per raw unit), > 0.
        homogeneous_max_scale: largest 1/h, > homogeneous_min_scale.
    """

    in_channels: int = 192
    width: int = 256
    num_blocks: int = 1
    homogeneous_min_scale: float = 0.01
    homogeneous_max_scale: float = 4.0

    def __post_init__(self) -> None:
        if self.in_channels <= 0 or self.width <= 0 or self.num_blocks < 0:
            raise ValueError(
                "head needs in_channels > 0, width > 0, num_blocks >= 0; got "
                f"{self.in_channels}, {self.width}, {self.num_blocks}")
        if not 0.0 < self.homogeneous_min_scale < self.homogeneous_max_scale:
            raise ValueError(
                "head needs 0 < homogeneous_min_scale < homogeneous_max_scale, got "
                f"{self.homogeneous_min_scale}, {self.homogeneous_max_scale}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadConfig:
        """Config from :meth:`to_dict` output.

        Raises:
            ValueError: on a ``data`` that is not a dict, missing or unknown keys, a value of
                the wrong type (an integer field given a float, string or bool; a scale that is
                not a finite number), or values the config rejects.
        """
        if not isinstance(data, dict):
            raise ValueError(f"head config must be an object, got {type(data).__name__}")
        expected = set(cls.__dataclass_fields__)
        if set(data) != expected:
            raise ValueError(f"head config keys must be {sorted(expected)}, got {sorted(data)}")
        for name in ("in_channels", "width", "num_blocks"):
            if type(data[name]) is not int:
                raise ValueError(f"head config {name} must be an integer, got {data[name]!r}")
        for name in ("homogeneous_min_scale", "homogeneous_max_scale"):
            value = data[name]
            if type(value) not in (int, float) or not math.isfinite(value):
                raise ValueError(f"head config {name} must be a finite number, got {value!r}")
        return cls(
            in_channels=data["in_channels"],
            width=data["width"],
            num_blocks=data["num_blocks"],
            homogeneous_min_scale=float(data["homogeneous_min_scale"]),
            homogeneous_max_scale=float(data["homogeneous_max_scale"]))


class _ResidualBlock(nn.Module):
    """Three Linear + ReLU layers with a skip connection (projected when widths differ)."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_channels, width)
        self.fc2 = nn.Linear(width, width)
        self.fc3 = nn.Linear(width, width)
        self.skip = nn.Identity() if in_channels == width else nn.Linear(in_channels, width)

    def forward(self, x_NC: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.fc1(x_NC))
        y = F.relu(self.fc2(y))
        y = F.relu(self.fc3(y))
        return self.skip(x_NC) + y


class SceneHead(nn.Module):
    """Residual MLP from features (N, C) to scene coordinates (N, 3) in the map frame (metres).

    Args:
        config: architecture.
        scene_centre_3: (3,) map-frame point added to every prediction (metres).
    """

    def __init__(self, config: HeadConfig, scene_centre_3: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        blocks = [_ResidualBlock(config.in_channels, config.width)]
        blocks += [_ResidualBlock(config.width, config.width) for _ in range(config.num_blocks)]
        self.blocks = nn.Sequential(*blocks)
        self.out1 = nn.Linear(config.width, config.width)
        self.out2 = nn.Linear(config.width, config.width)
        self.out3 = nn.Linear(config.width, 4)
        centre = torch.zeros(3) if scene_centre_3 is None else scene_centre_3.float().reshape(3)
        self.register_buffer("scene_centre", centre.clone())
        self._min_inv_scale = 1.0 / config.homogeneous_max_scale
        self._max_inv_scale = 1.0 / config.homogeneous_min_scale
        # softplus(0, beta) + min_inv = 1  <=>  log(2) / beta = 1 - min_inv
        self._beta = math.log(2.0) / (1.0 - self._min_inv_scale)

    def forward(self, features_NC: torch.Tensor) -> torch.Tensor:
        """Scene coordinates (N, 3), metres in the map frame, of features (N, C)."""
        if features_NC.ndim != 2 or features_NC.shape[1] != self.config.in_channels:
            raise ValueError(
                f"head expects features of shape (N, {self.config.in_channels}), "
                f"got {tuple(features_NC.shape)}")
        x = self.blocks(features_NC)
        x = F.relu(self.out1(x))
        x = F.relu(self.out2(x))
        # The output layer runs in fp32 even under autocast: bf16/fp16 rounding of metre-scale
        # outputs (about 0.4 % in bf16) would be a centimetre-level error floor.
        with torch.autocast(device_type=x.device.type, enabled=False):
            out_N4 = self.out3(x.float())
        h_N1 = F.softplus(out_N4[:, 3:], beta=self._beta) + self._min_inv_scale
        h_N1 = h_N1.clamp(max=self._max_inv_scale)
        return out_N4[:, :3] / h_N1 + self.scene_centre
