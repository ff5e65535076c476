"""Decode ``sensor_msgs/Image`` and ``CompressedImage`` payloads to RGB arrays.

Takes the message fields as plain values (no rosbags or rclpy import), so the bag reader and
the live ROS node share it.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.depth import depth_to_metres
from seqace_ros.core.errors import SeqaceError

# encoding -> (channels, bytes per channel)
_RAW_LAYOUTS: dict[str, tuple[int, int]] = {
    "rgb8": (3, 1),
    "bgr8": (3, 1),
    "rgba8": (4, 1),
    "bgra8": (4, 1),
    "mono8": (1, 1),
    "8UC1": (1, 1),
    "mono16": (1, 2),
    "16UC1": (1, 2),
}
_TO_RGB: dict[str, int | None] = {
    "rgb8": None,
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
}

SUPPORTED_ENCODINGS = tuple(_RAW_LAYOUTS)


class ImageDecodingError(SeqaceError, ValueError):
    """An image message cannot be decoded: unknown encoding or inconsistent size fields."""


def decode_raw_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: bytes | bytearray | memoryview | NDArray[np.uint8],
    is_bigendian: bool = False,
) -> NDArray[np.uint8]:
    """RGB image of a ``sensor_msgs/Image`` payload.

    Args:
        encoding: one of :data:`SUPPORTED_ENCODINGS` (rgb8, bgr8, rgba8, bgra8, mono8, mono16).
        height: rows.
        width: columns.
        step: bytes per row (>= width * pixel size; rows may be padded).
        data: ``height * step`` bytes, row-major.
        is_bigendian: byte order of 16-bit encodings.

    Returns:
        (height, width, 3) uint8 RGB array (a fresh copy). Mono images are replicated to three
        channels; mono16 is scaled to 8 bits by its own maximum (a 0-valued image stays 0).

    Raises:
        ImageDecodingError: unsupported encoding, non-positive size, ``step`` smaller than a
            row, or ``data`` of the wrong length.
    """
    if encoding not in _RAW_LAYOUTS:
        raise ImageDecodingError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    channels, depth = _RAW_LAYOUTS[encoding]
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


def decode_compressed_image(
    format_text: str, data: bytes | bytearray | memoryview | NDArray[np.uint8]
) -> NDArray[np.uint8]:
    """RGB image of a ``sensor_msgs/CompressedImage`` payload (JPEG or PNG).

    Args:
        format_text: the message's ``format`` field, e.g. ``"jpeg"``, ``"png"`` or
            ``"bgr8; jpeg compressed bgr8"`` (image_transport style); only used in errors, the
            codec is detected from the bytes.
        data: the compressed bytes.

    Returns:
        (H, W, 3) uint8 RGB array; grey images are replicated to three channels.

    Raises:
        ImageDecodingError: empty data or bytes that OpenCV cannot decode.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size == 0:
        raise ImageDecodingError(f"compressed image ({format_text!r}) has no data")
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageDecodingError(
            f"cannot decode compressed image with format {format_text!r} ({buffer.size} bytes, "
            f"starting {bytes(buffer[:8]).hex()}); expected JPEG or PNG"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
