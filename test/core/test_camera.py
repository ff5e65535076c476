"""Intrinsics: K, projection and back-projection, validation, and resizing with the
pixel-centre convention."""

from __future__ import annotations

import numpy as np
import pytest

from seqace_ros.core.camera import Intrinsics


def test_K_and_tuple() -> None:
    intrinsics = Intrinsics(525.0, 520.0, 320.0, 240.0, 640, 480)
    np.testing.assert_allclose(intrinsics.K, [[525, 0, 320], [0, 520, 240], [0, 0, 1]])
    assert intrinsics.as_tuple == (525.0, 520.0, 320.0, 240.0)


def test_backproject_inverts_the_projection() -> None:
    intrinsics = Intrinsics(525.0, 520.0, 319.5, 241.0, 640, 480)
    points_N3 = np.random.default_rng(0).uniform([-1.0, -1.0, 0.5], [1.0, 1.0, 4.0], (50, 3))
    projected_N3 = points_N3 @ intrinsics.K.T
    pixels_N2 = projected_N3[:, :2] / projected_N3[:, 2:]
    np.testing.assert_allclose(intrinsics.backproject(pixels_N2, points_N3[:, 2]), points_N3,
                               atol=1e-12)


def test_project_matches_K_and_marks_points_behind_the_camera() -> None:
    intrinsics = Intrinsics(525.0, 520.0, 319.5, 241.0, 640, 480)
    points_N3 = np.random.default_rng(1).uniform([-1.0, -1.0, 0.5], [1.0, 1.0, 4.0], (50, 3))
    points_N3[:5, 2] *= -1.0  # behind
    points_N3[5, 2] = 0.0  # on the camera plane
    pixels_N2, in_front_N = intrinsics.project(points_N3)
    assert in_front_N.tolist() == [False] * 6 + [True] * 44
    assert np.isnan(pixels_N2[:6]).all()
    projected_N3 = points_N3[6:] @ intrinsics.K.T
    np.testing.assert_allclose(pixels_N2[6:], projected_N3[:, :2] / projected_N3[:, 2:],
                               atol=1e-9)
    np.testing.assert_allclose(intrinsics.backproject(pixels_N2[6:], points_N3[6:, 2]),
                               points_N3[6:], atol=1e-12)


def test_resized_halves_focals_and_maps_pixel_centres() -> None:
    intrinsics = Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)
    half = intrinsics.resized(320, 240)
    assert (half.fx, half.fy) == (262.5, 262.5)
    # the image centre stays the image centre: (319.5 + 0.5) / 2 - 0.5 = 159.5
    assert (half.cx, half.cy) == (159.5, 119.5)
    assert (half.width, half.height) == (320, 240)


def test_resized_projects_consistently() -> None:
    intrinsics = Intrinsics(500.0, 510.0, 300.0, 200.0, 640, 480)
    scaled = intrinsics.resized(960, 720)
    point = np.array([0.3, -0.2, 2.0])
    u, v = (intrinsics.K @ point)[:2] / point[2]
    u2, v2 = (scaled.K @ point)[:2] / point[2]
    # a pixel centre u maps to (u + 0.5) * 1.5 - 0.5
    assert u2 == pytest.approx((u + 0.5) * 1.5 - 0.5)
    assert v2 == pytest.approx((v + 0.5) * 1.5 - 0.5)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.0, 1.0, 0.0, 0.0, 10, 10), "focal"),
        ((1.0, float("nan"), 0.0, 0.0, 10, 10), "finite"),
        ((1.0, 1.0, 0.0, 0.0, 0, 10), "size"),
    ],
)
def test_invalid_intrinsics_are_rejected(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Intrinsics(*args)
