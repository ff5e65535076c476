"""What every benchmark script does with its report: machine description, JSON output."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from seqace_ros.core.atomic_io import atomic_write_text


def platform_info() -> dict[str, Any]:
    """The machine a benchmark ran on: architecture, processor, CPU count, Python."""
    return {"machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version()}


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by ``None`` (valid JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def emit_report(report: dict[str, Any], json_path: Path | None) -> None:
    """Print ``report`` as indented JSON and, when ``json_path`` is given, write it atomically."""
    text = json.dumps(finite(report), indent=2)
    print(text, flush=True)
    if json_path is not None:
        atomic_write_text(json_path, text + "\n")
