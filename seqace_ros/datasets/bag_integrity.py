"""Check a bag's files for corruption before anything is read from them.

What each format lets us verify (:func:`verify_bag`):

- rosbag2 mcap: the framing of every record and of the records inside every chunk, and each
  CRC-32 the file carries: chunk CRCs (every message), data-section and summary CRCs
  (:mod:`~seqace_ros.datasets.mcap_integrity`). A file whose CRC fields are 0 gets the
  framing checks only.
- rosbag2 sqlite3: ``PRAGMA integrity_check`` (page and b-tree structure, the timestamp index
  against the rows). Cell values have no checksum: damaged message bytes pass it.
- ROS 1: the framing of every record and the index against the data
  (:mod:`~seqace_ros.datasets.ros1_integrity`). No checksums: damaged message bytes pass it.

Damage these checks cannot see may still surface when a message is deserialized or an image
decoded; :class:`~seqace_ros.datasets.bag.BagDataset` reports those as :class:`BagError` too.
"""

from __future__ import annotations

import mmap
import sqlite3
from collections.abc import Callable
from pathlib import Path

from seqace_ros.datasets.bag_error import BagError
from seqace_ros.datasets.mcap_integrity import check_mcap
from seqace_ros.datasets.ros1_integrity import check_ros1

Check = Callable[[bytes | mmap.mmap, str], None]


def _check_mapped(path: Path, check: Check, where: str) -> None:
    """Run ``check`` on the memory-mapped bytes of ``path``."""
    try:
        with open(path, "rb") as stream:
            if path.stat().st_size == 0:
                raise BagError(f"{where} is empty")
            with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
                check(data, where)
    except BagError as error:
        raise BagError(f"{error} (truncated or corrupt?)") from None
    except OSError as error:
        raise BagError(f"cannot read {where}: {error.strerror or error}") from None


def verify_sqlite(path: Path) -> None:
    """Run SQLite's integrity check on a rosbag2 ``.db3`` file (read-only).

    Raises:
        BagError: the database is damaged (SQLite's first finding is in the message).
    """
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        # findings may quote damaged names: never fail on their bytes
        connection.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
        try:
            findings = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        finally:
            connection.close()
    except (sqlite3.Error, UnicodeDecodeError) as error:  # an error quoting damaged bytes
        raise BagError(f"sqlite3 file {path.name} is damaged (truncated or corrupt?): "
                       f"{error}") from None
    if findings != ["ok"]:
        first = " ".join(findings[0].split())  # a finding may span lines
        raise BagError(f"sqlite3 file {path.name} fails its integrity check (truncated or "
                       f"corrupt?): {first} ({len(findings)} findings)")


def verify_bag(path: Path) -> None:
    """Check every storage file of a bag for the corruption its format can reveal.

    Args:
        path: a rosbag2 folder (``.mcap`` or ``.db3`` files) or a ROS 1 ``.bag`` file.

    Raises:
        BagError: ``cannot read bag PATH: ...`` when damage is found, naming the file and the
            byte offset (mcap, ROS 1) or SQLite's finding (sqlite3).
    """
    try:
        if not path.is_dir():
            _check_mapped(path, check_ros1, "ROS 1 bag")
            return
        for file in sorted(path.iterdir()):
            if file.suffix == ".mcap":
                _check_mapped(file, check_mcap, f"MCAP file {file.name}")
            elif file.suffix == ".db3":
                verify_sqlite(file)
    except BagError as error:
        raise BagError(f"cannot read bag {path}: {error}") from None
