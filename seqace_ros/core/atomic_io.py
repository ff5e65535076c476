"""Atomic file writes: a reader sees the old file or the complete new one, never a part.

Every write of the package goes through here; an operating-system failure (missing folder,
permission denied, disk full) comes out as :class:`FileWriteError`, a user error
(:class:`~seqace_ros.core.errors.SeqaceError`) that is also an ``OSError`` with the cause's
``errno``, and leaves neither a temporary file nor a changed target behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from seqace_ros.core.errors import SeqaceError


class FileWriteError(SeqaceError, OSError):
    """A file cannot be written; ``errno`` is that of the operating-system error behind it."""

    def __init__(self, path: str | os.PathLike[str], cause: OSError | str) -> None:
        reason = cause if isinstance(cause, str) else cause.strerror or str(cause)
        super().__init__(f"cannot write {str(path)!r}: {reason}")
        if isinstance(cause, OSError):
            self.errno = cause.errno


class OutputFolderMissingError(FileWriteError, FileNotFoundError):
    """The folder a file should be written in does not exist."""


def file_mode(target: Path) -> int:
    """Permission bits for ``target``: those of the file it replaces, else what ``open()``
    would give a new file (0o666 minus the process umask).

    The umask is read from ``/proc/self/status`` rather than with ``os.umask``, which would
    have to change it for a moment under the other threads of a ROS node; 0o644 where that
    file does not exist.
    """
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        pass
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    return 0o644


def output_folder(target: Path) -> Path:
    """The folder ``target`` goes in.

    Raises:
        OutputFolderMissingError: when it does not exist.
    """
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputFolderMissingError(target, f"output folder {str(folder)!r} does not exist")
    return folder


def temporary_beside(target: Path) -> Path:
    """Create an empty ``.NAME.XXXX.tmp`` file in the folder of ``target``; returns its path.

    The caller removes it (or renames it over ``target``).

    Raises:
        OutputFolderMissingError: the folder does not exist.
        FileWriteError: the file cannot be created there.
    """
    folder = output_folder(target)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise FileWriteError(target, error) from error
    os.close(fd)
    return Path(name)


def write_synced(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to the existing file ``path`` with permission bits ``mode``; fsync it.

    Raises:
        OSError: the write fails (e.g. disk full).
    """
    with open(path, "wb") as stream:
        os.fchmod(stream.fileno(), mode)
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def fsync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    The file gets the permissions of the one it replaces, or a new file's usual ones (the
    temporary file's 0o600 would keep a map from a node running as another user). On any
    failure, or an exception such as ``KeyboardInterrupt``, the temporary file is removed and
    ``path`` is unchanged.

    Raises:
        OutputFolderMissingError: when the parent folder does not exist (a
            ``FileNotFoundError`` too).
        FileWriteError: the file cannot be written (permission, disk full, ...).
    """
    target = Path(path)
    tmp = temporary_beside(target)
    try:
        write_synced(tmp, data, file_mode(target))
        os.replace(tmp, target)
        fsync_folder(tmp.parent)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise FileWriteError(target, error) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))
