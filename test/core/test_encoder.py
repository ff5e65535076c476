"""XFeat encoder: shapes at 1/8 resolution, scores in [0, 1], ids and weight hash, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqace_ros.core.encoder import EncoderError, XFeatEncoder, create_encoder, xfeat_weights_path


@pytest.fixture(scope="module")
def encoder() -> XFeatEncoder:
    return XFeatEncoder(features="multiscale", image_height=480, device="cpu")


def textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 8, width // 8, 3), dtype=np.uint8)
    return np.kron(small, np.ones((8, 8, 1), dtype=np.uint8))


def test_shapes_at_default_height(encoder: XFeatEncoder) -> None:
    output = encoder.encode(textured_image(480, 640))
    assert output.features_CHW.shape == (192, 60, 80)
    assert output.scores_HW.shape == (60, 80)
    assert (output.input_width, output.input_height) == (640, 480)
    assert output.features_CHW.dtype == torch.float32
    assert float(output.scores_HW.min()) >= 0.0
    assert float(output.scores_HW.max()) <= 1.0


def test_resizes_to_configured_height_keeping_aspect(encoder: XFeatEncoder) -> None:
    output = encoder.encode(textured_image(240, 320))
    assert (output.input_width, output.input_height) == (640, 480)
    assert encoder.network_size(1280, 720) == (864, 480)  # 853.3 rounded to 32
    assert encoder.network_size(640, 480, network_height=320) == (416, 320)


def test_descriptor_variant_and_ids() -> None:
    descriptor = XFeatEncoder(features="descriptor", image_height=256, device="cpu")
    output = descriptor.encode(textured_image(256, 320))
    assert output.features_CHW.shape == (64, 32, 40)
    assert descriptor.encoder_id == "xfeat-desc64"
    assert create_encoder("xfeat-ms192", 256, "cpu").encoder_id == "xfeat-ms192"
    assert len(descriptor.weight_hash) == 64
    assert xfeat_weights_path().is_file()


def test_deterministic(encoder: XFeatEncoder) -> None:
    image = textured_image(480, 640, seed=3)
    a, b = encoder.encode(image), encoder.encode(image)
    assert torch.equal(a.features_CHW, b.features_CHW)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((480, 640), dtype=np.uint8), "shape"),
        (np.zeros((480, 640, 3), dtype=np.float32), "uint8"),
        (np.zeros((16, 640, 3), dtype=np.uint8), "32x32"),
    ],
)
def test_bad_images_are_rejected(encoder: XFeatEncoder, image: np.ndarray, match: str) -> None:
    with pytest.raises(EncoderError, match=match):
        encoder.encode(image)


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        XFeatEncoder(image_height=470, device="cpu")
    with pytest.raises(ValueError, match="unknown encoder"):
        create_encoder("ace-resnet")


def test_create_encoder_shares_one_network_per_id_height_and_device() -> None:
    first = create_encoder("xfeat-ms192", 256, "cpu")
    assert create_encoder("xfeat-ms192", 256, torch.device("cpu")) is first
    assert create_encoder("xfeat-ms192", 480, "cpu") is not first
    assert create_encoder("xfeat-desc64", 256, "cpu") is not first
