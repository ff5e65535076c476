"""Mapping parts: augmentation warps, reprojection loss, clamp schedule, presets."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from seqace_ros.core.head import SceneHead
from seqace_ros.pipeline.mapping.augment import random_augmentation, warp_image
from seqace_ros.pipeline.mapping.buffer import patch_budget
from seqace_ros.pipeline.mapping.config import PRESETS, AugmentConfig, MappingConfig, preset
from seqace_ros.pipeline.mapping.trainer import reprojection_loss, soft_clamp_px


def test_warp_maps_augmented_pixels_back_to_original() -> None:
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    image[100:104, 200:204] = 255  # a bright 4x4 square centred at (201.5, 101.5)
    augmented = warp_image(image, network_height=352, angle_deg=12.0)
    assert augmented.image_rgb.shape[0] == 352
    assert augmented.image_rgb.shape[1] % 32 == 0
    grey = augmented.image_rgb[..., 0].astype(float)
    v, u = np.nonzero(grey > 0.3 * grey.max())
    weights = grey[v, u]
    centre_aug = np.array([np.average(u, weights=weights), np.average(v, weights=weights), 1.0])
    centre_orig = augmented.A_orig_from_aug_23 @ centre_aug
    np.testing.assert_allclose(centre_orig, [201.5, 101.5], atol=0.6)


def test_photometric_augmentation_and_determinism() -> None:
    image = np.full((96, 128, 3), 100, dtype=np.uint8)
    bright = warp_image(image, 96, 0.0, brightness=0.1, contrast=1.0)
    assert int(bright.image_rgb[40, 60, 0]) == 125  # 100 + 0.1 * 255 = 125.5, truncated
    config = AugmentConfig()
    a = random_augmentation(image, 96, config, np.random.default_rng(4))
    b = random_augmentation(image, 96, config, np.random.default_rng(4))
    assert np.array_equal(a.image_rgb, b.image_rgb)
    np.testing.assert_array_equal(a.A_orig_from_aug_23, b.A_orig_from_aug_23)


def _camera_batch(points_cam_B3: torch.Tensor) -> tuple[torch.Tensor, ...]:
    B = points_cam_B3.shape[0]
    K = torch.tensor([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
    T_cam_world = torch.eye(4)
    T_cam_world[:3, 3] = torch.tensor([0.1, -0.2, 0.3])
    world = points_cam_B3 - T_cam_world[:3, 3]
    return world, K.expand(B, 3, 3), T_cam_world.expand(B, 4, 4)


def test_loss_is_zero_for_perfect_predictions_and_grows_with_error() -> None:
    config = MappingConfig()
    points_cam = torch.tensor([[0.2, 0.1, 2.0], [-0.5, 0.3, 4.0]])
    world, K, T = _camera_batch(points_cam)
    pixels = (points_cam[:, :2] / points_cam[:, 2:]) * 500.0 + torch.tensor([320.0, 240.0])
    loss, valid = reprojection_loss(world, pixels, K, T, 50.0, config)
    assert float(loss) == pytest.approx(0.0, abs=1e-4)
    assert valid.tolist() == [True, True]
    loss_off, _ = reprojection_loss(world, pixels + torch.tensor([3.0, 4.0]), K, T, 50.0, config)
    assert float(loss_off) == pytest.approx(50.0 * np.tanh(5.0 / 50.0), rel=1e-4)
    # the soft clamp bounds each term by the clamp value
    loss_far, _ = reprojection_loss(world, pixels + 400.0, K, T, 10.0, config)
    assert float(loss_far) <= 10.0


def test_invalid_predictions_are_pulled_onto_the_ray() -> None:
    config = MappingConfig()
    behind = torch.tensor([[0.0, 0.0, -1.0]])
    world, K, T = _camera_batch(behind)
    pixels = torch.tensor([[320.0, 240.0]])
    loss, valid = reprojection_loss(world, pixels, K, T, 50.0, config)
    assert valid.tolist() == [False]
    # target: the pixel ray (optical axis) at depth_target_m = 10
    assert float(loss) == pytest.approx(11.0, rel=1e-5)
    world.requires_grad_(True)
    loss, _ = reprojection_loss(world, pixels, K, T, 50.0, config)
    loss.backward()
    assert float(world.grad[0, 2]) < 0  # gradient descent moves the point forward


def test_depth_loss_sees_the_error_along_the_ray_that_reprojection_cannot() -> None:
    config = MappingConfig(depth=True)
    points_cam = torch.tensor([[0.2, 0.1, 2.0], [-0.5, 0.3, 4.0]])
    pixels = (points_cam[:, :2] / points_cam[:, 2:]) * 500.0 + torch.tensor([320.0, 240.0])
    sensor_depths = points_cam[:, 2].clone()
    world, K, T = _camera_batch(points_cam)
    loss, _ = reprojection_loss(world, pixels, K, T, 50.0, config, sensor_depths)
    assert float(loss) == pytest.approx(0.0, abs=1e-4)
    # 10 % too far along the ray: no reprojection error, a 3D error of 0.1 * |X| pixel units
    world_far, _, _ = _camera_batch(points_cam * 1.1)
    rgb_loss, _ = reprojection_loss(world_far, pixels, K, T, 50.0, config)
    assert float(rgb_loss) == pytest.approx(0.0, abs=1e-4)
    loss, _ = reprojection_loss(world_far, pixels, K, T, 50.0, config, sensor_depths)
    error_px = 500.0 * 0.1 * torch.linalg.vector_norm(points_cam, dim=1) / sensor_depths
    expected = (50.0 * torch.tanh(error_px / 50.0)).sum() / 2
    assert float(loss) == pytest.approx(float(expected), rel=1e-4)
    # a patch without sensor depth (0) gets the reprojection loss only
    loss, _ = reprojection_loss(world_far, pixels, K, T, 50.0, config,
                                torch.tensor([0.0, 0.0]))
    assert float(loss) == pytest.approx(0.0, abs=1e-4)


def test_invalid_predictions_with_depth_are_pulled_to_their_sensor_point() -> None:
    config = MappingConfig(depth=True)
    behind = torch.tensor([[0.0, 0.0, -1.0]])
    world, K, T = _camera_batch(behind)
    loss, valid = reprojection_loss(world, torch.tensor([[320.0, 240.0]]), K, T, 50.0, config,
                                    torch.tensor([2.0]))
    assert valid.tolist() == [False]
    assert float(loss) == pytest.approx(3.0, rel=1e-5)  # from z = -1 to the sensor's z = 2


def test_clamp_schedule_shrinks_from_max_to_min() -> None:
    config = MappingConfig(clamp_max_px=50.0, clamp_min_px=1.0)
    values = [soft_clamp_px(p, config) for p in np.linspace(0, 1, 11)]
    assert values[0] == pytest.approx(50.0)
    assert values[-1] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_presets() -> None:
    assert {"gpu", "cpu", "test"} <= set(PRESETS)
    assert preset("cpu", seed=7).seed == 7
    with pytest.raises(ValueError, match="unknown mapping preset"):
        preset("huge")
    # the cpu map must fit the 4.1 MB cap: fp16 head weights
    for name in ("cpu", "gpu"):
        head = SceneHead(dataclasses.replace(PRESETS[name].head, in_channels=192))
        assert 2 * sum(p.numel() for p in head.parameters()) < 4.1e6
    with pytest.raises(ValueError, match="lr_min"):
        dataclasses.replace(MappingConfig(), lr_min=1.0, lr_max=0.1)
    for height in (0, 250):
        with pytest.raises(ValueError, match="image_height must be a positive multiple of 32"):
            MappingConfig(image_height=height)


def test_patch_budget_respects_buffer_cap() -> None:
    assert patch_budget(MappingConfig(patches_per_image=1500), 500) == 1500
    capped = MappingConfig(patches_per_image=1500, max_buffer_patches=100_000,
                           augmentation_passes=2)
    assert patch_budget(capped, 500) == 100
    assert patch_budget(MappingConfig(patches_per_image=None), 10) is None
    gpu = PRESETS["gpu"]
    assert patch_budget(gpu, 1000) * 1000 * gpu.augmentation_passes <= 8_000_000
