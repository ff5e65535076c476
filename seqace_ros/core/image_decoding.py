"""Decode ``sensor_msgs/Image`` and ``CompressedImage`` payloads to RGB arrays.

Takes the message fields as plain values (no rosbags or rclpy import), so the bag reader and
the live ROS node share it.

Hostile payloads are refused before anything of their size is allocated: an image of more
than ``max_pixels`` pixels (for compressed images, as declared by the JPEG or PNG header,
before decompressing), and encodings that are not colour or mono intensity (``16UC1`` depth
and the other generic OpenCV types, compressed depth) on the colour path.
"""

from __future__ import annotations

import re
import struct

import cv2
import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import DEFAULT_MAX_IMAGE_PIXELS
from seqace_ros.core.depth import depth_to_metres
from seqace_ros.core.errors import SeqaceError

# encoding -> (channels, bytes per channel)
_RAW_LAYOUTS: dict[str, tuple[int, int]] = {
    "rgb8": (3, 1),
    "bgr8": (3, 1),
    "rgba8": (4, 1),
    "bgra8": (4, 1),
    "mono8": (1, 1),
    "mono16": (1, 2),
}
_TO_RGB: dict[str, int | None] = {
    "rgb8": None,
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
}

SUPPORTED_ENCODINGS = tuple(_RAW_LAYOUTS)
#: Generic OpenCV-type encodings (``16UC1``, ``32FC1``, ``8UC3`` ...): depth or other data,
#: with no colour or intensity meaning (cv_bridge will not convert them to colour either).
_GENERIC_ENCODING = re.compile(r"(8|16|32|64)[USF]C[1-4]")


class ImageDecodingError(SeqaceError, ValueError):
    """An image message cannot be decoded: unknown encoding or inconsistent size fields."""


def decode_raw_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: bytes | bytearray | memoryview | NDArray[np.uint8],
    is_bigendian: bool = False,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> NDArray[np.uint8]:
    """RGB image of a ``sensor_msgs/Image`` payload.

    Args:
        encoding: one of :data:`SUPPORTED_ENCODINGS` (rgb8, bgr8, rgba8, bgra8, mono8, mono16).
        height: rows.
        width: columns.
        step: bytes per row (>= width * pixel size; rows may be padded).
        data: ``height * step`` bytes, row-major.
        is_bigendian: byte order of 16-bit encodings.
        max_pixels: most pixels (``width * height``) accepted.

    Returns:
        (height, width, 3) uint8 RGB array (a fresh copy). Mono images are replicated to three
        channels; mono16 is scaled to 8 bits by its own maximum (a 0-valued image stays 0).

    Raises:
        ImageDecodingError: a generic or depth encoding (``16UC1``, ``32FC1``, ...), another
            unsupported encoding, non-positive size, more than ``max_pixels`` pixels, ``step``
            smaller than a row, or ``data`` of the wrong length.
    """
    if _GENERIC_ENCODING.fullmatch(encoding):
        raise ImageDecodingError(
            f"image encoding {encoding!r} is not colour or mono intensity (depth or other "
            f"data); refused: the image topic takes {', '.join(SUPPORTED_ENCODINGS)}"
        )
    if encoding not in _RAW_LAYOUTS:
        raise ImageDecodingError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    channels, depth = _RAW_LAYOUTS[encoding]
    _check_pixel_count(width, height, max_pixels, encoding)
    rows = _payload_rows(encoding, height, width, step, data, channels * depth)
    if depth == 2:
        dtype = np.dtype(">u2" if is_bigendian else "<u2")
        mono16 = np.ascontiguousarray(rows).view(dtype).reshape(height, width).astype(np.float64)
        peak = mono16.max()
        scaled = np.zeros_like(mono16) if peak == 0 else mono16 * (255.0 / peak)
        mono8 = np.rint(scaled).astype(np.uint8)
        return np.repeat(mono8[:, :, None], 3, axis=2)
    pixels = rows.reshape(height, width, channels)
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    conversion = _TO_RGB[encoding]
    if conversion is None:
        return pixels.copy()
    return cv2.cvtColor(np.ascontiguousarray(pixels), conversion)


def _check_pixel_count(width: int, height: int, max_pixels: int, what: str) -> None:
    """Raise :class:`ImageDecodingError` for a ``width`` x ``height`` image over ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageDecodingError(
            f"{what} image of {width}x{height} = {width * height} pixels is more than the "
            f"{max_pixels} allowed (max_image_pixels); refused before decoding"
        )


def _payload_rows(
    encoding: str, height: int, width: int, step: int,
    data: bytes | bytearray | memoryview | NDArray[np.uint8], pixel_bytes: int,
) -> NDArray[np.uint8]:
    """(height, width * pixel_bytes) uint8 view of an image payload, row padding dropped.

    Raises:
        ImageDecodingError: non-positive size, ``step`` smaller than a row, or ``data`` of the
            wrong length.
    """
    if height <= 0 or width <= 0:
        raise ImageDecodingError(f"image size must be positive, got {width}x{height}")
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise ImageDecodingError(
            f"{encoding} image of width {width} needs step >= {row_bytes} bytes, got {step}"
        )
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size != height * step:
        raise ImageDecodingError(
            f"{encoding} image {width}x{height} with step {step} needs {height * step} bytes, "
            f"got {buffer.size}"
        )
    return buffer.reshape(height, step)[:, :row_bytes]


# depth encoding -> numpy element type (little-endian; swapped for big-endian payloads)
_DEPTH_LAYOUTS: dict[str, str] = {"16UC1": "<u2", "mono16": "<u2", "32FC1": "<f4"}
SUPPORTED_DEPTH_ENCODINGS = tuple(_DEPTH_LAYOUTS)


def decode_depth_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: bytes | bytearray | memoryview | NDArray[np.uint8],
    is_bigendian: bool = False,
) -> NDArray[np.float32]:
    """Depth in metres of a ``sensor_msgs/Image`` depth payload.

    Args:
        encoding: 16UC1 or mono16 (uint16 millimetres), or 32FC1 (float32 metres).
        height: rows.
        width: columns.
        step: bytes per row (rows may be padded).
        data: ``height * step`` bytes, row-major.
        is_bigendian: byte order of the payload.

    Returns:
        (height, width) float32 metres, 0 where invalid (0 or non-finite in the payload).

    Raises:
        ImageDecodingError: an encoding that is not depth, or inconsistent size fields.
    """
    if encoding not in _DEPTH_LAYOUTS:
        raise ImageDecodingError(
            f"unsupported depth encoding {encoding!r}; supported: "
            f"{', '.join(SUPPORTED_DEPTH_ENCODINGS)}")
    dtype = np.dtype(_DEPTH_LAYOUTS[encoding])
    if is_bigendian:
        dtype = dtype.newbyteorder(">")
    rows = _payload_rows(encoding, height, width, step, data, dtype.itemsize)
    stored = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
    return depth_to_metres(stored.astype(dtype.newbyteorder("=")))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (every coding process; not DHT C4, JPG C8, DAC CC).
_JPEG_FRAME_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB,
                                 0xCD, 0xCE, 0xCF})
#: JPEG markers without a length field.
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})


def compressed_image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared by a PNG or JPEG header, without decoding; ``None`` for bytes
    that are neither, or whose header ends before the size."""
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if not data.startswith(b"\xff\xd8"):
        return None
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_STANDALONE_MARKERS:
            position += 2
            continue
        if marker in _JPEG_FRAME_MARKERS:
            if position + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return int(width), int(height)
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before
            return None
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return None


def decode_compressed_image(
    format_text: str, data: bytes | bytearray | memoryview | NDArray[np.uint8],
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> NDArray[np.uint8]:
    """RGB image of a ``sensor_msgs/CompressedImage`` payload (JPEG or PNG).

    Args:
        format_text: the message's ``format`` field, e.g. ``"jpeg"``, ``"png"`` or
            ``"bgr8; jpeg compressed bgr8"`` (image_transport style). A compressed depth image
            (``"16UC1; compressedDepth png"``) or a generic source encoding is refused; the
            codec itself is detected from the bytes.
        data: the compressed bytes.
        max_pixels: most pixels the decoded image may have, as declared by its header.

    Returns:
        (H, W, 3) uint8 RGB array; grey images are replicated to three channels.

    Raises:
        ImageDecodingError: empty data, a depth or generic format, bytes that are not JPEG
            or PNG, a header declaring more than ``max_pixels`` pixels, or bytes that OpenCV
            cannot decode.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size == 0:
        raise ImageDecodingError(f"compressed image ({format_text!r}) has no data")
    source_encoding = format_text.split(";")[0].strip()
    if "compresseddepth" in format_text.lower() or _GENERIC_ENCODING.fullmatch(source_encoding):
        raise ImageDecodingError(
            f"compressed image format {format_text!r} is not colour or mono intensity (depth "
            "or other data); refused"
        )
    size = compressed_image_size(buffer.tobytes())
    if size is None:
        raise ImageDecodingError(
            f"cannot decode compressed image with format {format_text!r} ({buffer.size} bytes, "
            f"starting {bytes(buffer[:8]).hex()}); expected JPEG or PNG"
        )
    _check_pixel_count(*size, max_pixels, "compressed")
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageDecodingError(
            f"cannot decode compressed image with format {format_text!r} ({buffer.size} bytes, "
            f"starting {bytes(buffer[:8]).hex()}); expected JPEG or PNG"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
