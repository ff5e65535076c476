"""Hostile and unusual CameraInfo: refused with a reason, or used as the model says.

Issue 16, "Live node": non-finite and implausible distortion, skew and K[8] != 1, a
70000 x 70000 camera, rectified streams (P, no undistortion), and the ``equidistant`` and
``rational_polynomial`` (8, 12, 14 coefficients) models checked against OpenCV's own
projection.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import pytest

from seqace_ros.core.calibration import CalibrationError, CameraCalibration, calibration_from_fields
from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.undistortion import Undistorter

K_640 = [500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]


def calibration(**overrides: Any) -> CameraCalibration:
    fields: dict[str, Any] = dict(width=640, height=480, K_9=K_640, distortion_model="plumb_bob",
                                  distortion=[0.0] * 5, origin="/camera_info")
    fields.update(overrides)
    return calibration_from_fields(**fields)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_distortion_is_refused(bad: float) -> None:
    with pytest.raises(CalibrationError, match="distortion coefficients must be finite"):
        calibration(distortion=[0.1, bad, 0.0, 0.0, 0.0])


@pytest.mark.parametrize(("model", "coefficients", "reason"), [
    ("plumb_bob", [50.0, 0, 0, 0, 0], r"only 10 % of the undistorted 640x480 image"),
    ("plumb_bob", [-50.0, 0, 0, 0, 0], r"only \d+ % of the undistorted"),
    ("plumb_bob", [-3.0, 0, 0, 0, 0], "folds the image back on itself"),
    ("equidistant", [40.0, 0, 0, 0], r"only \d+ % of the undistorted"),
])
def test_implausible_distortion_is_refused(model: str, coefficients: list[float],
                                           reason: str) -> None:
    with pytest.raises(CalibrationError, match=f"implausible distortion {model}.*{reason}"):
        Undistorter(calibration(distortion_model=model, distortion=coefficients))


@pytest.mark.parametrize(("index", "value", "reason"), [
    (1, 0.7, r"has skew 0\.7"),
    (8, 2.0, r"must be row-major \[fx, 0, cx, 0, fy, cy, 0, 0, 1\]"),
    (6, 319.5, "must be row-major"),  # column-major K
    (3, 1.0, "must be row-major"),
    (8, math.nan, "intrinsics must be finite"),
])
def test_skew_and_a_bottom_row_other_than_001_are_refused(index: int, value: float,
                                                          reason: str) -> None:
    K = list(K_640)
    K[index] = value
    with pytest.raises(CalibrationError, match=reason):
        calibration(K_9=K)


def test_all_zero_K_is_an_uncalibrated_camera() -> None:
    with pytest.raises(CalibrationError, match="all zero"):
        calibration(K_9=[0.0] * 9)


def test_huge_camera_is_refused_before_any_table_is_built() -> None:
    with pytest.raises(CalibrationError, match=r"70000x70000 = 4900000000 pixels are more "
                       r"than the 50000000 allowed \(max_image_pixels\)"):
        calibration(width=70000, height=70000, distortion=[0.1, 0, 0, 0, 0])
    # A region of interest decides the image size, not the sensor's.
    roi = calibration(width=70000, height=70000, roi_xywh=(0, 0, 640, 480))
    assert (roi.intrinsics.width, roi.intrinsics.height) == (640, 480)
    with pytest.raises(CalibrationError, match="more than the 300000 allowed"):
        calibration(max_pixels=300_000)


RAW_K = [400.0, 0.0, 320.0, 0.0, 401.0, 240.0, 0.0, 0.0, 1.0]
RECT_P = [380.0, 0.0, 322.0, -38.0, 0.0, 380.0, 236.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_rectified_images_use_P_and_are_not_undistorted() -> None:
    rectified = calibration(K_9=RAW_K, distortion=[-0.3, 0.1, 0.0, 0.0, 0.0], P_12=RECT_P)
    assert rectified.intrinsics == Intrinsics(380.0, 380.0, 322.0, 236.0, 640, 480)
    assert rectified.is_pinhole
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert Undistorter(rectified)(image) is image
    binned = calibration(K_9=RAW_K, P_12=RECT_P, binning_xy=(2, 2))
    assert binned.intrinsics == rectified.intrinsics.resized(320, 240)
    # The raw stream of the same camera: K and D, undistorted.
    raw = calibration(K_9=RAW_K, distortion=[-0.3, 0.1, 0.0, 0.0, 0.0])
    assert raw.intrinsics.fx == 400.0
    assert not raw.is_pinhole


@pytest.mark.parametrize(("P", "overrides", "reason"), [
    ([0.0] * 12, {}, "projection matrix P is all zero"),
    ([380.0, 2.0, *RECT_P[2:]], {}, "projection matrix P has skew 2.0"),
    (RECT_P, {"roi_xywh": (10, 10, 320, 240)}, "region of interest on rectified images"),
    (RECT_P[:9], {}, "projection matrix P needs 12 values, got 9"),
])
def test_unusable_rectified_calibrations_are_refused(P: list[float], overrides: dict[str, Any],
                                                     reason: str) -> None:
    with pytest.raises(CalibrationError, match=reason):
        calibration(K_9=RAW_K, P_12=P, **overrides)


SIZE = 256
MODELS = {
    "plumb_bob": [-0.25, 0.08, 0.001, -0.0015, -0.01],
    "rational_polynomial": [0.8, -0.2, 0.001, -0.001, 0.05, 1.1, -0.1, 0.08],
    "rational_polynomial/12": [0.8, -0.2, 0.001, -0.001, 0.05, 1.1, -0.1, 0.08,
                               0.002, -0.001, 0.0015, 0.0005],
    "rational_polynomial/14": [0.8, -0.2, 0.001, -0.001, 0.05, 1.1, -0.1, 0.08,
                               0.002, -0.001, 0.0015, 0.0005, 0.01, -0.008],
    "equidistant": [-0.02, 0.01, -0.003, 0.0005],
}


@pytest.mark.parametrize("name", list(MODELS))
def test_undistortion_agrees_with_opencv_projection(name: str) -> None:
    """Every undistorted pixel samples the raw image where OpenCV projects its ray.

    The raw image holds its own coordinates (red = column, green = row), so the undistorted
    image reads back, at each pixel, the raw pixel it was sampled from; that must be where
    ``cv2.projectPoints`` (``cv2.fisheye.projectPoints``) puts the pixel's ray.
    """
    model = name.split("/")[0]
    D = np.array(MODELS[name])
    K = np.array([[180.0, 0.0, 127.5], [0.0, 181.0, 126.0], [0.0, 0.0, 1.0]])
    camera = calibration_from_fields(SIZE, SIZE, K.reshape(-1), model, D, "test")
    columns, rows = np.meshgrid(np.arange(SIZE), np.arange(SIZE))
    raw = np.dstack([columns, rows, np.zeros_like(rows)]).astype(np.uint8)
    undistorted = Undistorter(camera)(raw).astype(np.float64)

    v, u = np.mgrid[8:SIZE - 8:6, 8:SIZE - 8:6].reshape(2, -1)
    rays = np.column_stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(len(u))])
    if model == "equidistant":
        expected = cv2.fisheye.projectPoints(rays[:, None, :], np.zeros(3), np.zeros(3), K, D)[0]
    else:
        expected = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), K, D)[0]
    expected = expected.reshape(-1, 2)
    inside = np.all((expected >= 1) & (expected <= SIZE - 2), axis=1)
    assert inside.mean() > 0.6, "the test camera should see most of its raw image"
    sampled = np.column_stack([undistorted[v, u, 0], undistorted[v, u, 1]])
    error = np.abs(sampled[inside] - expected[inside])
    # uint8 rounding of the bilinear sample (0.5) and OpenCV's 1/32-pixel remap tables.
    assert error.max() < 0.6, f"{name}: max error {error.max():.3f} px"
    # The distortion is real: a pinhole remap would be off by pixels.
    assert np.abs(np.column_stack([u, v])[inside] - expected[inside]).max() > 3.0
