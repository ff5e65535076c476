"""Decoding of Image and CompressedImage payloads (shared by the bag reader and the node)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seqace_ros.core.image_decoding import (
    ImageDecodingError,
    decode_compressed_image,
    decode_raw_image,
)

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def padded(pixels: np.ndarray, pad: int) -> tuple[bytes, int]:
    rows = pixels.reshape(pixels.shape[0], -1)
    step = rows.shape[1] + pad
    out = np.zeros((rows.shape[0], step), dtype=np.uint8)
    out[:, : rows.shape[1]] = rows
    return out.tobytes(), step


@pytest.mark.parametrize(
    ("encoding", "pixels"),
    [
        ("rgb8", RGB),
        ("bgr8", RGB[:, :, ::-1]),
        ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)])),
        ("bgra8", np.dstack([RGB[:, :, ::-1], np.full(RGB.shape[:2], 9, np.uint8)])),
    ],
)
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_decode_bit_exact(encoding: str, pixels: np.ndarray, pad: int) -> None:
    data, step = padded(np.ascontiguousarray(pixels), pad)
    decoded = decode_raw_image(encoding, 5, 7, step, data)
    np.testing.assert_array_equal(decoded, RGB)


def test_mono_encodings() -> None:
    mono = RGB[:, :, 0]
    data, step = padded(mono, 1)
    decoded = decode_raw_image("mono8", 5, 7, step, data)
    np.testing.assert_array_equal(decoded, np.dstack([mono] * 3))
    mono16 = mono.astype(np.uint16) * 100  # max 25500 -> scaled to 255
    for bigendian in (False, True):
        raw = mono16.astype(">u2" if bigendian else "<u2").tobytes()
        decoded16 = decode_raw_image("mono16", 5, 7, 14, raw, is_bigendian=bigendian)
        expected = np.rint(mono16 * (255.0 / mono16.max())).astype(np.uint8)
        np.testing.assert_array_equal(decoded16[:, :, 1], expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("yuv422", 5, 7, 14, bytes(70)), "unsupported image encoding 'yuv422'"),
        (("rgb8", 5, 7, 20, bytes(100)), r"needs step >= 21 bytes, got 20"),
        (("rgb8", 5, 7, 21, bytes(104)), r"needs 105 bytes, got 104"),
        (("mono8", 0, 7, 7, b""), "must be positive"),
    ],
)
def test_inconsistent_raw_images_raise(args: tuple, message: str) -> None:
    with pytest.raises(ImageDecodingError, match=message):
        decode_raw_image(*args)


def test_compressed_png_is_exact_and_jpeg_close() -> None:
    smooth = cv2.resize(RGB, (64, 48), interpolation=cv2.INTER_CUBIC)
    bgr = cv2.cvtColor(smooth, cv2.COLOR_RGB2BGR)
    png = cv2.imencode(".png", bgr)[1].tobytes()
    np.testing.assert_array_equal(decode_compressed_image("png", png), smooth)
    jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    error = np.abs(decode_compressed_image("jpeg", jpeg).astype(int) - smooth.astype(int))
    assert error.mean() < 4.0
    with pytest.raises(ImageDecodingError, match="cannot decode compressed image"):
        decode_compressed_image("jpeg", b"not an image at all")
    with pytest.raises(ImageDecodingError, match="has no data"):
        decode_compressed_image("jpeg", b"")


def test_depth_payloads_decode_to_metres_with_padding_and_byte_order() -> None:
    from seqace_ros.core.image_decoding import decode_depth_image

    millimetres = np.array([[1500, 0, 2], [65535, 7, 1000]], dtype=">u2")
    padded = np.zeros((2, 8), np.uint8)  # 6 bytes of pixels + 2 of padding per row
    padded[:, :6] = millimetres.view(np.uint8).reshape(2, 6)
    metres = decode_depth_image("16UC1", 2, 3, 8, padded.tobytes(), is_bigendian=True)
    np.testing.assert_allclose(metres, [[1.5, 0.0, 0.002], [65.535, 0.007, 1.0]], rtol=1e-6)
    floats = np.array([[1.25, np.nan, -1.0]], dtype="<f4")
    assert decode_depth_image("32FC1", 1, 3, 12, floats.tobytes()).tolist() == [[1.25, 0.0, 0.0]]
    with pytest.raises(ImageDecodingError, match="unsupported depth encoding 'bgr8'"):
        decode_depth_image("bgr8", 1, 1, 3, bytes(3))
    with pytest.raises(ImageDecodingError, match="needs 24 bytes"):
        decode_depth_image("32FC1", 2, 3, 12, bytes(20))
