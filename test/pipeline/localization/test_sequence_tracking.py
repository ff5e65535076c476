"""Optical-flow tracking of the sequence mode: known shifts, lost tracks, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from seqace_ros.pipeline.localization.tracking import (
    FlowConfig,
    TrackingConfigError,
    flow_image,
    track_points,
)

FULL_RESOLUTION = FlowConfig(image_scale=1.0)


@pytest.fixture(scope="module")
def texture_rgb() -> np.ndarray:
    return data.astronaut()  # 512 x 512 photo


def _grid_points(low: float, high: float, n: int = 12) -> np.ndarray:
    u, v = np.meshgrid(np.linspace(low, high, n), np.linspace(low, high, n))
    return np.column_stack([u.ravel(), v.ravel()])


def test_flow_image_is_grey_and_downscaled(texture_rgb: np.ndarray) -> None:
    half = flow_image(texture_rgb[:480, :500], FlowConfig(image_scale=0.5))
    assert half.shape == (240, 250)
    assert half.dtype == np.uint8
    full = flow_image(texture_rgb[:480, :500], FULL_RESOLUTION)
    assert full.shape == (480, 500)
    # the downscaled image is the area average of the full-resolution grey image
    np.testing.assert_allclose(half[100, 100], full[200:202, 200:202].mean(), atol=1.0)


@pytest.mark.parametrize(("config", "max_median_px", "max_p95_px"),
                         [(FULL_RESOLUTION, 0.02, 0.05), (FlowConfig(), 0.15, 0.5)])
def test_tracks_a_known_shift(texture_rgb: np.ndarray, config: FlowConfig,
                              max_median_px: float, max_p95_px: float) -> None:
    shift_u, shift_v = 7, -4  # the scene content moves by (+7, -4) full-resolution pixels
    previous = flow_image(texture_rgb[50:450, 50:450], config)
    current = flow_image(texture_rgb[50 - shift_v:450 - shift_v, 50 - shift_u:450 - shift_u],
                         config)
    points = _grid_points(60.0, 340.0)
    tracked, ok = track_points(previous, current, points, config)
    assert ok.mean() > 0.9
    # positions come back in full-resolution pixels whatever the flow image's scale
    errors = np.linalg.norm(tracked[ok] - (points[ok] + [shift_u, shift_v]), axis=1)
    assert np.median(errors) < max_median_px
    assert np.percentile(errors, 95) < max_p95_px
    # a track consistent both ways can still be off (a few at half resolution), but never by
    # anything near the 10 px inlier threshold of the solves that use it
    assert errors.max() < 3.0


def test_points_leaving_the_image_are_dropped(texture_rgb: np.ndarray) -> None:
    config = FlowConfig()
    previous = flow_image(texture_rgb[100:400, 100:400], config)
    current = flow_image(texture_rgb[100:400, 130:430], config)  # content moves 30 px left
    points = np.array([[10.0, 150.0], [20.0, 150.0], [200.0, 150.0]])
    _, ok = track_points(previous, current, points, config)
    assert ok.tolist() == [False, False, True]


def test_unrelated_image_loses_most_tracks(texture_rgb: np.ndarray) -> None:
    config = FlowConfig()
    points = _grid_points(30.0, 370.0)
    _, ok = track_points(flow_image(texture_rgb[:400, :400], config),
                         flow_image(data.coffee()[:400, :400], config), points, config)
    assert ok.mean() < 0.3


def test_empty_and_bad_input(texture_rgb: np.ndarray) -> None:
    gray = flow_image(texture_rgb, FlowConfig())
    tracked, ok = track_points(gray, gray, np.zeros((0, 2)), FlowConfig())
    assert tracked.shape == (0, 2)
    assert ok.shape == (0,)
    with pytest.raises(TrackingConfigError, match="same"):
        track_points(gray, gray[:100], np.ones((3, 2)), FlowConfig())
    with pytest.raises(TrackingConfigError, match="window_px"):
        FlowConfig(window_px=20)
    with pytest.raises(TrackingConfigError, match="max_fb_error_px"):
        FlowConfig(max_fb_error_px=0.0)
    with pytest.raises(TrackingConfigError, match="image_scale"):
        FlowConfig(image_scale=0.0)
    with pytest.raises(TrackingConfigError, match="image_scale"):
        FlowConfig(image_scale=1.5)
