"""The relocalization node's ``/diagnostics`` status: level, message and key values.

Levels (``diagnostic_msgs/DiagnosticStatus``):

- ERROR: no map is loaded (``map_path`` empty, or the map failed to load);
- WARN: no image received yet, or the latest event is a failure (bad image, missing or
  inconsistent camera_info, too few inliers, a pose rejected by the prior, a rejected map, a
  TF lookup that failed, no TF to the base frame for initialpose), i.e. there was an error
  and no accepted pose since; or image frames were lost in transport in the last seconds
  (:mod:`seqace_ros.ros.transport_stats`);
- OK: the latest processed frame gave a published pose, or (``trigger: on_demand``) the node
  is idle between ``~/relocalize`` calls and the latest event is not a failure.

The message names the cause; the values carry the counters (failures also by kind,
``frames_failed_image``, ``frames_failed_inliers``, ... for each kind seen) and the running
figures of :class:`~seqace_ros.pipeline.localization.stream.StatsSnapshot`, and the
localization mode's status of its last frame (``FrameStatus.values()``: ``source`` of the
pose, and in sequence mode ``tracked_points``, ``local_points``, ``reset_reason``, ...).
Frames lost in transport (never received) are counted apart from ``frames_dropped`` (received
while the node was busy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

from seqace_ros.pipeline.localization.stream import StatsSnapshot
from seqace_ros.ros.conversions import time_msg
from seqace_ros.ros.transport_stats import TransportSnapshot

STATUS_NAME = "seqace_ros: relocalization"


@dataclass(frozen=True)
class NodeState:
    """What the diagnostics report besides the stream statistics.

    Attributes:
        map_path: the map in use ("" when none).
        map_problem: why there is no map in use ("" when there is one).
        mode: localization mode.
        tf_backend: the TF implementation in use.
        image_topic: resolved image topic (for messages).
        mode_status: the mode's status of its last frame, as key values (empty: no map).
        time_jumps: times the image stamps jumped back (TF and sequence state cleared).
        transport: frames lost before they reached the image subscription (None: not counted).
        trigger: the trigger's state (``continuous``, ``idle: ...``, ``localizing: ...``).
        idle: on_demand and no ~/relocalize window open.
        frames_ignored: frames dropped on arrival while idle (never decoded).
        relocalize_requests: ~/relocalize calls so far.
        tf: the map TF edge of the last pose and why that child frame (or why none).
        initial_pose: what became of the last pose for initialpose.
        initial_poses_published: initialpose messages so far.
        prior: the last pose's comparison with the prior (or the prior's state).
        prior_rejections: poses rejected for being too far from the prior.
        camera_info: how the last frame was paired with a camera_info (exact stamp, stamped
            before the image, the latest as a fallback, or refused) and why
            (:mod:`seqace_ros.ros.camera_info_pairing`).
        camera_info_fallbacks: frames paired with the latest camera_info because none was
            stamped within camera_info_tolerance_s before the image.
    """

    map_path: str
    map_problem: str
    mode: str
    tf_backend: str
    image_topic: str
    mode_status: Mapping[str, str] = field(default_factory=dict)
    time_jumps: int = 0
    transport: TransportSnapshot | None = None
    trigger: str = "continuous"
    idle: bool = False
    frames_ignored: int = 0
    relocalize_requests: int = 0
    tf: str = ""
    initial_pose: str = ""
    initial_poses_published: int = 0
    prior: str = ""
    prior_rejections: int = 0
    camera_info: str = ""
    camera_info_fallbacks: int = 0


def _format(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.3f}"


def assess(stats: StatsSnapshot, state: NodeState) -> tuple[bytes, str]:
    """Level and message for the current stats and node state (see the module docstring)."""
    if state.map_problem:
        return DiagnosticStatus.ERROR, f"no map loaded: {state.map_problem}"
    error_is_latest = bool(stats.last_error) and not (
        stats.last_success_age_s <= stats.last_error_age_s
    )
    if error_is_latest:
        return DiagnosticStatus.WARN, stats.last_error
    if state.idle:
        return DiagnosticStatus.OK, "on_demand: idle, waiting for ~/relocalize"
    if stats.received == 0:
        return DiagnosticStatus.WARN, f"no image received yet on {state.image_topic}"
    if stats.succeeded == 0:
        return DiagnosticStatus.WARN, "no pose published yet"
    if state.transport is not None and state.transport.problem():
        return DiagnosticStatus.WARN, state.transport.problem()
    return DiagnosticStatus.OK, f"localizing at {stats.rate_hz:.1f} Hz"


def diagnostic_array(
    stats: StatsSnapshot, state: NodeState, hardware_id: str, stamp_ns: int
) -> DiagnosticArray:
    """The ``DiagnosticArray`` to publish on ``/diagnostics``."""
    level, message = assess(stats, state)
    values = {
        "map_path": state.map_path,
        "mode": state.mode,
        "tf_backend": state.tf_backend,
        "frames_received": str(stats.received),
        "frames_dropped": str(stats.dropped),
        "frames_processed": str(stats.processed),
        "poses_published": str(stats.succeeded),
        "frames_failed": str(stats.failed),
        **{f"frames_failed_{kind}": str(count) for kind, count in stats.failed_by_kind.items()},
        "rate_hz": _format(stats.rate_hz),
        "latency_p50_ms": _format(stats.latency_p50_ms),
        "latency_p95_ms": _format(stats.latency_p95_ms),
        "inlier_ratio": _format(stats.inlier_ratio),
        "last_error": stats.last_error,
        "last_error_age_s": _format(stats.last_error_age_s),
        "last_pose_age_s": _format(stats.last_success_age_s),
        "time_jumps_back": str(state.time_jumps),
        **(state.transport.values() if state.transport is not None else {}),
        "trigger": state.trigger,
        "frames_ignored": str(state.frames_ignored),
        "relocalize_requests": str(state.relocalize_requests),
        "tf": state.tf,
        "initial_pose": state.initial_pose,
        "initial_poses_published": str(state.initial_poses_published),
        "prior": state.prior,
        "prior_rejections": str(state.prior_rejections),
        "camera_info_pairing": state.camera_info,
        "camera_info_fallbacks": str(state.camera_info_fallbacks),
        **state.mode_status,
    }
    status = DiagnosticStatus(
        level=level,
        name=STATUS_NAME,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=key, value=value) for key, value in values.items()])
    return DiagnosticArray(header=Header(stamp=time_msg(stamp_ns)), status=[status])
