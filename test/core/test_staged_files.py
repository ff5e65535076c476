"""StagedFiles: new versions of several files are written beside their targets, checked, and
renamed into place together; any failure leaves every target as it was and no temporary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from disk_faults import fail_fsync_of, fail_replace_onto

from seqace_ros.core.atomic_io import FileWriteError
from seqace_ros.core.staged_files import StagedFiles


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_nothing_changes_before_the_commit_and_everything_after(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"old a")
    (tmp_path / "a").chmod(0o640)
    with StagedFiles() as staged:
        staged.write(tmp_path / "a", b"new a")
        (tmp_path / ".reserved").write_bytes(b"")
        reserved = staged.reserve(tmp_path / "b")
        reserved.write_bytes(b"new b")
        assert contents(tmp_path)["a"] == b"old a"
        assert not (tmp_path / "b").exists()
        staged.commit(last=tmp_path / "b")
    assert contents(tmp_path) == {".reserved": b"", "a": b"new a", "b": b"new b"}
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640


def stage_and_interrupt(folder: Path) -> None:
    with StagedFiles() as staged:
        staged.write(folder / "a", b"new a")
        staged.write(folder / "b", b"new b")
        raise KeyboardInterrupt


def test_leaving_without_commit_removes_the_temporaries(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"old a")
    with pytest.raises(KeyboardInterrupt):
        stage_and_interrupt(tmp_path)
    assert contents(tmp_path) == {"a": b"old a"}


def test_a_full_disk_while_staging_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").write_bytes(b"old a")
    fail_fsync_of(monkeypatch, "/.b.")
    with StagedFiles() as staged:
        staged.write(tmp_path / "a", b"new a")
        with pytest.raises(FileWriteError, match=r"'.*/b': No space left on device"):
            staged.write(tmp_path / "b", b"new b")
    assert contents(tmp_path) == {"a": b"old a"}


@pytest.mark.parametrize("failing", ["a", "b", "c"])
def test_a_failing_rename_puts_back_every_replaced_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    (tmp_path / "a").write_bytes(b"old a")
    (tmp_path / "c").write_bytes(b"old c")
    staged_names = ("a", "b", "c")
    with StagedFiles() as staged:
        for name in staged_names:
            staged.write(tmp_path / name, f"new {name}".encode())
        fail_replace_onto(monkeypatch, lambda dst: os.path.basename(dst) == failing)
        with pytest.raises(FileWriteError, match="Input/output error"):
            staged.commit()
    assert contents(tmp_path) == {"a": b"old a", "c": b"old c"}  # b had no predecessor
