"""What every benchmark script does with its report: machine description, JSON output."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from seqace_ros.core.json_io import json_text, write_json


def platform_info() -> dict[str, Any]:
    """The machine a benchmark ran on: architecture, processor, CPU count, Python."""
    return {"machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version()}


def emit_report(report: dict[str, Any], json_path: Path | None) -> None:
    """Print ``report`` as indented JSON and, when ``json_path`` is given, write it atomically
    (NaN and inf as ``null`` in both)."""
    print(json_text(report), flush=True)
    if json_path is not None:
        write_json(json_path, report)
