"""Optical-flow tracking of the sequence mode: known shifts, lost tracks, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from seqace_ros.pipeline.localization.tracking import (
    FlowConfig,
    TrackingConfigError,
    to_gray,
    track_points,
)


@pytest.fixture(scope="module")
def texture_gray() -> np.ndarray:
    return to_gray(data.astronaut())  # 512 x 512 photo


def _grid_points(low: float, high: float, n: int = 12) -> np.ndarray:
    u, v = np.meshgrid(np.linspace(low, high, n), np.linspace(low, high, n))
    return np.column_stack([u.ravel(), v.ravel()])


def test_tracks_a_known_shift(texture_gray: np.ndarray) -> None:
    shift_u, shift_v = 7, -4  # the scene content moves by (+7, -4) pixels
    previous = texture_gray[50:450, 50:450]
    current = texture_gray[50 - shift_v:450 - shift_v, 50 - shift_u:450 - shift_u]
    points = _grid_points(60.0, 340.0)
    tracked, ok = track_points(previous, current, points, FlowConfig())
    assert ok.mean() > 0.9
    errors = np.linalg.norm(tracked[ok] - (points[ok] + [shift_u, shift_v]), axis=1)
    assert np.median(errors) < 0.05
    assert errors.max() < 1.0  # the forward-backward bound


def test_points_leaving_the_image_are_dropped(texture_gray: np.ndarray) -> None:
    previous = texture_gray[100:400, 100:400]
    current = texture_gray[100:400, 130:430]  # content moves 30 px left
    points = np.array([[10.0, 150.0], [20.0, 150.0], [200.0, 150.0]])
    _, ok = track_points(previous, current, points, FlowConfig())
    assert ok.tolist() == [False, False, True]


def test_unrelated_image_loses_most_tracks(texture_gray: np.ndarray) -> None:
    other = to_gray(data.coffee())[:400, :400]
    points = _grid_points(30.0, 370.0)
    _, ok = track_points(texture_gray[:400, :400], other, points, FlowConfig())
    assert ok.mean() < 0.3


def test_empty_and_bad_input(texture_gray: np.ndarray) -> None:
    tracked, ok = track_points(texture_gray, texture_gray, np.zeros((0, 2)), FlowConfig())
    assert tracked.shape == (0, 2)
    assert ok.shape == (0,)
    with pytest.raises(TrackingConfigError, match="same"):
        track_points(texture_gray, texture_gray[:100], np.ones((3, 2)), FlowConfig())
    with pytest.raises(TrackingConfigError, match="window_px"):
        FlowConfig(window_px=20)
    with pytest.raises(TrackingConfigError, match="max_fb_error_px"):
        FlowConfig(max_fb_error_px=0.0)
