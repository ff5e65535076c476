"""Atomic writes: complete files only, nothing left behind, the usual permissions."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from disk_faults import fail_fsync_of

from seqace_ros.core.atomic_io import FileWriteError, atomic_write_bytes, atomic_write_text
from seqace_ros.core.errors import SeqaceError


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


def test_full_disk_is_a_user_error_naming_the_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    fail_fsync_of(monkeypatch, ".report.json.")
    with pytest.raises(FileWriteError, match=r"cannot write '.*report\.json': No space left") as e:
        atomic_write_text(target, "new")
    assert isinstance(e.value, SeqaceError)
    assert e.value.errno == errno.ENOSPC
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    assert target.read_text() == "old"
