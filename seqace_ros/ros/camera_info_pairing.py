"""Which camera_info goes with an image: a short history of camera_info, searched by stamp.

image_transport's ``CameraSubscriber`` (and message_filters' ``TimeSynchronizer``) hand a
callback an image together with the camera_info of the *same stamp*, whichever of the two
arrived first. The relocalization node keeps the last camera_info messages here and pairs
each image with one of them by this rule, in order:

1. **exact**: the camera_info whose ``header.stamp`` equals the image's (the newest such
   message, if several). When the stream looks synchronised (the previous image was paired
   exactly) and no camera_info stamped at or after the image has arrived yet, the pairing
   waits up to :data:`EXACT_WAIT_S` for it: the two topics are not ordered, and the image of a
   camera change may arrive before its own camera_info.
2. **before**: else the newest camera_info stamped not later than the image and at most
   ``tolerance`` before it (a camera_info published at a lower rate than the images).
3. **latest**: else, when every camera_info kept describes one camera (the camera has not
   changed lately), the latest one, with a note saying so (the behaviour before stamps were
   paired; unsynchronised publishers, e.g. a camera_info stamped 0 or from another clock,
   keep working).
4. **refused**: else (none kept, or the camera changed among the ones kept, so the image's
   camera cannot be told) no camera_info: the frame is refused with the reason.

The history is bounded: :data:`MAX_MESSAGES` messages, those stamped at most
:data:`SPAN_NS` before the newest, and at most :data:`MAX_CAMERAS` different cameras (a
decoded camera may hold undistortion tables; the oldest messages go first). When the stamps
jump back (a bag played in a loop) the history restarts from the new message.

No ROS import: the node passes stamps in nanoseconds and its decoded camera as an opaque
value; two values are the same camera when ``same(a, b)`` (default ``==``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

#: Most camera_info messages kept (3 s at 30 Hz).
MAX_MESSAGES = 100
#: Messages stamped more than this before the newest are dropped (10 s).
SPAN_NS = 10 * 10**9
#: Most different cameras kept (each decoded camera may hold undistortion tables).
MAX_CAMERAS = 3
#: How long a synchronised stream waits for the camera_info of the image's stamp (seconds).
EXACT_WAIT_S = 0.1

PAIRED_EXACT = "exact"
PAIRED_BEFORE = "before"
PAIRED_LATEST = "latest"
REFUSED = "refused"

CameraT = TypeVar("CameraT")


@dataclass(frozen=True)
class StampedCamera(Generic[CameraT]):
    """A camera_info as kept: its header stamp, arrival time and decoded camera.

    Attributes:
        stamp_ns: ``header.stamp`` in nanoseconds.
        received_s: arrival time (monotonic seconds).
        camera: what the caller decoded from it (opaque here).
    """

    stamp_ns: int
    received_s: float
    camera: CameraT


@dataclass(frozen=True)
class Pairing(Generic[CameraT]):
    """The camera_info chosen for an image, how, and in words.

    Attributes:
        entry: the camera_info chosen (``None`` when refused).
        how: :data:`PAIRED_EXACT`, :data:`PAIRED_BEFORE`, :data:`PAIRED_LATEST` or
            :data:`REFUSED`.
        note: one line for logs and diagnostics (the reason when refused).
    """

    entry: StampedCamera[CameraT] | None
    how: str
    note: str


def _seconds(ns: int) -> str:
    return f"{ns * 1e-9:.3f} s"


class CameraInfoHistory(Generic[CameraT]):
    """The last camera_info messages, and the pairing rule of the module docstring.

    Thread-safe: :meth:`add` runs in the subscription callback, :meth:`pair` in the worker.
    """

    def __init__(self, same: Callable[[CameraT, CameraT], bool] | None = None,
                 max_messages: int = MAX_MESSAGES, span_ns: int = SPAN_NS,
                 max_cameras: int = MAX_CAMERAS) -> None:
        if max_messages < 1 or max_cameras < 1 or span_ns < 0:
            raise ValueError("max_messages and max_cameras must be >= 1, span_ns >= 0")
        self._same = same if same is not None else (lambda a, b: a == b)
        self._max_messages = max_messages
        self._span_ns = span_ns
        self._max_cameras = max_cameras
        self._entries: deque[StampedCamera[CameraT]] = deque()
        self._changed = threading.Condition()
        self._synchronised = False  # the previous pairing was exact

    def __len__(self) -> int:
        with self._changed:
            return len(self._entries)

    def latest(self) -> StampedCamera[CameraT] | None:
        """The camera_info received last, or ``None``."""
        with self._changed:
            return self._entries[-1] if self._entries else None

    def find_camera(self, predicate: Callable[[CameraT], bool]) -> CameraT | None:
        """The newest kept camera for which ``predicate`` holds (to reuse a decoded one)."""
        with self._changed:
            return next((e.camera for e in reversed(self._entries) if predicate(e.camera)),
                        None)

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()
            self._synchronised = False

    def add(self, stamp_ns: int, received_s: float, camera: CameraT) -> bool:
        """Keep a camera_info; returns ``True`` when its stamp jumped back (history restarted).
        """
        with self._changed:
            jumped = bool(self._entries) and stamp_ns < self._entries[-1].stamp_ns
            if jumped:
                self._entries.clear()
                self._synchronised = False
            self._entries.append(StampedCamera(stamp_ns, received_s, camera))
            self._prune()
            self._changed.notify_all()
            return jumped

    def _prune(self) -> None:
        newest = self._entries[-1]
        while len(self._entries) > self._max_messages or (
                newest.stamp_ns - self._entries[0].stamp_ns > self._span_ns):
            self._entries.popleft()
        while len(self._distinct_cameras()) > self._max_cameras:
            self._entries.popleft()

    def _distinct_cameras(self) -> list[CameraT]:
        cameras: list[CameraT] = []
        for entry in self._entries:
            if not any(self._same(entry.camera, seen) for seen in cameras):
                cameras.append(entry.camera)
        return cameras

    def pair(self, image_stamp_ns: int, tolerance_ns: int,
             wait_s: float = EXACT_WAIT_S) -> Pairing[CameraT]:
        """The camera_info for an image stamped ``image_stamp_ns`` (module docstring's rule).

        Args:
            image_stamp_ns: the image's ``header.stamp`` in nanoseconds.
            tolerance_ns: how much older than the image a camera_info may be stamped (rule 2).
            wait_s: longest wait for the exact camera_info of a synchronised stream (rule 1).
        """
        with self._changed:
            if self._synchronised and wait_s > 0.0:
                self._changed.wait_for(
                    lambda: bool(self._entries)
                    and self._entries[-1].stamp_ns >= image_stamp_ns, timeout=wait_s)
            pairing = self._choose(image_stamp_ns, tolerance_ns)
            self._synchronised = pairing.how == PAIRED_EXACT
            return pairing

    def _choose(self, image_stamp_ns: int, tolerance_ns: int) -> Pairing[CameraT]:
        entries = self._entries
        if not entries:
            return Pairing(None, REFUSED, "no camera_info received")
        exact = next((e for e in reversed(entries) if e.stamp_ns == image_stamp_ns), None)
        if exact is not None:
            return Pairing(exact, PAIRED_EXACT, "camera_info of the image's stamp")
        before = next((e for e in reversed(entries) if e.stamp_ns <= image_stamp_ns), None)
        if before is not None and image_stamp_ns - before.stamp_ns <= tolerance_ns:
            return Pairing(before, PAIRED_BEFORE,
                           f"camera_info stamped {_seconds(image_stamp_ns - before.stamp_ns)} "
                           "before the image")
        span = (f"no camera_info stamped at or up to {_seconds(tolerance_ns)} before the image "
                f"(image stamp {image_stamp_ns} ns; the {len(entries)} camera_info kept are "
                f"stamped {entries[0].stamp_ns} to {entries[-1].stamp_ns} ns)")
        cameras = len(self._distinct_cameras())
        if cameras == 1:
            return Pairing(entries[-1], PAIRED_LATEST,
                           f"{span}: used the latest, the camera has not changed lately")
        return Pairing(None, REFUSED,
                       f"{span}, and the camera changed among them ({cameras} different): "
                       "cannot tell which camera took the image")
