"""The relocalization node under hostile input, over real DDS on loopback (issue 16, "Live node").

Each test runs the node in this process on a tiny random-weight map (it never finds a pose,
which these tests do not need: they check what the node refuses, what it reports and that
it keeps running) and talks to it from a tester node: parameter service, image and
camera_info topics, ``/diagnostics`` and ``/rosout``. A callback that raises stops the
spinner, and the test fails when the spinner is stopped.

- ``map_path`` set at run time to hostile files: the change is rejected with the reason, the
  old map stays in use, the reason reaches the log and ``/diagnostics``; a good map still
  swaps in afterwards.
- camera_info with non-finite or implausible distortion, skew, or 70000 x 70000 pixels:
  refused with the reason; a good camera_info afterwards is used again.
- rectified streams: ``P`` is used and the raw camera's distortion is not applied.
- a camera change: each image gets the camera_info of its stamp, not the newest one.
- images over ``max_image_pixels`` (raw, and a PNG that decompresses to 12000 x 12000) and
  16UC1 depth on the image topic: refused with the reason.
- image stamps jumping back (a bag played in a loop): logged once, TF buffer cleared.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from ros_harness import (
    BackgroundSpinner,
    TopicCollector,
    import_ros_module,
    wait_diagnostic_status,
    wait_for,
)

rclpy = import_ros_module("rclpy")
import_ros_module("tf2_msgs.msg")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rcl_interfaces.msg import Log  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from seqace_ros.core.camera import Intrinsics  # noqa: E402
from seqace_ros.core.encoder import xfeat_weights_path  # noqa: E402
from seqace_ros.core.file_hash import file_sha256  # noqa: E402
from seqace_ros.core.geometry import make_transform  # noqa: E402
from seqace_ros.core.head import HeadConfig, SceneHead  # noqa: E402
from seqace_ros.core.map_file import SceneMap, save_map  # noqa: E402
from seqace_ros.ros import conversions  # noqa: E402
from seqace_ros.ros.relocalization_node import (  # noqa: E402
    MAP_READY_LOG,
    NODE_NAME,
    TIME_JUMP_LOG,
    RelocalizationNode,
)
from seqace_ros.ros.tf_interface import TF_QOS  # noqa: E402

pytestmark = pytest.mark.ros

CAMERA_FRAME = "camera"
SMALL = Intrinsics(250.0, 250.0, 159.5, 119.5, 320, 240)
IMAGE_RGB = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
ROSOUT = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.TRANSIENT_LOCAL)
NODE_PARAMETERS: dict[str, Any] = {
    "device": "cpu",
    "qos_reliability": "reliable",
    "diagnostics_period_s": 0.2,
    "num_keypoints": 64,
    "publish_inliers": False,
}


def write_map(path: Path, weight_hash: str | None = None, seed: int = 0,
              nan_weight: bool = False) -> Path:
    """A map for this installation's encoder with random head weights (one NaN if asked)."""
    torch.manual_seed(seed)
    head = SceneHead(HeadConfig(in_channels=192, width=16, num_blocks=0))
    scene_map = SceneMap.from_head(
        head, "xfeat-ms192", weight_hash or file_sha256(xfeat_weights_path()), 480)
    if nan_weight:
        scene_map.state_dict["out2.weight"][3, 4] = math.nan
    return save_map(scene_map, path)


@dataclass
class LiveNode:
    """The node under test and the tester's side of the conversation."""

    node: RelocalizationNode
    image_pub: Any
    camera_info_pub: Any
    tf_pub: Any
    diagnostics: TopicCollector[DiagnosticArray]
    rosout: TopicCollector[Log]
    parameters: AsyncParameterClient

    def logs(self, text: str) -> list[str]:
        """The node's log lines (from /rosout) that contain ``text``."""
        return [m.msg for m in self.rosout.messages if m.name == NODE_NAME and text in m.msg]

    def wait_log(self, text: str, timeout_s: float = 30.0) -> str:
        return wait_for(lambda: next(iter(self.logs(text)), None), timeout_s,
                        f"{text!r} in the node's log")

    def set_map_path(self, value: str, timeout_s: float = 30.0) -> Any:
        future = self.parameters.set_parameters([Parameter("map_path", value=value)])
        wait_for(future.done, timeout_s, f"the reply to setting map_path={value!r}")
        return future.result().results[0]

    def wait_status(self, predicate: Callable[[DiagnosticStatus], bool], what: str,
                    timeout_s: float = 30.0) -> DiagnosticStatus:
        """The first /diagnostics status from now on that satisfies ``predicate``."""
        return wait_diagnostic_status(self.diagnostics, len(self.diagnostics.messages),
                                      predicate, what, timeout_s)

    def wait_warning(self, reason: str) -> DiagnosticStatus:
        return self.wait_status(
            lambda s: s.level >= DiagnosticStatus.WARN and reason in s.message,
            f"a diagnostics WARN/ERROR containing {reason!r}")

    def send(self, info: CameraInfo | None, image: Image | CompressedImage | None) -> None:
        """Publish camera_info (unless None), then the image (unless None)."""
        if info is not None:
            self.camera_info_pub.publish(info)
        if image is not None:
            self.image_pub.publish(image)


@contextmanager
def live_node(**parameters: Any) -> Iterator[LiveNode]:
    """The node (in this process) with ``parameters``, its map loaded, and a tester node."""
    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    spinner = BackgroundSpinner(context)
    node: RelocalizationNode | None = None
    try:
        tester = spinner.create_node("live_node_tester")
        rosout = TopicCollector(tester, Log, "/rosout", ROSOUT)
        values = {**NODE_PARAMETERS, **parameters}
        node = RelocalizationNode(
            context=context,
            parameter_overrides=[Parameter(name, value=value) for name, value in values.items()],
        )
        spinner.add_node(node)
        compressed = values.get("image_transport") == "compressed"
        io = LiveNode(
            node=node,
            image_pub=tester.create_publisher(CompressedImage if compressed else Image,
                                              "image/compressed" if compressed else "image",
                                              RELIABLE),
            camera_info_pub=tester.create_publisher(CameraInfo, "camera_info", RELIABLE),
            tf_pub=tester.create_publisher(TFMessage, "/tf", TF_QOS),
            diagnostics=TopicCollector(tester, DiagnosticArray, "/diagnostics", 100),
            rosout=rosout,
            parameters=AsyncParameterClient(tester, NODE_NAME),
        )
        spinner.start()
        if values.get("map_path"):
            io.wait_log(MAP_READY_LOG, timeout_s=60)
        assert io.parameters.wait_for_services(timeout_sec=30)
        wait_for(lambda: io.image_pub.get_subscription_count() > 0, 30, "the image subscription")
        wait_for(lambda: io.camera_info_pub.get_subscription_count() > 0, 30,
                 "the camera_info subscription")
        yield io
    finally:
        try:
            spinner.stop()  # re-raises what a callback raised
        finally:
            if node is not None:
                node.destroy_node()
            context.try_shutdown()


def camera_info(intrinsics: Intrinsics = SMALL, stamp_ns: int = 0, **fields: Any) -> CameraInfo:
    msg = conversions.camera_info_msg(intrinsics, stamp_ns, CAMERA_FRAME)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


def image(stamp_ns: int = 0, **fields: Any) -> Image:
    msg = conversions.image_msg_from_rgb(IMAGE_RGB, "bgr8", stamp_ns, CAMERA_FRAME)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


def expect_localization_attempt(io: LiveNode, stamp_ns: int) -> None:
    """A good camera_info and image reach the localizer (a random map finds no pose)."""
    io.send(camera_info(stamp_ns=stamp_ns), image(stamp_ns))
    io.wait_warning("no pose:")


# --- map_path at run time ------------------------------------------------------------------


def _header_file(path: Path, header: str) -> Path:
    data = header.encode()
    path.write_bytes(struct.pack("<Q", len(data)) + data)
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


DEEP = "[" * 100_000 + "]" * 100_000
HOSTILE_MAPS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("nested metadata", lambda d: _header_file(
        d / "nested.map", '{"__metadata__": {"seqace_map": "' + DEEP + '"}}'),
     "corrupt map metadata"),
    ("metadata a list", lambda d: _header_file(d / "list.map", '{"__metadata__": [1, 2]}'),
     "without seqace map metadata"),
    ("metadata a number", lambda d: _header_file(
        d / "number.map", '{"__metadata__": {"seqace_map": 5}}'), "without seqace map metadata"),
    ("NaN weight", lambda d: write_map(d / "nan.map", nan_weight=True),
     "tensor 'out2.weight' holds 1 non-finite values"),
    ("a FIFO", lambda d: _fifo(d / "map.fifo"), "a FIFO, not a regular file"),
    ("another encoder's weights", lambda d: write_map(d / "other.map", weight_hash="ab" * 32),
     "map was built with encoder 'xfeat-ms192' (weights abababababab)"),
    ("/dev/zero", lambda d: Path("/dev/zero"), "a character device, not a regular file"),
]


def test_hostile_map_paths_are_rejected_and_the_old_map_stays(tmp_path: Path) -> None:
    good = write_map(tmp_path / "good.map")
    with live_node(map_path=str(good)) as io:
        for label, make, reason in HOSTILE_MAPS:
            bad = make(tmp_path)
            result = io.set_map_path(str(bad))
            assert not result.successful, label
            assert reason in result.reason, (label, result.reason)
            assert f"keeping {good}" in result.reason, (label, result.reason)
            status = io.wait_status(
                lambda s, bad=bad, reason=reason: s.level == DiagnosticStatus.WARN
                and f"rejected map_path={str(bad)!r}" in s.message and reason in s.message,
                f"diagnostics WARN: {label} rejected")
            assert diagnostic_values_of(status)["map_path"] == str(good), label
            io.wait_log(f"rejected map_path={str(bad)!r}")
        # Still running, on the old map, and a good map still swaps in.
        expect_localization_attempt(io, 10**9)
        other = write_map(tmp_path / "other_good.map", seed=1)
        assert io.set_map_path(str(other)).successful
        io.wait_log(f"{MAP_READY_LOG} {other}")
        io.wait_status(lambda s: diagnostic_values_of(s)["map_path"] == str(other),
                       "the new map in diagnostics")


def diagnostic_values_of(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


# --- camera_info ---------------------------------------------------------------------------


def _with_d(d: list[float], **fields: Any) -> CameraInfo:
    return camera_info(d=d, **fields)


def _with_k(index: int, value: float) -> CameraInfo:
    msg = camera_info()
    k = list(msg.k)
    k[index] = value
    msg.k = k
    return msg


HOSTILE_CAMERA_INFO: list[tuple[str, Callable[[], CameraInfo], str]] = [
    ("NaN distortion", lambda: _with_d([0.1, math.nan, 0.0, 0.0, 0.0]),
     "distortion coefficients must be finite"),
    ("Inf distortion", lambda: _with_d([math.inf, 0.0, 0.0, 0.0, 0.0]),
     "distortion coefficients must be finite"),
    ("k1 = 50", lambda: _with_d([50.0, 0.0, 0.0, 0.0, 0.0]),
     "implausible distortion plumb_bob [50.0, 0.0, 0.0, 0.0, 0.0]"),
    ("skew", lambda: _with_k(1, 3.0), "camera matrix K has skew 3.0"),
    ("K[8] = 2", lambda: _with_k(8, 2.0), "camera matrix K must be row-major"),
    ("70000 x 70000", lambda: _with_d([0.1, 0.0, 0.0, 0.0, 0.0], width=70000, height=70000),
     "images of 70000x70000 = 4900000000 pixels are more than the 50000000 allowed"),
]


def test_hostile_camera_info_is_refused_with_the_reason(tmp_path: Path) -> None:
    with live_node(map_path=str(write_map(tmp_path / "m.map"))) as io:
        expect_localization_attempt(io, 10**9)
        for k, (label, make, reason) in enumerate(HOSTILE_CAMERA_INFO):
            stamp_ns = (2 + 2 * k) * 10**9
            io.send(make(), None)
            io.wait_status(lambda s, reason=reason: s.level == DiagnosticStatus.WARN
                           and "unusable camera_info" in s.message and reason in s.message,
                           f"diagnostics WARN: {label} refused")
            wait_for(lambda reason=reason: any("unusable camera_info" in line
                                               for line in io.logs(reason)),
                     10, f"the log line: {label} refused")
            io.send(None, image(stamp_ns))  # the frame is skipped for the same reason
            io.wait_warning(reason)
            expect_localization_attempt(io, stamp_ns + 10**9)  # recovered


def test_rectified_stream_uses_P_and_not_the_raw_distortion(tmp_path: Path) -> None:
    raw_distortion = [50.0, 0.0, 0.0, 0.0, 0.0]  # implausible: refused on a raw stream
    p = [240.0, 0.0, 160.0, 0.0, 0.0, 240.0, 120.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    with live_node(map_path=str(write_map(tmp_path / "m.map")), image_is_rectified=True) as io:
        io.send(camera_info(stamp_ns=10**9, d=raw_distortion, p=p), image(10**9))
        io.wait_warning("no pose:")  # D ignored: the frame reached the localizer
        skewed = list(p)
        skewed[1] = 2.0
        # Stamped as the image (the frame is paired with it, not with the older good one).
        io.send(camera_info(stamp_ns=2 * 10**9, p=skewed), image(2 * 10**9))
        io.wait_warning("projection matrix P has skew 2.0")


def test_each_image_gets_the_camera_info_of_its_stamp(tmp_path: Path) -> None:
    """The camera switches from 320x240 to 640x480 and the camera_info of the switch arrives
    before the last 320x240 image is processed: that image still gets its own camera_info (it
    used to meet the newest one and fail for a size mismatch, or with a camera of the same
    size, be localized with the wrong intrinsics); an image that no camera_info matches after
    the change is refused with the reason."""
    big = SMALL.resized(640, 480)
    big_image = conversions.image_msg_from_rgb(np.zeros((480, 640, 3), np.uint8), "bgr8",
                                               0, CAMERA_FRAME)
    with live_node(map_path=str(write_map(tmp_path / "m.map"))) as io:
        processed = 0

        def expect(stamp_ns: int, image_msg: Image, pairing: str) -> DiagnosticStatus:
            nonlocal processed
            processed += 1
            image_msg.header.stamp = conversions.time_msg(stamp_ns)
            io.send(None, image_msg)
            status = io.wait_status(
                lambda s: int(diagnostic_values_of(s)["frames_processed"]) >= processed,
                f"frame {processed} processed")
            assert diagnostic_values_of(status)["camera_info_pairing"].startswith(pairing)
            return status

        history = io.node._cameras  # internal: wait until both camera_info are in
        io.send(camera_info(SMALL, 10**9), None)
        io.send(camera_info(big, 10**9 + 10**8), None)
        wait_for(lambda: len(history) == 2, 10, "both camera_info received")
        expect(10**9, image(10**9), "exact: ")
        status = expect(10**9 + 10**8, big_image, "exact: ")
        values = diagnostic_values_of(status)
        assert "frames_failed_size" not in values, values
        assert "frames_failed_camera_info" not in values, values
        assert "no pose:" in status.message  # both reached the (random-weight) localizer
        # Stamped 0.05 s after the last camera_info: the newest before it (the 640x480 one).
        expect(10**9 + 15 * 10**7, big_image, "before: camera_info stamped 0.050 s before")
        # Stamped 5 s later, with two cameras among the camera_info kept: refused.
        status = expect(6 * 10**9, big_image, "refused: ")
        assert "cannot tell which camera took the image" in status.message
        assert diagnostic_values_of(status)["frames_failed_camera_info"] == "1"


# --- images --------------------------------------------------------------------------------


def test_oversized_and_depth_images_are_refused(tmp_path: Path) -> None:
    with live_node(map_path=str(write_map(tmp_path / "m.map")), max_image_pixels=100_000) as io:
        expect_localization_attempt(io, 10**9)
        big = conversions.image_msg_from_rgb(np.zeros((480, 640, 3), np.uint8), "rgb8",
                                             2 * 10**9, CAMERA_FRAME)
        io.send(None, big)
        io.wait_warning("rgb8 image of 640x480 = 307200 pixels is more than the 100000 allowed")
        expect_localization_attempt(io, 3 * 10**9)
        depth = image(4 * 10**9, encoding="16UC1", step=640,
                      data=np.full((240, 320), 1500, "<u2").tobytes())
        io.send(None, depth)
        io.wait_warning("image encoding '16UC1' is not colour or mono intensity")
        expect_localization_attempt(io, 5 * 10**9)
        io.send(camera_info(SMALL.resized(640, 480)), None)
        io.wait_warning("images of 640x480 = 307200 pixels are more than the 100000 allowed")


def _png_of_zeros(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_png_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    with live_node(map_path=str(write_map(tmp_path / "m.map")),
                   image_transport="compressed") as io:
        bomb = CompressedImage(format="mono8; png compressed mono8",
                               data=_png_of_zeros(12000, 12000))
        bomb.header.frame_id = CAMERA_FRAME
        io.send(camera_info(), bomb)
        io.wait_warning("compressed image of 12000x12000 = 144000000 pixels is more than the "
                        "50000000 allowed (max_image_pixels); refused before decoding")


# --- time going back -----------------------------------------------------------------------


def _publish_odom(io: LiveNode, stamps_ns: range) -> None:
    for stamp_ns in stamps_ns:
        T = make_transform(np.eye(3), [1e-9 * stamp_ns, 0.0, 0.0])
        io.tf_pub.publish(TFMessage(transforms=[
            conversions.transform_stamped_msg(T, "odom", CAMERA_FRAME, stamp_ns)]))


def test_time_jumping_back_clears_tf_and_is_logged_once(tmp_path: Path) -> None:
    second = 10**9
    with live_node(map_path=str(write_map(tmp_path / "m.map"))) as io:
        tf = io.node._tf  # the node's TF buffer (internal): asked directly below
        _publish_odom(io, range(1000 * second, 1001 * second, second // 10))
        processed = 0

        def process(stamp_ns: int) -> None:
            nonlocal processed
            processed += 1
            io.send(camera_info(stamp_ns=stamp_ns), image(stamp_ns))
            io.wait_status(lambda s: int(diagnostic_values_of(s)["frames_processed"])
                           >= processed, f"frame {processed} processed")

        for stamp_ns in (1000 * second, 1000 * second + second // 2):
            process(stamp_ns)
        tf.lookup("odom", CAMERA_FRAME, 1000 * second + second // 2, timeout_s=5.0)
        # The bag loops: stamps restart at 10 s. TF first, as a bag plays it.
        _publish_odom(io, range(10 * second, 11 * second, second // 10))
        for stamp_ns in (10 * second, 10 * second + second // 2, 11 * second):
            process(stamp_ns)
        io.wait_log(TIME_JUMP_LOG)
        status = io.wait_status(lambda s: "time_jumps_back" in diagnostic_values_of(s),
                                "the time jump count")
        assert diagnostic_values_of(status)["time_jumps_back"] == "1"
        assert len(io.logs(TIME_JUMP_LOG)) == 1, io.logs(TIME_JUMP_LOG)
        # TF of the second pass is buffered again (before the clear it was pruned on arrival).
        _publish_odom(io, range(11 * second, 12 * second, second // 10))
        T = tf.lookup("odom", CAMERA_FRAME, 11 * second + second // 2, timeout_s=5.0)
        np.testing.assert_allclose(T[:3, 3], [11.5, 0.0, 0.0], atol=1e-6)
