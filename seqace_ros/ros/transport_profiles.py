"""Image transport profiles: how the relocalization node subscribes to the camera.

``ros2 launch seqace_ros relocalization.launch.py transport:=NAME`` applies one (over the
parameters file); an empty ``transport`` keeps the file's ``image_transport`` and
``qos_reliability`` (the node's defaults: raw, reliable). Measured over loopback on the 2-core
development machine (``bench/dds_images.py``, README "Large images over DDS"): best effort lost
most raw 640x480 bgr8 frames (0.9 MB, sent as UDP fragments), reliable lost none, and JPEG
frames (about 55 kB, one datagram) arrived with either. No ROS import: the launch file and the
tests use it alike.
"""

from __future__ import annotations

#: Profile name -> the node parameters it sets.
TRANSPORT_PROFILES: dict[str, dict[str, str]] = {
    # Raw images, reliable QoS: every frame arrives; the camera must publish reliable
    # (most drivers and image_transport do by default).
    "raw_reliable": {"image_transport": "raw", "qos_reliability": "reliable"},
    # JPEG/PNG on <image>/compressed, best effort: matches any publisher; small frames.
    "compressed": {"image_transport": "compressed", "qos_reliability": "best_effort"},
    # Raw images, sensor-data QoS: for best-effort-only cameras; large frames get lost and
    # the node counts them (frames_lost_in_transport in /diagnostics).
    "raw_best_effort": {"image_transport": "raw", "qos_reliability": "best_effort"},
}


def profile_parameters(name: str) -> dict[str, str]:
    """The node parameters of profile ``name`` ({} for "", which keeps the params file's).

    Raises:
        ValueError: an unknown profile (the message lists the known ones).
    """
    if not name:
        return {}
    if name not in TRANSPORT_PROFILES:
        raise ValueError(f"unknown transport profile {name!r}; choose one of "
                         f"{', '.join(TRANSPORT_PROFILES)} (or empty: the params file's)")
    return dict(TRANSPORT_PROFILES[name])
