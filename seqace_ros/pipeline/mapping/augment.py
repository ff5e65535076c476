"""Mapping-image augmentation: scale, in-plane rotation, brightness and contrast.

The augmented image is produced directly at the network input size. Instead of adjusting the
camera pose and intrinsics for the warp, the trainer maps every patch centre back into the
original image with the inverse warp: the reprojection loss then uses the original camera,
which is exact for any image-plane warp (also with fx != fy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from seqace_ros.pipeline.mapping.config import AugmentConfig


@dataclass(frozen=True)
class AugmentedImage:
    """An augmented copy of a mapping image.

    Attributes:
        image_rgb: (h, w, 3) uint8, h and w multiples of 32 (the network input).
        A_orig_from_aug_23: (2, 3) affine map from augmented pixels (u, v, 1) to original pixels.
    """

    image_rgb: NDArray[np.uint8]
    A_orig_from_aug_23: NDArray[np.float64]


def _round32(value: float) -> int:
    return max(32, round(value / 32.0) * 32)


def warp_image(
    image_rgb: NDArray[np.uint8], network_height: int, angle_deg: float,
    brightness: float = 0.0, contrast: float = 1.0,
) -> AugmentedImage:
    """Resize ``image_rgb`` to ``network_height`` (aspect kept, sides multiples of 32), rotate it
    by ``angle_deg`` about its centre, and apply ``contrast * x + brightness`` (x in 0..1).
    """
    height, width = image_rgb.shape[:2]
    out_h = _round32(network_height)
    out_w = _round32(width * out_h / height)
    sx, sy = out_w / width, out_h / height
    # original pixel -> resized pixel (pixel-centre convention), then rotation about the centre
    S = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    centre = ((out_w - 1) / 2.0, (out_h - 1) / 2.0)
    R = np.vstack([cv2.getRotationMatrix2D(centre, angle_deg, 1.0), [0.0, 0.0, 1.0]])
    A_aug_from_orig = R @ S
    interpolation = cv2.INTER_AREA if sx < 1.0 else cv2.INTER_LINEAR
    warped = cv2.warpAffine(
        image_rgb, A_aug_from_orig[:2], (out_w, out_h), flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    if brightness != 0.0 or contrast != 1.0:
        warped = np.clip(warped.astype(np.float32) * contrast + 255.0 * brightness, 0, 255)
        warped = warped.astype(np.uint8)
    A_orig_from_aug = np.linalg.inv(A_aug_from_orig)[:2]
    return AugmentedImage(image_rgb=warped, A_orig_from_aug_23=A_orig_from_aug)


def random_augmentation(
    image_rgb: NDArray[np.uint8], image_height: int, config: AugmentConfig,
    rng: np.random.Generator,
) -> AugmentedImage:
    """A random augmentation (scale log-uniform, rotation, brightness, contrast uniform)."""
    scale = math.exp(rng.uniform(math.log(config.scale_min), math.log(config.scale_max)))
    angle = rng.uniform(-config.rotation_deg, config.rotation_deg)
    brightness = rng.uniform(-config.brightness, config.brightness)
    contrast = rng.uniform(1.0 - config.contrast, 1.0 + config.contrast)
    return warp_image(image_rgb, image_height * scale, angle, brightness, contrast)
