"""The map file: a scene head's fp16 weights in safetensors with JSON metadata in its header.

Layout: a standard safetensors file. Its tensors are the head's ``state_dict`` in float16
(the scene centre included, as float32). Its ``__metadata__`` holds one key,
``seqace_map``, whose value is a JSON object::

    {"format": "seqace_map", "format_version": 1,
     "encoder": {"id": "xfeat-ms192", "weight_hash": "<sha256>", "image_height": 480},
     "head": {HeadConfig fields}, "scene_centre": [x, y, z],
     "conventions": {...}, "mapping": {free-form statistics}}

Loading never unpickles: safetensors holds raw tensor bytes only. Writes are atomic.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from seqace_ros.core.atomic_io import atomic_write_bytes
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.head import HeadConfig, SceneHead

FORMAT_NAME = "seqace_map"
FORMAT_VERSION = 1
METADATA_KEY = "seqace_map"
CONVENTIONS = {
    "scene_coordinates": "map frame, metres",
    "poses": "T_world_cam camera-to-world, OpenCV camera axes",
}
_MAX_HEADER_BYTES = 100 * 1024 * 1024


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
    """

    head_config: HeadConfig
    state_dict: dict[str, torch.Tensor]
    encoder_id: str
    encoder_weight_hash: str
    image_height: int
    scene_centre_3: tuple[float, float, float]
    mapping_stats: dict[str, Any] = field(default_factory=dict)

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

    def check_encoder(self, encoder_id: str, encoder_weight_hash: str) -> None:
        """Raise :class:`MapFileError` unless this map was made with the given encoder."""
        if (encoder_id, encoder_weight_hash) != (self.encoder_id, self.encoder_weight_hash):
            raise MapFileError(
                f"map was built with encoder {self.encoder_id!r} "
                f"(weights {self.encoder_weight_hash[:12]}), not with {encoder_id!r} "
                f"(weights {encoder_weight_hash[:12]})"
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
    data = save_safetensors_bytes(
        dict(scene_map.state_dict), metadata={METADATA_KEY: json.dumps(metadata)}
    )
    return atomic_write_bytes(path, data)


def _read_metadata(data: bytes, source: str) -> dict[str, Any]:
    """The ``seqace_map`` JSON object of a safetensors byte string."""
    if len(data) < 8:
        raise MapFileError(f"{source}: not a map file (only {len(data)} bytes)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > _MAX_HEADER_BYTES:
        raise MapFileError(f"{source}: not a map file (no safetensors header)")
    if 8 + header_len > len(data):
        raise MapFileError(
            f"{source}: truncated map file (header needs {8 + header_len} bytes, "
            f"file has {len(data)})"
        )
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MapFileError(f"{source}: not a map file (unreadable header: {error})") from error
    metadata_text = (header.get("__metadata__") or {}).get(METADATA_KEY) if isinstance(
        header, dict) else None
    if metadata_text is None:
        raise MapFileError(f"{source}: a safetensors file without seqace map metadata")
    try:
        metadata = json.loads(metadata_text)
    except json.JSONDecodeError as error:
        raise MapFileError(f"{source}: corrupt map metadata ({error})") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise MapFileError(f"{source}: metadata is not a {FORMAT_NAME!r} header")
    version = metadata.get("format_version")
    if not isinstance(version, int):
        raise MapFileError(f"{source}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise MapFileError(
            f"{source}: map format version {version} is newer than the supported "
            f"{FORMAT_VERSION}; upgrade seqace_ros"
        )
    return metadata


def load_map(path: str | Path) -> SceneMap:
    """Read a map file written by :func:`save_map`.

    Raises:
        MapFileError: when the file is missing, not a map, truncated, of a newer format
            version, or inconsistent with its own header.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise MapFileError(f"{source}: cannot read map file ({error.strerror})") from error
    metadata = _read_metadata(data, source)
    try:
        tensors = load_safetensors_bytes(data)
    except SafetensorError as error:
        raise MapFileError(f"{source}: truncated or corrupt map file ({error})") from error
    try:
        encoder = metadata["encoder"]
        head_config = HeadConfig.from_dict(metadata["head"])
        centre = [float(c) for c in metadata["scene_centre"]]
        scene_map = SceneMap(
            head_config=head_config,
            state_dict=tensors,
            encoder_id=str(encoder["id"]),
            encoder_weight_hash=str(encoder["weight_hash"]),
            image_height=int(encoder["image_height"]),
            scene_centre_3=(centre[0], centre[1], centre[2]),
            mapping_stats=dict(metadata.get("mapping", {})),
        )
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise MapFileError(f"{source}: corrupt map metadata ({error!r})") from error
    expected = {k: tuple(v.shape) for k, v in SceneHead(head_config).state_dict().items()}
    actual = {k: tuple(v.shape) for k, v in tensors.items()}
    if actual != expected:
        raise MapFileError(
            f"{source}: tensors {actual} do not match the head config (expected {expected})"
        )
    return scene_map
