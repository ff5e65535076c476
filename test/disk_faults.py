"""Inject operating-system failures into file writes: a full disk, a failing rename."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

import pytest

_real_fsync = os.fsync
_real_replace = os.replace


def fail_fsync_of(monkeypatch: pytest.MonkeyPatch, fragment: str) -> None:
    """Make ``os.fsync`` raise ENOSPC for files whose path contains ``fragment``.

    Data that does not fit on a full disk is reported at the latest by ``fsync``, which every
    write of the package calls; the file is recognised by the path of the descriptor.
    """

    def fsync(fd: int) -> None:
        if fragment in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        _real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def fail_replace_onto(monkeypatch: pytest.MonkeyPatch, is_target: Callable[[str], bool]) -> None:
    """Make ``os.replace`` raise EIO when renaming onto a path ``is_target`` accepts."""

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if is_target(os.fspath(dst)):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        _real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
