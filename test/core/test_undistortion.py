"""Undistortion of a distorted camera's images to the pinhole camera with the same K."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seqace_ros.core.calibration import CalibrationError, CameraCalibration
from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.undistortion import Undistorter


def test_undistorter_maps_distorted_points_back_to_pinhole() -> None:
    intrinsics = Intrinsics(100.0, 100.0, 80.0, 60.0, 160, 120)
    D = np.array([-0.2, 0.05, 0.001, -0.001, 0.0])
    undistort = Undistorter(CameraCalibration(intrinsics, "plumb_bob", tuple(D)))
    # A white dot at the pinhole pixel (120, 90), rendered where the distorted camera sees it.
    ray = np.array([[[(120 - 80) / 100.0, (90 - 60) / 100.0, 1.0]]])
    distorted_uv = cv2.projectPoints(ray, np.zeros(3), np.zeros(3), intrinsics.K, D)[0].ravel()
    image = np.zeros((120, 160, 3), np.uint8)
    cv2.circle(image, tuple(round(float(v)) for v in distorted_uv), 2, (255, 255, 255), -1)
    out = undistort(image)
    v, u = np.unravel_index(np.argmax(out[:, :, 0].astype(float)), out.shape[:2])
    assert abs(u - 120) <= 1.5
    assert abs(v - 90) <= 1.5
    pinhole = Undistorter(CameraCalibration(intrinsics))
    assert pinhole(image) is image
    with pytest.raises(CalibrationError, match="image is 10x10"):
        pinhole(np.zeros((10, 10, 3), np.uint8))
