"""Depth images: decoding, registration into the colour camera, depth at pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.depth import (
    DepthCalibration,
    DepthError,
    DepthImage,
    depth_to_metres,
    depths_at,
    read_depth_m,
    register_depth,
)
from seqace_ros.core.geometry import make_transform

COLOUR = Intrinsics(525.0, 525.0, 320.0, 240.0, 640, 480)
DEPTH = Intrinsics(585.0, 585.0, 320.0, 240.0, 640, 480)


def test_depth_to_metres_reads_millimetres_and_metres_and_marks_invalid_as_zero() -> None:
    millimetres = np.array([[0, 1500], [65535, 1]], dtype=np.uint16)
    np.testing.assert_allclose(depth_to_metres(millimetres), [[0.0, 1.5], [65.535, 0.001]],
                               rtol=1e-6)
    metres = np.array([[np.nan, 2.0], [np.inf, -1.0]], dtype=np.float32)
    np.testing.assert_array_equal(depth_to_metres(metres), [[0.0, 2.0], [0.0, 0.0]])
    with pytest.raises(DepthError, match="uint16"):
        depth_to_metres(np.zeros((2, 2), np.uint8))
    with pytest.raises(DepthError, match="single-channel"):
        depth_to_metres(np.zeros((2, 2, 3), np.uint16))


def test_read_depth_rejects_an_eight_bit_image(tmp_path) -> None:
    path = tmp_path / "depth.png"
    cv2.imwrite(str(path), np.zeros((4, 4), np.uint8))
    with pytest.raises(DepthError, match="uint16"):
        read_depth_m(path)
    with pytest.raises(DepthError, match="cannot read"):
        read_depth_m(tmp_path / "missing.png")


def test_register_depth_maps_the_depth_camera_onto_the_wider_colour_image() -> None:
    depth_m = np.full((480, 640), 2.0, dtype=np.float32)
    registered = register_depth(depth_m, DepthCalibration(DEPTH), COLOUR)
    assert registered.shape == (480, 640)
    # colour column u sees depth column 320 + (u - 320) * 585 / 525: inside up to u ~ 607
    assert registered[240, 320] == pytest.approx(2.0)
    assert registered[240, 600] == pytest.approx(2.0)
    assert registered[240, 615] == 0.0
    assert registered[240, 10] == 0.0
    assert registered[5, 320] == 0.0


def test_register_depth_keeps_the_nearest_surface_and_applies_the_extrinsics() -> None:
    depth_m = np.full((480, 640), 3.0, dtype=np.float32)
    T_colour_depth = make_transform(np.eye(3), [0.0, 0.0, -1.0])  # colour camera 1 m behind
    registered = register_depth(depth_m, DepthCalibration(DEPTH, T_colour_depth), COLOUR)
    assert registered[240, 320] == pytest.approx(2.0)
    # a nearer surface in front of a farther one wins where both land
    depth_m[200:280, 280:360] = 1.0
    registered = register_depth(depth_m, DepthCalibration(DEPTH), COLOUR)
    assert registered[240, 320] == pytest.approx(1.0)
    with pytest.raises(DepthError, match="640x480"):
        register_depth(depth_m[:100], DepthCalibration(DEPTH), COLOUR)


def test_a_lateral_baseline_shifts_the_registered_depth_by_its_disparity() -> None:
    depth_m = np.zeros((480, 640), dtype=np.float32)
    depth_m[200:280, 300:340] = 1.0  # a 1 m patch straight ahead
    T_colour_depth = make_transform(np.eye(3), [-0.05, 0.0, 0.0])  # colour camera 5 cm right
    registered = register_depth(depth_m, DepthCalibration(COLOUR, T_colour_depth), COLOUR)
    columns = np.nonzero(registered[240] > 0)[0]
    # disparity fx * b / z = 525 * 0.05 / 1 = 26.25 px to the left in the colour image
    assert columns.min() == pytest.approx(300 - 26.25, abs=1)
    assert columns.max() == pytest.approx(339 - 26.25, abs=1)


def test_registered_depth_passes_through_within_the_valid_range() -> None:
    depth_m = np.full((480, 640), 2.0, dtype=np.float32)
    depth_m[0, 0] = 0.1  # below the 0.2 m minimum
    depth_m[0, 1] = 9.0  # above the 8 m maximum
    image = DepthImage(depth_m, DepthCalibration(COLOUR))
    registered = image.registered_to(COLOUR)
    assert registered[0, 0] == 0.0
    assert registered[0, 1] == 0.0
    assert registered[1, 1] == 2.0
    with pytest.raises(DepthError, match="intrinsics are for 640x480"):
        DepthImage(depth_m[:10], DepthCalibration(COLOUR))


def test_depth_calibration_rejects_a_transform_that_is_not_rigid() -> None:
    with pytest.raises(DepthError, match="rigid"):
        DepthCalibration(COLOUR, np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(DepthError, match="finite 4x4"):
        DepthCalibration(COLOUR, np.full((4, 4), np.nan))
    with pytest.raises(DepthError, match="min_depth_m"):
        DepthCalibration(COLOUR, min_depth_m=3.0, max_depth_m=2.0)


def test_depths_at_take_the_local_depth_and_reject_depth_edges() -> None:
    depth_m = np.full((480, 640), 1.5, dtype=np.float32)
    depth_m[:, 320:] = 3.0
    depth_m[400:, :100] = 0.0
    pixels = np.array([[100.0, 100.0], [500.0, 100.0], [320.0, 100.0], [50.0, 450.0]])
    depths, valid = depths_at(pixels, depth_m)
    assert valid.tolist() == [True, True, False, False]
    assert depths[:2] == pytest.approx([1.5, 3.0])
    assert depths[2:].tolist() == [0.0, 0.0]
