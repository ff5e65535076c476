"""The map file: a scene head's fp16 weights in safetensors with JSON metadata in its header.

Layout: a standard safetensors file. Its tensors are the head's ``state_dict`` in float16
(the scene centre included, as float32) and, optionally, the map's keyframes under the
``keyframes.`` prefix (:mod:`seqace_ros.core.keyframes`; since format version 2; version 3
adds product-quantized keyframe descriptors; maps of versions 1 and 2 still load). Its
``__metadata__`` holds one key, ``seqace_map``, whose value is a JSON object::

    {"format": "seqace_map", "format_version": 3,
     "encoder": {"id": "xfeat-ms192", "weight_hash": "<sha256>", "image_height": 480},
     "head": {HeadConfig fields}, "scene_centre": [x, y, z],
     "conventions": {...}, "mapping": {free-form statistics},
     "keyframes": {"count": K, "keypoints": N, "points": "sensor_depth" | "head",
                   "descriptor_bytes": M}
     (only when the map has keyframes; ``points`` absent in older maps: "head";
     ``descriptor_bytes`` M > 0: each descriptor stored as M product-quantization codes,
     0 or absent (older maps): as 64 float16 values)}

Loading never unpickles: safetensors holds raw tensor bytes only. Writes are atomic.
A file is checked (type, size, header, metadata types, bounds, tensor dtypes and shapes)
before anything big is allocated: see :func:`load_map`.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from seqace_ros.core.atomic_io import atomic_write_bytes
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.head import HeadConfig, SceneHead
from seqace_ros.core.keyframes import (
    DESCRIPTOR_DIM,
    TENSOR_PREFIX,
    KeyframeError,
    Keyframes,
)
from seqace_ros.core.product_quantizer import CENTROIDS

FORMAT_NAME = "seqace_map"
FORMAT_VERSION = 3
METADATA_KEY = "seqace_map"
CONVENTIONS = {
    "scene_coordinates": "map frame, metres",
    "poses": "T_world_cam camera-to-world, OpenCV camera axes",
}
#: Largest map file accepted (bytes). A map of the default head is about 1 MB (plus up to
#: about 14 MB of keyframes); the largest head within :data:`HEAD_CONFIG_BOUNDS` that fits is
#: far wider than any preset.
MAX_MAP_BYTES = 256 * 1024 * 1024
#: Largest safetensors header accepted (bytes); a map's header is a few kB.
MAX_HEADER_BYTES = 16 * 1024 * 1024
#: Inclusive bounds of the head configuration a map may declare.
HEAD_CONFIG_BOUNDS: dict[str, tuple[int, int]] = {
    "in_channels": (1, 2048),
    "width": (1, 4096),
    "num_blocks": (0, 64),
}
#: Inclusive bounds of a map's network input height (pixels; also a multiple of 32).
IMAGE_HEIGHT_RANGE = (32, 2048)
#: Where keyframe points can come from (``keyframes.points`` in the metadata).
KEYFRAME_POINT_SOURCES = ("sensor_depth", "head")

#: Most keyframes and keyframe keypoints (in all) a map may declare.
MAX_KEYFRAMES = 100_000
MAX_KEYFRAME_KEYPOINTS = 10_000_000


class MapFileError(SeqaceError, ValueError):
    """A file that is not a usable map: not a map, truncated, newer format, wrong encoder."""


@dataclass(frozen=True)
class SceneMap:
    """A trained scene head plus what is needed to use it.

    Attributes:
        head_config: head architecture.
        state_dict: head weights (as stored: float16, scene centre float32).
        encoder_id: id of the encoder whose features the head was trained on.
        encoder_weight_hash: SHA-256 of that encoder's weights.
        image_height: network input height (pixels) used in mapping.
        scene_centre_3: (3,) map-frame offset added to predictions (metres).
        mapping_stats: free-form mapping statistics (frames, iterations, seconds...).
        keyframes: posed views with 3D keypoints for pose refinement, or ``None``.
    """

    head_config: HeadConfig
    state_dict: dict[str, torch.Tensor]
    encoder_id: str
    encoder_weight_hash: str
    image_height: int
    scene_centre_3: tuple[float, float, float]
    mapping_stats: dict[str, Any] = field(default_factory=dict)
    keyframes: Keyframes | None = None

    @classmethod
    def from_head(
        cls,
        head: SceneHead,
        encoder_id: str,
        encoder_weight_hash: str,
        image_height: int,
        mapping_stats: dict[str, Any] | None = None,
    ) -> SceneMap:
        """Snapshot a trained head (weights cast to float16 for storage)."""
        state = {
            name: (value.detach().cpu().float() if name == "scene_centre" else
                   value.detach().cpu().half()).contiguous()
            for name, value in head.state_dict().items()
        }
        centre = head.scene_centre.detach().cpu().double().tolist()
        return cls(
            head_config=head.config,
            state_dict=state,
            encoder_id=encoder_id,
            encoder_weight_hash=encoder_weight_hash,
            image_height=image_height,
            scene_centre_3=(centre[0], centre[1], centre[2]),
            mapping_stats=dict(mapping_stats or {}),
        )

    def build_head(self, device: torch.device | str = "cpu") -> SceneHead:
        """A float32 :class:`SceneHead` in eval mode with this map's weights."""
        head = SceneHead(self.head_config)
        head.load_state_dict({k: v.float() for k, v in self.state_dict.items()})
        return head.eval().requires_grad_(False).to(device)

    def check_encoder(
        self, encoder_id: str, encoder_weight_hash: str, feature_dim: int | None = None
    ) -> None:
        """Raise :class:`MapFileError` unless this map was made with the given encoder.

        Args:
            encoder_id: the encoder's id.
            encoder_weight_hash: SHA-256 of its weights.
            feature_dim: its feature dimension, which must equal the head's ``in_channels``
                (not checked when ``None``).
        """
        if (encoder_id, encoder_weight_hash) != (self.encoder_id, self.encoder_weight_hash):
            raise MapFileError(
                f"map was built with encoder {self.encoder_id!r} "
                f"(weights {self.encoder_weight_hash[:12]}), not with {encoder_id!r} "
                f"(weights {encoder_weight_hash[:12]})"
            )
        if feature_dim is not None and feature_dim != self.head_config.in_channels:
            raise MapFileError(
                f"map head takes {self.head_config.in_channels}-d features; encoder "
                f"{encoder_id!r} gives {feature_dim}-d features"
            )


def save_map(scene_map: SceneMap, path: str | Path) -> Path:
    """Write ``scene_map`` to ``path`` atomically; returns the path."""
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "encoder": {
            "id": scene_map.encoder_id,
            "weight_hash": scene_map.encoder_weight_hash,
            "image_height": scene_map.image_height,
        },
        "head": scene_map.head_config.to_dict(),
        "scene_centre": list(scene_map.scene_centre_3),
        "conventions": CONVENTIONS,
        "mapping": scene_map.mapping_stats,
    }
    tensors = dict(scene_map.state_dict)
    if scene_map.keyframes is not None:
        metadata["keyframes"] = {"count": scene_map.keyframes.count,
                                 "keypoints": int(scene_map.keyframes.offsets_K1[-1]),
                                 "points": keyframe_point_source(scene_map.keyframes),
                                 "descriptor_bytes": scene_map.keyframes.descriptor_bytes}
        tensors.update(scene_map.keyframes.to_tensors())
    data = save_safetensors_bytes(tensors, metadata={METADATA_KEY: json.dumps(metadata)})
    return atomic_write_bytes(path, data)


def load_map(path: str | Path) -> SceneMap:
    """Read a map file written by :func:`save_map`.

    Everything is checked before anything big is allocated, in this order: the path is a
    regular file (not a FIFO, device or directory) of at most :data:`MAX_MAP_BYTES`; its
    safetensors header (at most :data:`MAX_HEADER_BYTES`) holds the seqace metadata, every
    field of the expected type; the head configuration and ``image_height`` are within
    :data:`HEAD_CONFIG_BOUNDS` and :data:`IMAGE_HEIGHT_RANGE`; the header's tensors have
    exactly the names, dtypes (float16 weights, float32 scene centre) and shapes of that head
    and of the keyframes the metadata declares (at most :data:`MAX_KEYFRAMES` and
    :data:`MAX_KEYFRAME_KEYPOINTS`), and the file holds exactly their bytes. Only then is the
    file read and its tensors decoded, every weight must be finite and the keyframes
    consistent (:class:`~seqace_ros.core.keyframes.Keyframes`).

    Raises:
        MapFileError: when the file is missing, not a regular file, too large, not a map,
            truncated, of a newer format version, has metadata of the wrong structure or
            types, a head or image height out of bounds, tensors that do not match the head,
            or non-finite weights.
    """
    source = str(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is rejected just below).
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise MapFileError(f"{source}: cannot read map file ({error.strerror})") from error
    try:
        size = _check_regular_file(os.fstat(descriptor), source)
    except MapFileError:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb") as stream:
        prefix = stream.read(8)
        header_len = _header_length(prefix, size, source)
        header_bytes = stream.read(header_len)
        if len(header_bytes) != header_len:
            raise MapFileError(f"{source}: truncated map file (the file shrank while reading)")
        header = _parse_header(header_bytes, source)
        metadata = _parse_metadata(header, source)
        layout = _expected_layout(metadata.head_config, metadata.keyframe_counts)
        _check_tensor_entries(header, layout, source)
        data_bytes = sum(math.prod(shape) * _DTYPE_BYTES[dtype] for dtype, shape in layout.values())
        if 8 + header_len + data_bytes != size:
            raise MapFileError(
                f"{source}: truncated or corrupt map file (its header describes "
                f"{8 + header_len + data_bytes} bytes, the file has {size})"
            )
        payload = stream.read(data_bytes + 1)
    if len(payload) != data_bytes:
        raise MapFileError(f"{source}: the map file changed size while it was read")
    try:
        tensors = load_safetensors_bytes(prefix + header_bytes + payload)
    except SafetensorError as error:
        raise MapFileError(f"{source}: truncated or corrupt map file ({error})") from error
    for name, tensor in tensors.items():
        if not bool(torch.isfinite(tensor).all()):
            count = int((~torch.isfinite(tensor)).sum())
            raise MapFileError(f"{source}: tensor {name!r} holds {count} non-finite values")
    try:
        keyframes = Keyframes.from_tensors(tensors)
    except KeyframeError as error:
        raise MapFileError(f"{source}: corrupt keyframes ({error})") from error
    if keyframes is not None:
        keyframes = replace(keyframes, points_from_depth=metadata.keyframe_points_from_depth)
    head_tensors = {k: v for k, v in tensors.items() if not k.startswith(TENSOR_PREFIX)}
    return SceneMap(state_dict=head_tensors, keyframes=keyframes, **metadata.as_kwargs())


_DTYPE_BYTES = {"U8": 1, "F16": 2, "F32": 4, "I64": 8}
#: Names listed per kind of mismatch in an error message.
_LISTED = 5
_FILE_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
               stat.S_IFBLK: "a block device", stat.S_IFDIR: "a directory",
               stat.S_IFSOCK: "a socket"}


def _check_regular_file(info: os.stat_result, source: str) -> int:
    """The size of a regular file of plausible size (bytes).

    Raises:
        MapFileError: not a regular file, or larger than :data:`MAX_MAP_BYTES`.
    """
    if not stat.S_ISREG(info.st_mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "a file of unknown type")
        raise MapFileError(f"{source}: not a map file ({kind}, not a regular file)")
    if info.st_size > MAX_MAP_BYTES:
        raise MapFileError(
            f"{source}: not a map file ({info.st_size} bytes, more than the "
            f"{MAX_MAP_BYTES} a map may have)"
        )
    return int(info.st_size)


def _header_length(prefix: bytes, size: int, source: str) -> int:
    """The safetensors header length announced by the first 8 bytes of a ``size``-byte file.

    Raises:
        MapFileError: fewer than 8 bytes, or a header longer than the file or than
            :data:`MAX_HEADER_BYTES`.
    """
    if len(prefix) < 8:
        raise MapFileError(f"{source}: not a map file (only {len(prefix)} bytes)")
    (header_len,) = struct.unpack("<Q", prefix)
    if header_len > MAX_HEADER_BYTES:
        raise MapFileError(f"{source}: not a map file (no safetensors header)")
    if 8 + header_len > size:
        raise MapFileError(
            f"{source}: truncated map file (header needs {8 + header_len} bytes, "
            f"file has {size})"
        )
    return int(header_len)


def _parse_header(header_bytes: bytes, source: str) -> dict[str, Any]:
    """The safetensors header: a JSON object.

    Raises:
        MapFileError: bytes that are not UTF-8 JSON (or nested too deep), or not an object.
    """
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise MapFileError(f"{source}: not a map file (unreadable header: {error})") from error
    if not isinstance(header, dict):
        raise MapFileError(
            f"{source}: not a map file (header is a JSON {type(header).__name__}, not an object)"
        )
    return header


@dataclass(frozen=True)
class _Metadata:
    """The checked fields of a map's ``seqace_map`` metadata."""

    head_config: HeadConfig
    encoder_id: str
    encoder_weight_hash: str
    image_height: int
    scene_centre_3: tuple[float, float, float]
    mapping_stats: dict[str, Any]
    # (keyframes, keypoints in all, descriptor_bytes), None: no keyframes
    keyframe_counts: tuple[int, int, int] | None
    keyframe_points_from_depth: bool  # the keyframes' points are sensor depth (else the head's)

    def as_kwargs(self) -> dict[str, Any]:
        """The :class:`SceneMap` fields these are."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("keyframe_counts", "keyframe_points_from_depth")}


def _field(container: dict[str, Any], key: str, kinds: tuple[type, ...], where: str) -> Any:
    """``container[key]`` when it is present and of one of ``kinds`` (bool is no integer).

    Raises:
        ValueError: missing, or of another type (the message names ``where.key``).
    """
    if key not in container:
        raise ValueError(f"{where}{key} is missing")
    value = container[key]
    if type(value) not in kinds:
        names = " or ".join(kind.__name__ for kind in kinds)
        raise ValueError(f"{where}{key} must be of type {names}, got {value!r}")
    return value


def _parse_metadata(header: dict[str, Any], source: str) -> _Metadata:
    """The checked ``seqace_map`` metadata of a safetensors header.

    Raises:
        MapFileError: no seqace metadata, metadata of the wrong structure or types, a newer
            format version, or a head or image height out of bounds.
    """
    table = header.get("__metadata__")
    text = table.get(METADATA_KEY) if isinstance(table, dict) else None
    if not isinstance(text, str):
        raise MapFileError(f"{source}: a safetensors file without seqace map metadata")
    try:
        metadata = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise MapFileError(f"{source}: corrupt map metadata ({error})") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise MapFileError(f"{source}: metadata is not a {FORMAT_NAME!r} header")
    version = metadata.get("format_version")
    if type(version) is not int:
        raise MapFileError(f"{source}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise MapFileError(
            f"{source}: map format version {version} is newer than the supported "
            f"{FORMAT_VERSION}; upgrade seqace_ros"
        )
    try:
        encoder = _field(metadata, "encoder", (dict,), "")
        image_height = _field(encoder, "image_height", (int,), "encoder.")
        head_config = HeadConfig.from_dict(_field(metadata, "head", (dict,), ""))
        centre = _field(metadata, "scene_centre", (list,), "")
        if len(centre) != 3 or not all(
            type(c) in (int, float) and math.isfinite(c) for c in centre
        ):
            raise ValueError(f"scene_centre must be 3 finite numbers, got {centre!r}")
        parsed = _Metadata(
            head_config=head_config,
            encoder_id=_field(encoder, "id", (str,), "encoder."),
            encoder_weight_hash=_field(encoder, "weight_hash", (str,), "encoder."),
            image_height=image_height,
            scene_centre_3=(float(centre[0]), float(centre[1]), float(centre[2])),
            mapping_stats=dict(_field(metadata, "mapping", (dict,), "")
                               if "mapping" in metadata else {}),
            keyframe_counts=_keyframe_counts(metadata),
            keyframe_points_from_depth=_keyframe_points_from_depth(metadata),
        )
    except ValueError as error:
        raise MapFileError(f"{source}: corrupt map metadata ({error})") from error
    _check_bounds(parsed, source)
    return parsed


def _keyframe_counts(metadata: dict[str, Any]) -> tuple[int, int, int] | None:
    """(keyframes, keypoints, descriptor_bytes) the metadata declares (descriptor_bytes 0 when
    absent: float16 descriptors), ``None`` when it declares no keyframes.

    Raises:
        ValueError: a declaration of the wrong types.
    """
    if "keyframes" not in metadata:
        return None
    declared = _field(metadata, "keyframes", (dict,), "")
    return (_field(declared, "count", (int,), "keyframes."),
            _field(declared, "keypoints", (int,), "keyframes."),
            _field(declared, "descriptor_bytes", (int,), "keyframes.")
            if "descriptor_bytes" in declared else 0)


def keyframe_point_source(keyframes: Keyframes | None) -> str | None:
    """Where the keyframes' points come from (one of :data:`KEYFRAME_POINT_SOURCES`), ``None``
    without keyframes."""
    if keyframes is None:
        return None
    return "sensor_depth" if keyframes.points_from_depth else "head"


def _keyframe_points_from_depth(metadata: dict[str, Any]) -> bool:
    """Whether the declared keyframes' points come from sensor depth (``keyframes.points``:
    ``"sensor_depth"``) rather than the head (``"head"``; also maps written before the field
    existed).

    Raises:
        ValueError: another value.
    """
    if "keyframes" not in metadata or "points" not in metadata["keyframes"]:
        return False
    source = _field(metadata["keyframes"], "points", (str,), "keyframes.")
    if source not in KEYFRAME_POINT_SOURCES:
        raise ValueError(f"keyframes.points must be one of {KEYFRAME_POINT_SOURCES}, got "
                         f"{source!r}")
    return source == "sensor_depth"


def _check_bounds(metadata: _Metadata, source: str) -> None:
    """Raise :class:`MapFileError` unless the head, image height and keyframe counts are
    within bounds."""
    low, high = IMAGE_HEIGHT_RANGE
    height = metadata.image_height
    if not low <= height <= high or height % 32:
        raise MapFileError(
            f"{source}: encoder.image_height must be a multiple of 32 in [{low}, {high}], "
            f"got {height}"
        )
    config = metadata.head_config.to_dict()
    for name, (low, high) in HEAD_CONFIG_BOUNDS.items():
        if not low <= config[name] <= high:
            raise MapFileError(
                f"{source}: head {name} must be in [{low}, {high}], got {config[name]}"
            )
    if metadata.keyframe_counts is not None:
        count, keypoints, descriptor_bytes = metadata.keyframe_counts
        if not (1 <= count <= MAX_KEYFRAMES and 0 <= keypoints <= MAX_KEYFRAME_KEYPOINTS):
            raise MapFileError(
                f"{source}: keyframes must be 1 to {MAX_KEYFRAMES} holding 0 to "
                f"{MAX_KEYFRAME_KEYPOINTS} keypoints, got {count} and {keypoints}"
            )
        if descriptor_bytes < 0 or (descriptor_bytes and DESCRIPTOR_DIM % descriptor_bytes):
            raise MapFileError(
                f"{source}: keyframes.descriptor_bytes must be 0 or a divisor of "
                f"{DESCRIPTOR_DIM}, got {descriptor_bytes}"
            )


def _expected_layout(
    config: HeadConfig, keyframe_counts: tuple[int, int, int] | None
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (safetensors dtype, shape) of a stored head with ``config`` and of
    ``keyframe_counts`` = (K keyframes, N keypoints, M descriptor bytes) keyframes.

    The head is built on PyTorch's meta device: shapes only, no memory.
    """
    with torch.device("meta"):
        state = SceneHead(config).state_dict()
    layout = {
        name: ("F32" if name == "scene_centre" else "F16", tuple(tensor.shape))
        for name, tensor in state.items()
    }
    if keyframe_counts is not None:
        count, keypoints, codes = keyframe_counts
        layout |= {TENSOR_PREFIX + "poses": ("F32", (count, 4, 4)),
                   TENSOR_PREFIX + "offsets": ("I64", (count + 1,)),
                   TENSOR_PREFIX + "points": ("F32", (keypoints, 3))}
        if codes:
            dim = DESCRIPTOR_DIM
            layout |= {
                TENSOR_PREFIX + "descriptor_codes": ("U8", (keypoints, codes)),
                TENSOR_PREFIX + "descriptor_rotation": ("F32", (dim, dim)),
                TENSOR_PREFIX + "descriptor_centroids": ("F32", (codes, CENTROIDS, dim // codes)),
                TENSOR_PREFIX + "descriptor_fidelity": ("F32", (1,))}
        else:
            layout[TENSOR_PREFIX + "descriptors"] = ("F16", (keypoints, DESCRIPTOR_DIM))
    return layout


def _check_tensor_entries(
    header: dict[str, Any], layout: dict[str, tuple[str, tuple[int, ...]]], source: str
) -> None:
    """Raise :class:`MapFileError` unless the header lists exactly ``layout``'s tensors.

    Names, dtypes and shapes are compared as declared, before any tensor byte is read.
    """
    entries = {name: entry for name, entry in header.items() if name != "__metadata__"}
    actual: dict[str, tuple[Any, Any]] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise MapFileError(f"{source}: corrupt map file (tensor entry {name!r} is not an "
                               "object)")
        shape = entry.get("shape")
        actual[name] = (entry.get("dtype"),
                        tuple(shape) if isinstance(shape, list) else shape)
    missing = sorted(set(layout) - set(actual))
    unexpected = sorted(set(actual) - set(layout))
    wrong = [f"{name} {actual[name][1]} (expected {layout[name][1]})"
             for name in layout if name in actual and actual[name][1] != layout[name][1]]
    if missing or unexpected or wrong:
        problems = [f"{label}: {', '.join(map(str, names[:_LISTED]))}"
                    + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")
                    for label, names in (("missing", missing), ("unexpected", unexpected),
                                         ("wrong shape", wrong)) if names]
        raise MapFileError(
            f"{source}: tensors do not match the head config and declared keyframes "
            f"({'; '.join(problems)})"
        )
    for name, (dtype, _) in layout.items():
        if actual[name][0] != dtype:
            raise MapFileError(
                f"{source}: tensor {name!r} is stored as {actual[name][0]!r}; a map stores "
                f"{dtype}"
            )
