"""The error of every bag problem: unreadable or corrupt files, missing topics, no poses."""

from __future__ import annotations

from seqace_ros.core.errors import SeqaceError


class BagError(SeqaceError, ValueError):
    """A bag cannot be used for mapping: unreadable, missing topics, no poses, bad frames."""
