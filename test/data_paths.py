"""Where the real-data tests find the redkitchen_dev frames (env SEQACE_DATA_DIR or ../shared)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def redkitchen_dir() -> Path:
    """The redkitchen_dev folder: ``$SEQACE_DATA_DIR/redkitchen_dev`` or ``../shared/data/...``."""
    base = os.environ.get("SEQACE_DATA_DIR")
    root = Path(base) if base else REPO_ROOT.parent / "shared" / "data"
    return root / "redkitchen_dev"


def require_redkitchen() -> Path:
    """The redkitchen_dev folder, or skip the test with the reason when it is absent."""
    path = redkitchen_dir()
    if not (path / "frame-000000.pose.txt").is_file():
        pytest.skip(f"real data not found at {path} (set SEQACE_DATA_DIR)")
    return path
