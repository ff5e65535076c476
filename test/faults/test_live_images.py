"""Hostile image payloads: refused with the reason before anything of their size is allocated.

Issue 16, "Live node": a PNG that decompresses to 12000 x 12000 (and a JPEG declaring as
much), raw images over the pixel cap, and encodings that are not colour or mono intensity
(16UC1 depth and other generic types, compressed depth) on the image topic.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from seqace_ros.core.camera import DEFAULT_MAX_IMAGE_PIXELS
from seqace_ros.core.image_decoding import (
    ImageDecodingError,
    compressed_image_size,
    decode_compressed_image,
    decode_raw_image,
)

BOMB_SIDE = 12000


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload)))


def png_of_zeros(width: int, height: int) -> bytes:
    """A valid 8-bit grey PNG of zeros, compressed row by row (never held decoded)."""
    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def png_bomb() -> bytes:
    return png_of_zeros(BOMB_SIDE, BOMB_SIDE)


def test_png_bomb_is_refused_from_its_header(png_bomb: bytes) -> None:
    assert len(png_bomb) < 500_000  # small on the wire, 144 megapixels decoded
    assert compressed_image_size(png_bomb) == (BOMB_SIDE, BOMB_SIDE)
    with pytest.raises(ImageDecodingError, match=(
            r"compressed image of 12000x12000 = 144000000 pixels is more than the 50000000 "
            r"allowed \(max_image_pixels\); refused before decoding")):
        decode_compressed_image("png", png_bomb)


def test_small_png_of_the_same_kind_decodes() -> None:
    """The bomb is refused for its size alone: the same PNG at 64 x 48 is a good image."""
    decoded = decode_compressed_image("png", png_of_zeros(64, 48))
    assert decoded.shape == (48, 64, 3)
    assert not decoded.any()


def test_jpeg_declaring_a_huge_frame_is_refused() -> None:
    jpeg = bytearray(cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1].tobytes())
    assert compressed_image_size(bytes(jpeg)) == (64, 48)
    frame = jpeg.index(b"\xff\xc0")
    jpeg[frame + 5 : frame + 9] = struct.pack(">HH", 60000, 60000)
    assert compressed_image_size(bytes(jpeg)) == (60000, 60000)
    with pytest.raises(ImageDecodingError, match="60000x60000 = 3600000000 pixels"):
        decode_compressed_image("jpeg", bytes(jpeg))


def test_progressive_jpeg_size_is_read() -> None:
    image = np.random.default_rng(1).integers(0, 256, (40, 72, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    assert b"\xff\xc2" in jpeg
    assert compressed_image_size(jpeg) == (72, 40)


def test_max_pixels_is_a_setting() -> None:
    png = cv2.imencode(".png", np.zeros((48, 64, 3), np.uint8))[1].tobytes()
    assert decode_compressed_image("png", png, max_pixels=64 * 48).shape == (48, 64, 3)
    with pytest.raises(ImageDecodingError, match="more than the 3071 allowed"):
        decode_compressed_image("png", png, max_pixels=64 * 48 - 1)
    raw = bytes(64 * 48 * 3)
    assert decode_raw_image("rgb8", 48, 64, 192, raw, max_pixels=64 * 48).shape == (48, 64, 3)
    with pytest.raises(ImageDecodingError, match="rgb8 image of 64x48 = 3072 pixels is more"):
        decode_raw_image("rgb8", 48, 64, 192, raw, max_pixels=64 * 48 - 1)


def test_raw_image_over_the_cap_is_refused_before_its_payload_is_read() -> None:
    side = 8000  # 64 megapixels, over the default cap; no payload needed to refuse it
    assert side * side > DEFAULT_MAX_IMAGE_PIXELS
    with pytest.raises(ImageDecodingError, match="mono8 image of 8000x8000"):
        decode_raw_image("mono8", side, side, side, b"")


@pytest.mark.parametrize("encoding", ["16UC1", "8UC1", "32FC1", "8UC3", "16SC1", "64FC1"])
def test_generic_and_depth_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(ImageDecodingError, match=(
            f"image encoding '{encoding}' is not colour or mono intensity")):
        decode_raw_image(encoding, 4, 4, 4 * 8, bytes(4 * 4 * 8))


@pytest.mark.parametrize("format_text", ["16UC1; compressedDepth png", "16UC1; compressedDepth",
                                         "32FC1; compressedDepth", "16UC1; png compressed"])
def test_compressed_depth_is_refused(format_text: str) -> None:
    png = cv2.imencode(".png", np.zeros((8, 8), np.uint16))[1].tobytes()
    with pytest.raises(ImageDecodingError, match="is not colour or mono intensity"):
        decode_compressed_image(format_text, png)


def test_other_codecs_are_refused_as_their_size_is_unknown() -> None:
    bmp = cv2.imencode(".bmp", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    assert compressed_image_size(bmp) is None
    with pytest.raises(ImageDecodingError, match="expected JPEG or PNG"):
        decode_compressed_image("bmp", bmp)
