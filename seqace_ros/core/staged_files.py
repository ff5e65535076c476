"""Replace a set of files together: write and check every new file first, replace last.

A map and its report files must never be half replaced: a full disk while writing the report
must not cost the previous, good map. :class:`StagedFiles` writes each new file to a
temporary ``.NAME.XXXX.tmp`` beside its target (fsynced, read back and compared), and only
when all are written does :meth:`StagedFiles.commit` rename them over their targets. Typical
use::

    with StagedFiles() as staged:
        staged.write(report_path, report_bytes)
        tmp = staged.reserve(map_path)        # for a writer that takes a path
        save_map(scene_map, tmp)
        staged.commit(last=map_path)

Leaving the block without a commit (any exception, ``KeyboardInterrupt``, a stop request)
removes every temporary and leaves every target as it was. The commit keeps a hard link to
each file it replaces until all renames succeeded; if one fails, the replaced files are put
back, so the previous set is whole again. The file named ``last`` is renamed last: a crash
in the middle of the commit (power loss, SIGKILL) can leave new report files beside the old
map, never a missing map.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from types import TracebackType

from seqace_ros.core.atomic_io import (
    FileWriteError,
    file_mode,
    fsync_folder,
    temporary_beside,
    write_synced,
)


class StagedFiles:
    """New versions of several files, staged beside their targets until :meth:`commit`."""

    def __init__(self) -> None:
        self._staged: dict[Path, Path] = {}  # target -> temporary, in staging order
        self._committed = False

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.discard()

    def reserve(self, target: str | os.PathLike[str]) -> Path:
        """An empty temporary file beside ``target``, with the permissions of the file it
        replaces (or a new file's usual ones), for a writer that takes a path; the caller
        writes (and checks) it, :meth:`commit` renames it over ``target``.

        Raises:
            FileWriteError: the folder is missing or a file cannot be created in it.
            ValueError: ``target`` is already staged, or the set was committed.
        """
        path = Path(target)
        if self._committed or path in self._staged:
            raise ValueError(f"{path} is already staged or the set was committed")
        tmp = temporary_beside(path)
        self._staged[path] = tmp
        try:
            os.chmod(tmp, file_mode(path))  # what the target has, not mkstemp's 0o600
        except OSError as error:
            raise FileWriteError(path, error) from error
        return tmp

    def write(self, target: str | os.PathLike[str], data: bytes) -> Path:
        """Stage ``data`` as the new content of ``target``: written to a temporary beside it
        with the permissions of the file it replaces, fsynced, then read back and compared.

        Returns:
            The temporary file.

        Raises:
            FileWriteError: it cannot be written (disk full, ...) or reads back different.
        """
        path = Path(target)
        tmp = self.reserve(path)
        try:
            write_synced(tmp, data, file_mode(path))
            same = tmp.read_bytes() == data
        except OSError as error:
            raise FileWriteError(path, error) from error
        if not same:
            raise FileWriteError(path, f"the staged copy {tmp.name} reads back different")
        return tmp

    def commit(self, last: str | os.PathLike[str] | None = None) -> None:
        """Rename every staged file over its target, in staging order with ``last`` at the end.

        Raises:
            FileWriteError: a rename failed; every target was put back as it was.
            ValueError: ``last`` is not staged.
        """
        order = list(self._staged)
        if last is not None:
            if Path(last) not in self._staged:
                raise ValueError(f"{last} is not staged")
            order.remove(Path(last))
            order.append(Path(last))
        backups: list[Path] = []
        replaced: list[tuple[Path, Path | None]] = []  # (target, link to its previous file)
        try:
            for target in order:
                backup = _hard_link_beside(target) if target.exists() else None
                if backup is not None:
                    backups.append(backup)
                os.replace(self._staged[target], target)
                replaced.append((target, backup))
            for folder in {target.parent for target in order}:
                fsync_folder(folder if str(folder) else Path("."))
        except BaseException as error:
            _put_back(replaced)
            if isinstance(error, OSError) and not isinstance(error, FileWriteError):
                raise FileWriteError(target, error) from error
            raise
        finally:
            for backup in backups:
                backup.unlink(missing_ok=True)
        self._committed = True
        self._staged.clear()

    def discard(self) -> None:
        """Remove every staged temporary (the targets are untouched); nothing after a commit."""
        for tmp in self._staged.values():
            tmp.unlink(missing_ok=True)
        self._staged.clear()


def _hard_link_beside(target: Path) -> Path:
    """A new hard link ``.NAME.XXXX.old`` to ``target`` in its folder (no data copied)."""
    while True:
        backup = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
        try:
            os.link(target, backup)
        except FileExistsError:
            continue
        except OSError as error:
            raise FileWriteError(target, f"cannot keep the file it replaces: {error}") from error
        return backup


def _put_back(replaced: list[tuple[Path, Path | None]]) -> None:
    """Undo the renames of a failed commit, newest first: restore each replaced target from
    its link, or remove a new one that had no predecessor."""
    for target, backup in reversed(replaced):
        if backup is not None:
            os.replace(backup, target)
        else:
            target.unlink(missing_ok=True)
