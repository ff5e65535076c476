"""TF over tf2_msgs topics (the implementation used where tf2_ros is not installed)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from ros_harness import BackgroundSpinner, TopicCollector, import_ros_module, wait_for

import_ros_module("rclpy")
import_ros_module("tf2_msgs.msg")

from tf2_msgs.msg import TFMessage  # noqa: E402

from seqace_ros.core.geometry import make_transform  # noqa: E402
from seqace_ros.core.transform_tree import TransformError  # noqa: E402
from seqace_ros.ros import conversions  # noqa: E402
from seqace_ros.ros.tf_interface import (  # noqa: E402
    TF_QOS,
    TF_STATIC_QOS,
    StampedTransform,
    TopicTransforms,
    create_transform_interface,
)

pytestmark = pytest.mark.ros


def translation(x: float, y: float = 0.0, z: float = 0.0) -> np.ndarray:
    return make_transform(np.eye(3), [x, y, z])


def tf_message(parent: str, child: str, stamp_ns: int, T: np.ndarray) -> TFMessage:
    return TFMessage(transforms=[conversions.transform_stamped_msg(T, parent, child, stamp_ns)])


def test_factory_picks_the_topic_backend_without_tf2_ros(ros_spinner: BackgroundSpinner) -> None:
    node = ros_spinner.create_node("tf_factory")
    transforms = create_transform_interface(node)
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        assert isinstance(transforms, TopicTransforms)
    else:
        assert transforms.backend == "tf2_ros"


def test_lookup_interpolates_composes_and_waits_for_data(ros_spinner: BackgroundSpinner) -> None:
    broadcaster = ros_spinner.create_node("tf_broadcaster")
    listener = ros_spinner.create_node("tf_listener")
    transforms = TopicTransforms(listener)
    dynamic = broadcaster.create_publisher(TFMessage, "/tf", TF_QOS)
    static = broadcaster.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
    wait_for(lambda: dynamic.get_subscription_count() > 0, 10, "the listener on /tf")
    static.publish(tf_message("base", "camera", 0, translation(0.0, 0.0, 1.0)))
    dynamic.publish(tf_message("odom", "base", 1_000_000_000, translation(1.0)))
    dynamic.publish(tf_message("odom", "base", 1_100_000_000, translation(2.0)))

    T = transforms.lookup("odom", "camera", 1_050_000_000, timeout_s=5.0)
    np.testing.assert_allclose(T[:3, 3], [1.5, 0.0, 1.0], atol=1e-9)
    T_inverse = transforms.lookup("camera", "odom", 1_100_000_000, timeout_s=1.0)
    # Parents as received (static and dynamic alike); roots and unknown frames have none.
    assert [transforms.parent_of(f) for f in ("camera", "base", "odom", "nowhere")] == [
        "base", "odom", None, None]
    np.testing.assert_allclose(T_inverse[:3, 3], [-2.0, 0.0, -1.0], atol=1e-9)

    # A stamp after the newest sample: the lookup waits for the next sample, then interpolates.
    def publish_later() -> None:
        time.sleep(0.3)
        dynamic.publish(tf_message("odom", "base", 1_200_000_000, translation(4.0)))

    thread = threading.Thread(target=publish_later)
    thread.start()
    T_waited = transforms.lookup("odom", "camera", 1_150_000_000, timeout_s=5.0)
    thread.join()
    np.testing.assert_allclose(T_waited[:3, 3], [3.0, 0.0, 1.0], atol=1e-9)

    # Beyond the bounded hold: fails after the timeout, naming the edge.
    start = time.monotonic()
    with pytest.raises(TransformError, match="'odom' -> 'base'"):
        transforms.lookup("odom", "camera", 5_000_000_000, timeout_s=0.2)
    assert time.monotonic() - start >= 0.2
    with pytest.raises(TransformError, match="unknown frame 'nowhere'"):
        transforms.lookup("odom", "nowhere", 1_000_000_000, timeout_s=0.0)


def test_publish_goes_to_dynamic_tf_and_own_edges_are_not_buffered(
    ros_spinner: BackgroundSpinner,
) -> None:
    observer = ros_spinner.create_node("tf_observer")
    collector = TopicCollector(observer, TFMessage, "/tf", TF_QOS)
    static_collector = TopicCollector(observer, TFMessage, "/tf_static", TF_STATIC_QOS)
    node = ros_spinner.create_node("tf_publisher")
    transforms = TopicTransforms(node)
    wait_for(lambda: transforms._publisher.get_subscription_count() >= 2, 10, "/tf subscribers")
    T = make_transform(np.eye(3), [1.0, 2.0, 3.0])
    transforms.publish([StampedTransform("map", "camera", 7_000_000_000, T)])
    (msg,) = collector.wait_for(1, timeout_s=10)
    parent, child, stamp_ns, T_back = conversions.transform_from_stamped_msg(msg.transforms[0])
    assert (parent, child, stamp_ns) == ("map", "camera", 7_000_000_000)
    np.testing.assert_allclose(T_back, T, atol=1e-12)
    time.sleep(0.3)
    assert static_collector.messages == []
    assert transforms.parent_of("camera") is None  # its own map -> camera is no parent
    # Its own map -> camera came back on /tf but was not buffered: camera may get an odom parent.
    other = ros_spinner.create_node("tf_other")
    publisher = other.create_publisher(TFMessage, "/tf", TF_QOS)
    wait_for(lambda: publisher.get_subscription_count() >= 2, 10, "/tf subscribers")
    publisher.publish(tf_message("odom", "camera", 7_000_000_000, translation(0.5)))
    T_odom_cam = transforms.lookup("odom", "camera", 7_000_000_000, timeout_s=5.0)
    np.testing.assert_allclose(T_odom_cam[:3, 3], [0.5, 0.0, 0.0])
    assert transforms.parent_of("camera") == "odom"
