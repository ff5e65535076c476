"""Fixtures for the synthetic scene tests: one tiny scene rendered once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqace_ros.datasets.synthetic import SyntheticScene, preset, render_scene


@pytest.fixture(scope="session")
def tiny_scene() -> SyntheticScene:
    """The ``tiny`` preset (160x120, 14 mapping + 6 query frames), seed 0, in memory."""
    return SyntheticScene(preset("tiny"))


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``tiny`` preset, seed 0, rendered to a 7-Scenes folder."""
    return render_scene(preset("tiny"), tmp_path_factory.mktemp("synthetic") / "tiny")
