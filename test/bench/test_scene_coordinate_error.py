"""bench/scene_coordinate_error.py: the split of a scene-point error into the part along the
mapping camera's ray and the part across it, on a real redkitchen frame with its depth.

The localizer is a stand-in (named so below) that returns chosen scene points for fixed
pixels: the test checks the geometry of the figures, not a head."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from mapping_bench import DEFAULT_DATA
from scene_coordinate_error import frame_errors, plot

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.depth import depths_at
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.pipeline.mapping.keyframes import lift_keypoints


class StandInLocalizer:
    """Returns ``points_K3`` for the pixels ``pixels_K2`` of any image (a fake head)."""

    def __init__(self, pixels_K2: np.ndarray, points_K3: np.ndarray) -> None:
        self.pixels_K2, self.points_K3 = pixels_K2, points_K3

    def encode(self, image_rgb: np.ndarray) -> SimpleNamespace:
        return SimpleNamespace(points2d_K2=self.pixels_K2)

    def regress(self, encoded: SimpleNamespace) -> np.ndarray:
        return self.points_K3

    def inlier_threshold_px(self, intrinsics: Intrinsics) -> float:
        return 10.0


@pytest.fixture(scope="module")
def frame_and_truth() -> tuple[FolderDataset, np.ndarray, np.ndarray, np.ndarray]:
    """Frame 100 of redkitchen_dev, pixels on a grid with valid depth, their true points
    (world) and the unit rays from the camera centre to them."""
    dataset = FolderDataset(DEFAULT_DATA, depth=True)
    frame = dataset[100]
    u, v = np.meshgrid(np.arange(40, 600, 40.0), np.arange(40, 440, 40.0))
    pixels = np.stack([u.ravel(), v.ravel()], axis=1)
    depth, valid = depths_at(pixels, frame.depth.registered_to(frame.intrinsics))
    pixels, depth = pixels[valid], depth[valid]
    truth = lift_keypoints(frame.T_world_cam, frame.intrinsics, pixels, depth)
    t = frame.T_world_cam[:3, 3]
    directions = (truth - t) / np.linalg.norm(truth - t, axis=1, keepdims=True)
    return dataset, pixels, truth, directions


def test_exact_points_have_no_error(frame_and_truth) -> None:  # type: ignore[no-untyped-def]
    dataset, pixels, truth, _ = frame_and_truth
    centres = dataset.pose(100)[None, :3, 3]
    figures = frame_errors(StandInLocalizer(pixels, truth), dataset, 100, centres)  # type: ignore[arg-type]
    assert figures["error_3d_m"] < 1e-9
    assert figures["reprojection_px"] < 1e-6
    assert figures["within_threshold"] == 1.0
    assert figures["nearest_mapping_camera_m"] == 0.0


def test_depth_error_of_the_mapping_view_is_along_its_ray(frame_and_truth) -> None:  # type: ignore[no-untyped-def]
    dataset, pixels, truth, directions = frame_and_truth
    centre = dataset.pose(100)[:3, 3]
    # Too far by 10 cm along the frame's own rays: invisible to its reprojection.
    figures = frame_errors(StandInLocalizer(pixels, truth + 0.1 * directions), dataset, 100,
                           centre[None])  # type: ignore[arg-type]
    assert figures["along_mapping_ray_m"] == pytest.approx(0.1, abs=1e-9)
    assert figures["signed_along_mapping_ray_m"] == pytest.approx(0.1, abs=1e-9)
    assert figures["across_mapping_ray_m"] < 1e-9
    assert figures["reprojection_px"] < 1e-6
    # The same error seen from a mapping camera 1 m to the side is mostly across its rays.
    side = centre + dataset.pose(100)[:3, 0]
    seen_from_side = frame_errors(StandInLocalizer(pixels, truth + 0.1 * directions), dataset,
                                  100, side[None])  # type: ignore[arg-type]
    assert seen_from_side["nearest_mapping_camera_m"] == pytest.approx(1.0)
    assert seen_from_side["across_mapping_ray_m"] > 0.02
    assert seen_from_side["along_mapping_ray_m"] < 0.1


def test_plot_draws_every_frame_of_both_groups(frame_and_truth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dataset, pixels, truth, directions = frame_and_truth
    centre = dataset.pose(100)[:3, 3]
    localizer = StandInLocalizer(pixels, truth + 0.05 * directions)
    rows = [frame_errors(localizer, dataset, 100, (centre + offset)[None])  # type: ignore[arg-type]
            for offset in ([0.0, 0.0, 0.0], [0.3, 0.0, 0.0])]
    report = {"map": "m.map", "split": "A", "mapping": {"per_frame": rows[:1]},
              "query": {"per_frame": rows[1:]}}
    plot(report, tmp_path / "errors.png")
    assert (tmp_path / "errors.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
