"""Content hashes of files (a map records its encoder weights' hash)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=4)
def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes.

    Cached by path: meant for files that do not change while the process runs (shipped
    encoder weights).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
