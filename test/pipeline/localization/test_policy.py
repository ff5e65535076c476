"""The live relocalizer's decisions: trigger windows, rate limit, confidence and prior gates."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from seqace_ros.core.geometry import make_transform
from seqace_ros.pipeline.localization.policy import (
    ConfidenceGate,
    PosePrior,
    PriorGate,
    RateLimiter,
    RelocalizationTrigger,
)


def rot_z(angle_deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# --- trigger -------------------------------------------------------------------------------


def test_continuous_admits_every_frame_and_answers_requests_with_the_next_pose() -> None:
    trigger = RelocalizationTrigger("continuous", 3)
    assert all(trigger.admit(t) for t in (0.0, 1.0, 1e6))
    assert trigger.ignored == 0
    request = trigger.request(10.0, timeout_s=5.0)
    assert request.wait(0.0) is None
    trigger.accepted("pose A")
    outcome = request.wait(0.0)
    assert outcome is not None
    assert outcome.success
    assert outcome.message == "pose A"
    assert trigger.describe(11.0) == "continuous"


def test_on_demand_is_idle_until_a_request_then_open_for_n_accepted_poses() -> None:
    trigger = RelocalizationTrigger("on_demand", 2)
    assert not trigger.admit(0.0)
    assert not trigger.admit(0.5)
    assert trigger.ignored == 2
    assert trigger.describe(0.5) == "idle: waiting for ~/relocalize"

    request = trigger.request(1.0, timeout_s=10.0)
    assert trigger.requests == 1
    assert trigger.admit(1.1)
    assert trigger.describe(1.5) == "localizing: 0 of 2 poses accepted, 9.5 s left"
    trigger.accepted("first")
    assert request.wait(0.0).message == "first"  # answered by the first pose
    assert trigger.admit(2.0)  # still open: one more pose wanted
    trigger.accepted("second")
    assert not trigger.admit(2.1)  # closed after two accepted poses
    assert trigger.ignored == 3
    assert not trigger.is_open(2.2)


def test_on_demand_window_closes_at_the_timeout_without_a_pose() -> None:
    trigger = RelocalizationTrigger("on_demand", 5)
    request = trigger.request(100.0, timeout_s=2.0)
    assert trigger.is_open(101.9)
    assert not trigger.is_open(102.1)
    assert request.wait(0.0) is None
    trigger.withdraw(request)
    trigger.accepted("late")  # a pose after the withdrawal answers nothing
    assert request.wait(0.0) is None


def test_a_new_request_restarts_the_window_and_all_waiters_get_the_pose() -> None:
    trigger = RelocalizationTrigger("on_demand", 2)
    first = trigger.request(0.0, timeout_s=1.0)
    trigger.accepted("one")
    second = trigger.request(0.9, timeout_s=1.0)
    third = trigger.request(0.95, timeout_s=1.0)
    assert trigger.is_open(1.5)  # restarted at 0.95 for 1 s
    assert trigger.describe(1.5).startswith("localizing: 0 of 2")
    trigger.accepted("two")
    assert first.wait(0.0).message == "one"
    assert second.wait(0.0).message == third.wait(0.0).message == "two"


def test_a_waiting_request_is_answered_from_another_thread() -> None:
    trigger = RelocalizationTrigger("on_demand", 1)
    request = trigger.request(0.0, timeout_s=5.0)
    thread = threading.Timer(0.05, trigger.accepted, args=("from the worker",))
    thread.start()
    outcome = request.wait(5.0)
    thread.join()
    assert outcome is not None
    assert outcome.message == "from the worker"


def test_close_answers_waiting_requests_with_a_failure() -> None:
    trigger = RelocalizationTrigger("on_demand", 3)
    request = trigger.request(0.0, timeout_s=10.0)
    trigger.close("the node is shutting down")
    outcome = request.wait(0.0)
    assert outcome is not None
    assert not outcome.success
    assert outcome.message == "the node is shutting down"
    assert not trigger.is_open(1.0)


def test_reconfiguring_shortens_an_open_window_and_rejects_bad_values() -> None:
    trigger = RelocalizationTrigger("on_demand", 5)
    trigger.request(0.0, timeout_s=10.0)
    trigger.configure("on_demand", 1)
    trigger.accepted("only one now")
    assert not trigger.is_open(1.0)
    trigger.configure("continuous", 1)
    assert trigger.admit(1.0)
    with pytest.raises(ValueError, match="trigger must be one of continuous, on_demand"):
        trigger.configure("sometimes", 1)
    with pytest.raises(ValueError, match="frames_per_request must be >= 1"):
        RelocalizationTrigger("on_demand", 0)


# --- rate limit ----------------------------------------------------------------------------


def test_rate_limiter_passes_one_event_per_period() -> None:
    limiter = RateLimiter()
    passed = [t for t in np.arange(0.0, 10.0, 0.5) if limiter.try_acquire(float(t), 3.0)]
    assert passed == [0.0, 3.0, 6.0, 9.0]
    assert RateLimiter().try_acquire(-5.0, 1e9)  # the first always passes


# --- confidence ----------------------------------------------------------------------------


def covariance(position_std_m: float, rotation_std_deg: float) -> np.ndarray:
    rotation_std = math.radians(rotation_std_deg)
    return np.diag([position_std_m**2] * 3 + [rotation_std**2] * 3)


def test_confidence_gate_checks_inliers_then_the_worst_directions() -> None:
    gate = ConfidenceGate(min_inliers=100, max_position_std_m=0.1, max_rotation_std_deg=2.0)
    assert gate.problem(100, covariance(0.05, 1.0)) is None
    assert gate.problem(99, covariance(0.05, 1.0)) == "99 inliers < 100"
    # One bad direction is enough, even when the others are tight (largest eigenvalue).
    cov = covariance(0.01, 0.5)
    cov[0, 0] = 0.15**2
    assert gate.problem(500, cov) == "position std 0.150 m > 0.1 m"
    cov = covariance(0.01, 0.5)
    cov[5, 5] = math.radians(3.0) ** 2
    assert gate.problem(500, cov) == "rotation std 3.00 deg > 2.0 deg"
    # Correlated x and y: the worst direction is the diagonal, larger than either variance.
    cov = covariance(0.01, 0.5)
    cov[:2, :2] = [[0.008, 0.0075], [0.0075, 0.008]]  # each axis: std 0.089 m; diagonal 0.124
    assert gate.problem(500, cov) == "position std 0.124 m > 0.1 m"


# --- prior ---------------------------------------------------------------------------------


SECOND = 1_000_000_000
PRIOR = PosePrior(make_transform(rot_z(30.0), [2.0, 1.0, 0.0]), stamp_ns=100 * SECOND)
GATE = PriorGate(max_distance_m=1.0, max_rotation_deg=45.0, max_age_s=60.0)


def test_prior_gate_accepts_near_and_rejects_far_poses() -> None:
    near = make_transform(rot_z(50.0), [2.6, 1.8, 0.0])  # 1.0 m, 20 deg away
    verdict = GATE.check(PRIOR, near, 110 * SECOND)
    assert verdict.accepted
    assert verdict.message == "1.00 m and 20.0 deg from the prior (gate 1.0 m, 45.0 deg)"
    far = make_transform(rot_z(30.0), [2.0, 2.5, 0.2])
    verdict = GATE.check(PRIOR, far, 110 * SECOND)
    assert not verdict.accepted
    assert verdict.message.startswith("1.51 m and 0.0 deg from the prior")
    turned = make_transform(rot_z(-20.0), [2.0, 1.0, 0.0])
    assert not GATE.check(PRIOR, turned, 110 * SECOND).accepted  # 50 deg > 45


def test_prior_gate_without_a_recent_prior_accepts_and_says_why() -> None:
    far = make_transform(np.eye(3), [50.0, 0.0, 0.0])
    assert GATE.check(None, far, 0).message == "no prior received"
    stale = GATE.check(PRIOR, far, 161 * SECOND)
    assert stale.accepted
    assert stale.message == "prior not applied: 61.0 s old > 60.0 s"
    assert not GATE.check(PRIOR, far, 159 * SECOND).accepted
    assert not GATE.check(PRIOR, far, 90 * SECOND).accepted  # a prior newer than the image


def test_an_unknown_body_pose_is_rejected_only_when_a_prior_applies() -> None:
    unknown = GATE.check(PRIOR, None, 110 * SECOND)
    assert not unknown.accepted
    assert unknown.message == "the body's pose is unknown: cannot compare with the prior"
    assert GATE.check(None, None, 110 * SECOND).accepted
    assert GATE.check(PRIOR, None, 200 * SECOND).accepted  # stale
