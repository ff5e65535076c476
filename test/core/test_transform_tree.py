"""TransformTree: chains, interpolation, gaps, errors and the cache bound."""

from __future__ import annotations

import time

import numpy as np
import pytest

from seqace_ros.core.geometry import invert_transform, make_transform, pose_error
from seqace_ros.core.transform_tree import (
    MapEdgeChooser,
    TransformError,
    TransformTree,
    TransformTreeError,
    frame_below,
)

SECOND = 1_000_000_000


def rot_z(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def screw(t_s: float) -> np.ndarray:
    """Constant-velocity motion about a fixed axis: linear+slerp interpolation is exact."""
    return make_transform(rot_z(0.3 * t_s), [1.0 + 0.5 * t_s, -0.2 * t_s, 0.1])


T_BASE_CAM = make_transform(
    np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]), [0.1, 0.0, 0.2]
)


def chain_tree() -> TransformTree:
    """map -> odom (1 Hz) -> base_link (10 Hz) -> camera_optical (static)."""
    tree = TransformTree()
    for k in range(11):
        tree.set_transform(
            "map", "odom", make_transform(rot_z(0.01 * k), [0.05 * k, 0, 0]), k * SECOND
        )
    for k in range(101):
        tree.set_transform("odom", "base_link", screw(0.1 * k), k * SECOND // 10)
    tree.set_transform("base_link", "camera_optical", T_BASE_CAM)
    return tree


def test_exact_stamp_composes_the_chain() -> None:
    tree = chain_tree()
    T_map_cam = tree.lookup("map", "camera_optical", 3 * SECOND, max_gap_ns=0)
    expected = make_transform(rot_z(0.03), [0.15, 0, 0]) @ screw(3.0) @ T_BASE_CAM
    np.testing.assert_allclose(T_map_cam, expected, atol=1e-12)
    # The reverse direction is the inverse.
    T_cam_map = tree.lookup("camera_optical", "map", 3 * SECOND, max_gap_ns=0)
    np.testing.assert_allclose(T_cam_map @ T_map_cam, np.eye(4), atol=1e-12)


def test_interpolation_is_exact_for_constant_screw_motion() -> None:
    tree = TransformTree()
    for k in range(5):
        tree.set_transform("odom", "base", screw(k * 0.1), k * SECOND // 10)
    for t_s in (0.01, 0.137, 0.25, 0.399):
        T = tree.lookup("odom", "base", round(t_s * SECOND), max_gap_ns=SECOND // 10)
        meters, degrees = pose_error(T, screw(t_s))
        assert meters < 1e-9
        assert degrees < 1e-4  # geometry.slerp_rotation uses nlerp below ~3.6 deg


def test_lookup_between_siblings_uses_common_ancestor() -> None:
    tree = TransformTree()
    T_base_left = make_transform(np.eye(3), [0.0, 0.1, 0.0])
    T_base_right = make_transform(rot_z(0.5), [0.0, -0.1, 0.0])
    tree.set_transform("base", "left", T_base_left)
    tree.set_transform("base", "right", T_base_right)
    T_left_right = tree.lookup("left", "right", 0, max_gap_ns=0)
    np.testing.assert_allclose(
        T_left_right, invert_transform(T_base_left) @ T_base_right, atol=1e-12
    )


def test_gap_rules_hold_nearest_and_reject_beyond_gap() -> None:
    tree = TransformTree()
    tree.set_transform("map", "body", screw(0.0), 0)
    tree.set_transform("map", "body", screw(1.0), SECOND)
    # Both samples within the gap: interpolated.
    mid = tree.lookup("map", "body", SECOND // 2, max_gap_ns=SECOND)
    assert pose_error(mid, screw(0.5))[0] < 1e-9
    # Only the earlier sample within the gap: held.
    held = tree.lookup("map", "body", SECOND // 10, max_gap_ns=SECOND // 5)
    np.testing.assert_allclose(held, screw(0.0))
    # Past the end within the gap: held; beyond it: error naming frames and nearest stamps.
    np.testing.assert_allclose(tree.lookup("map", "body", SECOND + 5, max_gap_ns=10), screw(1.0))
    with pytest.raises(TransformError, match=r"'map' -> 'body'.*nearest samples at \[1000000000\]"):
        tree.lookup("map", "body", 2 * SECOND, max_gap_ns=SECOND // 2)
    with pytest.raises(TransformError, match=r"nearest samples at \[0, 1000000000\]"):
        tree.lookup("map", "body", SECOND // 2, max_gap_ns=SECOND // 4)


def test_unconnected_and_unknown_frames_are_named() -> None:
    tree = TransformTree()
    tree.set_transform("map", "odom", np.eye(4), 0)
    tree.set_transform("base_link", "camera", T_BASE_CAM)
    with pytest.raises(
        TransformError, match=r"not connected.*\{base_link, camera\}; \{map, odom\}"
    ):
        tree.lookup("map", "camera", 0, max_gap_ns=0)
    with pytest.raises(TransformError, match=r"unknown frame 'lidar'; known frames"):
        tree.lookup("map", "lidar", 0, max_gap_ns=0)
    assert tree.connected_groups() == [["base_link", "camera"], ["map", "odom"]]


def test_invalid_insertions_raise() -> None:
    tree = TransformTree()
    tree.set_transform("map", "odom", np.eye(4), 0)
    with pytest.raises(TransformTreeError, match="already has parent 'map'"):
        tree.set_transform("world", "odom", np.eye(4), 0)
    with pytest.raises(TransformTreeError, match="would close a loop"):
        tree.set_transform("odom", "map", np.eye(4), 0)
    with pytest.raises(TransformTreeError, match="own parent"):
        tree.set_transform("a", "a", np.eye(4))
    with pytest.raises(TransformTreeError, match="4x4 rigid"):
        tree.set_transform("a", "b", np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(TransformTreeError, match="is dynamic; it cannot also be static"):
        tree.set_transform("map", "odom", np.eye(4))
    with pytest.raises(TransformTreeError, match="cache_duration_ns"):
        TransformTree(cache_duration_ns=0)


def test_out_of_order_and_duplicate_samples() -> None:
    tree = TransformTree()
    for k in (3, 0, 2, 1):
        tree.set_transform("a", "b", screw(float(k)), k * SECOND)
    tree.set_transform("a", "b", screw(10.0), 2 * SECOND)  # replaces the sample at 2 s
    assert tree.stamp_range("a", "b") == (0, 3 * SECOND)
    np.testing.assert_allclose(tree.lookup("a", "b", 2 * SECOND, 0), screw(10.0))
    np.testing.assert_allclose(tree.lookup("a", "b", 1 * SECOND, 0), screw(1.0))


def test_cache_duration_bounds_memory() -> None:
    tree = TransformTree(cache_duration_ns=2 * SECOND)
    for k in range(1000):
        tree.set_transform("odom", "base", screw(k * 0.01), k * SECOND // 100)
    first, last = tree.stamp_range("odom", "base") or (0, 0)
    assert last == 999 * SECOND // 100
    assert last - first <= 2 * SECOND
    with pytest.raises(TransformError, match="within"):
        tree.lookup("odom", "base", SECOND, max_gap_ns=SECOND // 10)


def test_thousands_of_lookups_are_fast() -> None:
    """Not a benchmark: a generous bound that catches accidental O(N) per lookup."""
    tree = chain_tree()
    stamps = np.linspace(0.05, 9.95, 2000) * SECOND
    started = time.perf_counter()
    for stamp in stamps:
        tree.lookup("map", "camera_optical", int(stamp), max_gap_ns=SECOND)
    assert time.perf_counter() - started < 5.0


def test_clear_dynamic_recovers_from_time_going_back() -> None:
    """A bag played in a loop: every sample of the second pass is older than the newest of
    the first by more than the cache, so it is pruned on insertion until the tree is cleared."""
    tree = TransformTree(cache_duration_ns=2 * SECOND)
    tree.set_transform("base", "camera", T_BASE_CAM)
    for k in range(100):
        tree.set_transform("odom", "base", screw(0.01 * k), 1000 * SECOND + k * SECOND // 100)
    tree.set_transform("odom", "base", screw(0.0), 10 * SECOND)
    with pytest.raises(TransformError, match="within"):
        tree.lookup("odom", "camera", 10 * SECOND, max_gap_ns=SECOND // 10)
    assert tree.clear_dynamic() == 100
    assert tree.stamp_range("odom", "base") is None
    tree.set_transform("odom", "base", screw(0.0), 10 * SECOND)
    np.testing.assert_allclose(tree.lookup("odom", "camera", 10 * SECOND, 0),
                               screw(0.0) @ T_BASE_CAM)
    assert tree.parent_of("camera") == "base"  # the static edge stayed


# --- which frame goes under map ------------------------------------------------------------

ROBOT = {"camera_optical": "camera_link", "camera_link": "base_link", "base_link": "odom"}


def test_frame_below_walks_to_the_root_or_stops_under_map() -> None:
    assert frame_below("camera_optical", "map", ROBOT.get) == "odom"
    # A localizer's own map -> odom in the buffer (tf2_ros) does not lift the answer to map.
    assert frame_below("camera_optical", "map", {**ROBOT, "odom": "map"}.get) == "odom"
    assert frame_below("camera_optical", "map", {}.get) == "camera_optical"
    assert frame_below("camera_optical", "map", {"camera_optical": "map"}.get) == "camera_optical"
    # The chooser works with the library's own tree as the parent source, too.
    tree = chain_tree()  # map -> odom -> base_link -> camera_optical
    assert frame_below("camera_optical", "map", tree.parent_of) == "odom"
    assert frame_below("camera_optical", "world", tree.parent_of) == "map"
    with pytest.raises(TransformTreeError, match="a loop"):
        frame_below("a", "map", {"a": "b", "b": "a"}.get)


def test_chooser_publishes_under_the_robot_root_and_never_reparents_the_camera() -> None:
    chooser = MapEdgeChooser()
    edge = chooser.choose("camera_optical", "map", "", ROBOT.get, listening_s=0.0, settle_s=2.0)
    assert edge.child == "odom"  # a parent is known at once: no need to wait
    assert edge.reason == "root of the tree of 'camera_optical'"
    # The tree disappears from the buffer (cleared after a time jump): keep the root.
    edge = chooser.choose("camera_optical", "map", "", {}.get, listening_s=60.0, settle_s=2.0)
    assert edge.child == "odom"
    # Another camera without parents is its own root, once TF had time to show a parent.
    edge = chooser.choose("handheld", "map", "", {}.get, listening_s=1.0, settle_s=2.0)
    assert edge.child is None
    assert edge.reason == "waiting 1.0 s more for TF to show whether 'handheld' has a parent"
    edge = chooser.choose("handheld", "map", "", {}.get, listening_s=2.0, settle_s=2.0)
    assert (edge.child, edge.reason) == ("handheld", "'handheld' has no parent in TF")
    # A robot tree that shows up later wins over the root camera.
    edge = chooser.choose("handheld", "map", "", {"handheld": "odom"}.get, 3.0, 2.0)
    assert edge.child == "odom"


def test_a_forced_frame_is_used_as_given() -> None:
    chooser = MapEdgeChooser()
    edge = chooser.choose("camera_optical", "map", "odom_ekf", ROBOT.get, 0.0, 2.0)
    assert (edge.child, edge.reason) == ("odom_ekf", "'odom_ekf' set as odom_frame")
    edge = chooser.choose("camera_optical", "map", "odom_ekf", {}.get, 0.0, 2.0)
    assert edge.child == "odom_ekf"
