"""What setup.py declares, read by running it with ``setuptools.setup`` replaced."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
import setuptools

ROOT = Path(__file__).resolve().parents[1]


def setup_arguments() -> dict[str, Any]:
    """The keyword arguments setup.py passes to ``setuptools.setup`` (run from the repo root,
    as pip and colcon run it: it globs relative paths)."""
    recorded: dict[str, Any] = {}
    patch = pytest.MonkeyPatch()
    patch.chdir(ROOT)
    patch.setattr(setuptools, "setup", lambda **kwargs: recorded.update(kwargs))
    try:
        runpy.run_path(str(ROOT / "setup.py"))
    finally:
        patch.undo()
    return recorded
