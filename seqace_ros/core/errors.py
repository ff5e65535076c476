"""The one base class of the package's user errors.

Every exception that means bad input, bad data, a bad file or an environment that cannot do
what was asked (a missing topic, a corrupt bag, a disk that is full) derives from
:class:`SeqaceError`, and keeps a builtin base that says what kind of failure it is (e.g.
``class MapFileError(SeqaceError, ValueError)``), so ``except ValueError`` callers keep working.
Front ends (``seqace``, ``mapping_node``, the demo) catch :class:`SeqaceError` alone and report
it in one line; anything else is a bug and keeps its traceback.

Operating-system errors on a user's files are wrapped where they happen: writes in
:mod:`seqace_ros.core.atomic_io` (:class:`~seqace_ros.core.atomic_io.FileWriteError`, also an
``OSError``), reads in each reader (``MapFileError``, ``DatasetError``, ``BagError``,
``TrajectoryError``, ...).
"""

from __future__ import annotations


class SeqaceError(Exception):
    """A user error: bad input, data or files; its message is one line that says what and where."""
