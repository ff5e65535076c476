"""Atomic writes: complete files only, nothing left behind, the usual permissions."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqace_ros.core.atomic_io import atomic_write_bytes, atomic_write_text


@pytest.fixture
def umask_027() -> Iterator[None]:
    previous = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_gets_the_umask_mode(tmp_path: Path, umask_027: None) -> None:
    target = atomic_write_text(tmp_path / "report.json", "{}")
    assert target.read_text() == "{}"
    assert _mode(target) == 0o640  # 0o666 & ~0o027, as open() would give; not mkstemp's 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "map.safetensors"
    target.write_bytes(b"old")
    target.chmod(0o604)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o604


def test_missing_folder_raises_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write_bytes(tmp_path / "absent" / "map.safetensors", b"x")
    assert list(tmp_path.iterdir()) == []
