"""Cooperative stop on SIGINT / SIGTERM for long jobs (mapping), with no partial output.

Inside :func:`stop_on_signals`, SIGINT and SIGTERM only set a flag; the job's loops call
:func:`check_stop` at safe points (each training step, each frame read or encoded, each bag
message indexed, each self-check frame, and once before the map and its report are put in
place), which raises :class:`StopRequested`. The exception unwinds through the job's cleanup
(temporary files removed, nothing replaced), and the front end exits with
:attr:`StopRequested.exit_status` (130 for SIGINT, 143 for SIGTERM). A signal never interrupts
cleanup code half-way, as an exception raised from the handler itself could.

Typical use::

    with stop_on_signals():
        run_request(request)      # raises StopRequested at the next check point after a signal
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: Signals that ask a job to stop.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)

_requested = threading.Event()
_signal_number = 0


class StopRequested(BaseException):
    """A stop signal arrived; the job stopped at a check point and wrote nothing.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that ``except Exception`` handlers on
    the way do not swallow it.

    Attributes:
        signum: the signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """The shell convention for a process ended by this signal: 128 + its number."""
        return 128 + self.signum


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _signal_number
    _signal_number = signum
    _requested.set()


def check_stop() -> None:
    """Raise :class:`StopRequested` when a stop signal arrived inside :func:`stop_on_signals`.

    Cheap (one flag test); a no-op outside the context or before any signal.
    """
    if _requested.is_set():
        raise StopRequested(_signal_number)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM set the stop flag instead of their usual action.

    The previous handlers are restored and the flag cleared on exit. Must be entered from the
    main thread (Python delivers signals there).

    Raises:
        ValueError: when entered from another thread (``signal.signal`` refuses).
    """
    global _signal_number
    previous = {signum: signal.signal(signum, _on_signal) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _requested.clear()
        _signal_number = 0
