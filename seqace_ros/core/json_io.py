"""The one JSON writer of reports: non-finite numbers become ``null``, writes are atomic.

JSON has no NaN or infinity (``json.dumps`` would write the non-standard ``NaN`` and
``Infinity``), yet reports hold them: a median error when most frames failed, a latency when
no pose came back. Every JSON report (evaluation, mapping, demo, benchmarks) goes through
:func:`json_text` and :func:`write_json`, so they all read back with any JSON parser.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from seqace_ros.core.atomic_io import atomic_write_text


def json_ready(value: Any) -> Any:
    """``value`` with dataclasses as dicts, tuples as lists and every non-finite float
    (NaN, +-inf) as ``None``, recursively."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def json_text(value: Any) -> str:
    """``value`` as indented JSON text (two spaces, no trailing newline), NaN/inf as ``null``."""
    return json.dumps(json_ready(value), indent=2)


def write_json(path: str | os.PathLike[str], value: Any) -> Path:
    """Write ``value`` as indented JSON with a final newline, atomically; returns the path.

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist.
        OSError: the file cannot be written.
    """
    return atomic_write_text(path, json_text(value) + "\n")
