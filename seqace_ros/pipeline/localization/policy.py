"""When a live relocalizer localizes, and which of its poses go out: decisions without ROS.

The relocalization node wires these to its topics and service; they hold no ROS types, take
the time as an argument (monotonic seconds, or image stamps in nanoseconds where they say so)
and are unit-tested alone.

- :class:`RelocalizationTrigger`: ``continuous`` (every frame) or ``on_demand`` (frames only
  in a window opened by a request, until ``frames_per_request`` poses are accepted or the
  request times out); requests wait for the next accepted pose.
- :class:`RateLimiter`: at most one event per period.
- :class:`ConfidenceGate`: whether a pose is confident enough to reset another localizer
  (nav2/AMCL's ``/initialpose``): inliers and covariance.
- :class:`PriorGate`: whether a pose is close enough to a pose prior (distance, rotation,
  prior age).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.geometry import orthonormalize, rotation_angle_deg

#: Values of the ``trigger`` setting.
TRIGGER_MODES: tuple[str, ...] = ("continuous", "on_demand")


@dataclass(frozen=True)
class RelocalizeOutcome:
    """The answer to one relocalization request.

    Attributes:
        success: a pose was accepted.
        message: one line: the accepted pose, or why none was.
    """

    success: bool
    message: str


class RelocalizeRequest:
    """One request waiting for the next accepted pose (:meth:`RelocalizationTrigger.request`)."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._outcome: RelocalizeOutcome | None = None

    def finish(self, outcome: RelocalizeOutcome) -> None:
        """Answer the request (the first answer wins)."""
        if not self._done.is_set():
            self._outcome = outcome
            self._done.set()

    def wait(self, timeout_s: float) -> RelocalizeOutcome | None:
        """Block up to ``timeout_s`` for the answer; ``None`` when none came in time."""
        return self._outcome if self._done.wait(timeout_s) else None


class RelocalizationTrigger:
    """The ``continuous`` / ``on_demand`` state machine of a live relocalizer (thread-safe).

    ``continuous``: every frame is localized. ``on_demand``: frames are admitted only while a
    request window is open: :meth:`request` opens it (or restarts it) for ``frames_per_request``
    accepted poses, closing at the latest ``timeout_s`` after the request. Frames outside a
    window are refused by :meth:`admit` (counted as ignored) before anything is done with them.
    In both modes a request is answered by the next accepted pose (:meth:`accepted`).

    Args:
        mode: one of :data:`TRIGGER_MODES`.
        frames_per_request: accepted poses per request window (>= 1).

    Raises:
        ValueError: an unknown mode or ``frames_per_request < 1``.
    """

    def __init__(self, mode: str, frames_per_request: int) -> None:
        self._lock = threading.Lock()
        self._mode = ""
        self._frames_per_request = 1
        self._remaining = 0  # accepted poses still wanted in the open window (0: closed)
        self._deadline_s = -math.inf
        self._waiting: list[RelocalizeRequest] = []
        self.requests = 0
        self.ignored = 0
        self.configure(mode, frames_per_request)

    def configure(self, mode: str, frames_per_request: int) -> None:
        """Change the mode or the window length; an open window keeps its deadline.

        Raises:
            ValueError: an unknown mode or ``frames_per_request < 1``.
        """
        if mode not in TRIGGER_MODES:
            raise ValueError(f"trigger must be one of {', '.join(TRIGGER_MODES)}, got {mode!r}")
        if frames_per_request < 1:
            raise ValueError(f"frames_per_request must be >= 1, got {frames_per_request}")
        with self._lock:
            self._mode = mode
            self._frames_per_request = frames_per_request
            self._remaining = min(self._remaining, frames_per_request)

    def _open(self, now_s: float) -> bool:
        """Whether frames are wanted now (lock held); closes an expired window."""
        if self._mode == "continuous":
            return True
        if self._remaining > 0 and now_s > self._deadline_s:
            self._remaining = 0
        return self._remaining > 0

    def is_open(self, now_s: float) -> bool:
        """Whether a frame arriving at ``now_s`` (monotonic s) is to be localized."""
        with self._lock:
            return self._open(now_s)

    def admit(self, now_s: float) -> bool:
        """:meth:`is_open`, counting a refused frame in :attr:`ignored`."""
        with self._lock:
            if self._open(now_s):
                return True
            self.ignored += 1
            return False

    def request(self, now_s: float, timeout_s: float) -> RelocalizeRequest:
        """Open (or restart) the window at ``now_s`` for ``timeout_s`` seconds; the returned
        request is answered by the next accepted pose (its caller waits up to ``timeout_s``)."""
        request = RelocalizeRequest()
        with self._lock:
            self.requests += 1
            self._remaining = self._frames_per_request
            self._deadline_s = now_s + timeout_s
            self._waiting.append(request)
        return request

    def withdraw(self, request: RelocalizeRequest) -> None:
        """Forget a request that stopped waiting (timed out)."""
        with self._lock:
            if request in self._waiting:
                self._waiting.remove(request)

    def accepted(self, summary: str) -> None:
        """One pose accepted: answer every waiting request with ``summary``, count it against
        the open window (closed after ``frames_per_request``)."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
            if self._remaining > 0:
                self._remaining -= 1
        for request in waiting:
            request.finish(RelocalizeOutcome(True, summary))

    def close(self, reason: str) -> None:
        """Answer every waiting request with a failure (``reason``), e.g. at shutdown."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
            self._remaining = 0
        for request in waiting:
            request.finish(RelocalizeOutcome(False, reason))

    def describe(self, now_s: float) -> str:
        """The state in a few words, for diagnostics."""
        with self._lock:
            if self._mode == "continuous":
                return "continuous"
            if not self._open(now_s):
                return "idle: waiting for ~/relocalize"
            accepted = self._frames_per_request - self._remaining
            return (f"localizing: {accepted} of {self._frames_per_request} poses accepted, "
                    f"{self._deadline_s - now_s:.1f} s left")


class RateLimiter:
    """At most one event per ``min_period_s`` (the first event always passes)."""

    def __init__(self) -> None:
        self._last_s = -math.inf

    def try_acquire(self, now_s: float, min_period_s: float) -> bool:
        """True, and the event counted, when ``min_period_s`` has passed since the last one."""
        if now_s - self._last_s < min_period_s:
            return False
        self._last_s = now_s
        return True


def _largest_std(covariance_33: NDArray[np.float64]) -> float:
    """Standard deviation along the worst direction of a 3x3 covariance."""
    return math.sqrt(max(float(np.linalg.eigvalsh(covariance_33)[-1]), 0.0))


@dataclass(frozen=True)
class ConfidenceGate:
    """Whether a pose is confident enough to hand to another localizer.

    Attributes:
        min_inliers: fewest RANSAC inliers.
        max_position_std_m: largest position standard deviation (worst direction), metres.
        max_rotation_std_deg: largest rotation standard deviation (worst axis), degrees.
    """

    min_inliers: int
    max_position_std_m: float
    max_rotation_std_deg: float

    def problem(self, num_inliers: int, covariance_66: NDArray[np.float64]) -> str | None:
        """Why the pose is not confident enough, or ``None`` when it is.

        Args:
            num_inliers: RANSAC inliers of the pose.
            covariance_66: (6, 6) pose covariance, ROS order (x, y, z, rotation about X, Y, Z),
                metres^2 and radians^2.
        """
        covariance = np.asarray(covariance_66, dtype=np.float64)
        if num_inliers < self.min_inliers:
            return f"{num_inliers} inliers < {self.min_inliers}"
        position_std_m = _largest_std(covariance[:3, :3])
        if position_std_m > self.max_position_std_m:
            return f"position std {position_std_m:.3f} m > {self.max_position_std_m} m"
        rotation_std_deg = math.degrees(_largest_std(covariance[3:, 3:]))
        if rotation_std_deg > self.max_rotation_std_deg:
            return f"rotation std {rotation_std_deg:.2f} deg > {self.max_rotation_std_deg} deg"
        return None


@dataclass(frozen=True)
class PosePrior:
    """A prior pose of a body (e.g. the robot base) in the map frame.

    Attributes:
        T_map_body: (4, 4) body-to-map transform.
        stamp_ns: its stamp, nanoseconds.
    """

    T_map_body: NDArray[np.float64]
    stamp_ns: int


@dataclass(frozen=True)
class PriorVerdict:
    """How a pose compares with the prior.

    Attributes:
        accepted: the pose may be published (no prior, a stale one, or close enough).
        message: one line for diagnostics.
    """

    accepted: bool
    message: str


@dataclass(frozen=True)
class PriorGate:
    """Rejects poses farther than a gate from a recent prior.

    Attributes:
        max_distance_m: largest distance between the body positions, metres.
        max_rotation_deg: largest rotation between the body orientations, degrees.
        max_age_s: a prior whose stamp is more than this before the image stamp no longer
            applies, seconds.
    """

    max_distance_m: float
    max_rotation_deg: float
    max_age_s: float

    def check(
        self, prior: PosePrior | None, T_map_body: NDArray[np.float64] | None, stamp_ns: int
    ) -> PriorVerdict:
        """Compare the pose of the body at ``stamp_ns`` with ``prior``.

        Args:
            prior: the latest prior, ``None`` when none was received.
            T_map_body: (4, 4) the estimated body-to-map pose; ``None`` when it is unknown (the
                body's transform from the camera is missing): rejected if a prior applies.
            stamp_ns: the estimate's stamp (the image stamp), nanoseconds.
        """
        if prior is None:
            return PriorVerdict(True, "no prior received")
        age_s = (stamp_ns - prior.stamp_ns) * 1e-9
        if age_s > self.max_age_s:
            return PriorVerdict(True, f"prior not applied: {age_s:.1f} s old > {self.max_age_s} s")
        if T_map_body is None:
            return PriorVerdict(False, "the body's pose is unknown: cannot compare with the prior")
        estimate = np.asarray(T_map_body, dtype=np.float64)
        distance_m = float(np.linalg.norm(estimate[:3, 3] - prior.T_map_body[:3, 3]))
        rotation_deg = rotation_angle_deg(
            orthonormalize(prior.T_map_body[:3, :3]).T @ orthonormalize(estimate[:3, :3]))
        figures = (f"{distance_m:.2f} m and {rotation_deg:.1f} deg from the prior (gate "
                   f"{self.max_distance_m} m, {self.max_rotation_deg} deg)")
        if distance_m > self.max_distance_m or rotation_deg > self.max_rotation_deg:
            return PriorVerdict(False, figures)
        return PriorVerdict(True, figures)
