"""The node in sequence mode over real DDS: poses equal the offline SequenceLocalizer's.

Frames are fed one at a time (the next after the node answered), so the node sees the same
stream as the offline sequence localizer; ``/diagnostics`` carries the sequence status;
``~/reset`` clears the sequence state.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ros_harness import TopicCollector, diagnostic_values, import_ros_module, wait_for

import_ros_module("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseWithCovarianceStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from seqace_ros.core.geometry import pose_error  # noqa: E402
from seqace_ros.core.map_file import load_map  # noqa: E402
from seqace_ros.datasets.bag_messages import transform_from_pose_msg  # noqa: E402
from seqace_ros.datasets.folder import FolderDataset  # noqa: E402
from seqace_ros.pipeline.localization.modes import create_localizer  # noqa: E402
from seqace_ros.pipeline.localization.single import PoseSource  # noqa: E402
from seqace_ros.ros import conversions  # noqa: E402
from seqace_ros.ros.params import PARAMETER_SPECS, RelocalizationParams  # noqa: E402
from seqace_ros.ros.relocalization_node import MAP_READY_LOG, NODE_NAME  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.real_data, pytest.mark.slow]

FRAMES = range(500, 512)
PARAMETERS = {"device": "cpu", "mode": "sequence", "sequence_length": 5,
              "qos_reliability": "reliable", "diagnostics_period_s": 0.25}


def _processed(diagnostics: TopicCollector) -> int:
    messages = diagnostics.messages
    if not messages:
        return 0
    return int(diagnostic_values(messages[-1])["frames_processed"])


def test_sequence_mode_matches_offline_and_resets(
    start_ros_process, ros_node, dev_map_path: Path, dev_data: Path
) -> None:
    values = {spec.name: spec.default for spec in PARAMETER_SPECS}
    values.update(PARAMETERS)
    config = RelocalizationParams(**values).mode_config()
    dataset = FolderDataset(dev_data)
    frames = [dataset[i] for i in FRAMES]
    stamps = [5000 * 10**9 + k * 200_000_000 for k in range(len(frames))]
    offline = create_localizer(load_map(dev_map_path), config, "cpu")
    expected = [offline.localize(f.image_rgb, f.intrinsics, stamp_ns=s)
                for f, s in zip(frames, stamps, strict=True)]
    assert sum(r.success for r in expected) >= len(frames) // 2
    assert offline.status.source is PoseSource.SEQUENCE
    assert offline.status.tracked_points > 0

    process = start_ros_process(
        "seqace_ros.ros.relocalization_node", {**PARAMETERS, "map_path": str(dev_map_path)},
        name="relocalization_node_sequence",
        ros_args=["-r", "image:=/seq/image", "-r", "camera_info:=/seq/camera_info"],
    )
    process.wait_for_log(MAP_READY_LOG, timeout_s=120)
    assert "(sequence mode)" in process.log_text()
    image_pub = ros_node.create_publisher(Image, "/seq/image", 5)
    info_pub = ros_node.create_publisher(CameraInfo, "/seq/camera_info", 5)
    poses = TopicCollector(ros_node, PoseWithCovarianceStamped, "/pose", 100)
    diagnostics = TopicCollector(ros_node, DiagnosticArray, "/diagnostics", 100)
    reset = ros_node.create_client(Trigger, f"/{NODE_NAME}/reset")
    wait_for(lambda: image_pub.get_subscription_count() > 0, 30, "the node's subscription")
    info_pub.publish(conversions.camera_info_msg(frames[0].intrinsics, stamps[0], "camera"))
    time.sleep(0.5)

    for k, (frame, stamp_ns) in enumerate(zip(frames, stamps, strict=True)):
        info_pub.publish(conversions.camera_info_msg(frame.intrinsics, stamp_ns, "camera"))
        image_pub.publish(
            conversions.image_msg_from_rgb(frame.image_rgb, "rgb8", stamp_ns, "camera"))
        wait_for(lambda k=k: _processed(diagnostics) >= k + 1, 60, f"frame {k} processed")
    by_stamp = {conversions.header_stamp_ns(m.header): m for m in poses.messages}
    for result, stamp_ns in zip(expected, stamps, strict=True):
        if not result.success:
            assert stamp_ns not in by_stamp
            continue
        translation_m, rotation_deg = pose_error(
            transform_from_pose_msg(by_stamp[stamp_ns].pose.pose), result.T_world_cam)
        assert translation_m < 1e-3
        assert rotation_deg < 0.1
    # the status of the last frame reaches /diagnostics
    last = diagnostic_values(diagnostics.messages[-1])
    assert last["frames_processed"] == str(len(frames))
    assert last["mode"] == "sequence"
    assert last["source"] == offline.status.source.value
    assert int(last["tracked_points"]) > 0
    assert int(last["local_points"]) > 0
    assert last["reset_reason"] == offline.status.reset_reason

    future = reset.call_async(Trigger.Request())
    wait_for(future.done, 30, "the ~/reset reply")
    assert future.result().success
    assert "the sequence mode's state is cleared" in future.result().message
    assert process.is_running()
