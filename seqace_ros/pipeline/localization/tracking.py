"""Frame-to-frame point tracking by pyramidal Lucas-Kanade optical flow, checked both ways.

Flow runs on a downscaled grey image (:func:`flow_image`, ``image_scale``; pixels in and out
are full-resolution pixels): a downscaled image with a small window costs a fraction of
full resolution with a large one, and its tracks stay far more precise than the scene
coordinates they carry. A point is tracked from the previous image
into the current one and back again; it survives only when the round trip lands within
``max_fb_error_px`` of where it started and the forward position lies inside the current
image. That check rejects most tracks lost to occlusion, blur or a jump of the camera (a
kidnap), which then show up as a collapse in the number of surviving tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.errors import SeqaceError


class TrackingConfigError(SeqaceError, ValueError):
    """An optical-flow setting outside its valid range."""


@dataclass(frozen=True)
class FlowConfig:
    """Lucas-Kanade settings.

    Attributes:
        image_scale: flow runs on images downscaled by this factor, in (0, 1].
        window_px: side of the square search window at each pyramid level, flow-image
            pixels (odd).
        pyramid_levels: extra pyramid levels (0 = full resolution only).
        max_iterations: iterations per level.
        epsilon: iteration stops when the update is smaller than this (pixels).
        max_fb_error_px: largest forward-backward round-trip error of a kept track,
            full-resolution pixels.
    """

    image_scale: float = 0.5
    window_px: int = 9
    pyramid_levels: int = 2
    max_iterations: int = 20
    epsilon: float = 0.03
    max_fb_error_px: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.image_scale <= 1.0:
            raise TrackingConfigError(f"image_scale must be in (0, 1], got {self.image_scale}")
        if self.window_px < 3 or self.window_px % 2 == 0:
            raise TrackingConfigError(f"window_px must be odd and >= 3, got {self.window_px}")
        if self.pyramid_levels < 0 or self.max_iterations < 1:
            raise TrackingConfigError(
                f"need pyramid_levels >= 0 and max_iterations >= 1, got "
                f"{self.pyramid_levels}, {self.max_iterations}")
        if self.epsilon <= 0 or self.max_fb_error_px <= 0:
            raise TrackingConfigError(
                f"need epsilon > 0 and max_fb_error_px > 0, got {self.epsilon}, "
                f"{self.max_fb_error_px}")


def flow_image(image_rgb: NDArray[np.uint8], config: FlowConfig) -> NDArray[np.uint8]:
    """The image flow runs on: (round(H * s), round(W * s)) uint8 grey, ``s = image_scale``."""
    gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    if config.image_scale == 1.0:
        return gray
    height, width = gray.shape
    size = (max(1, round(width * config.image_scale)), max(1, round(height * config.image_scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def track_points(
    previous_gray: NDArray[np.uint8], current_gray: NDArray[np.uint8],
    points_N2: NDArray[np.float64], config: FlowConfig,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Track pixels of the previous image into the current one.

    Args:
        previous_gray: (h, w) uint8 previous flow image (:func:`flow_image` with ``config``).
        current_gray: (h, w) uint8 current flow image, same size.
        points_N2: (N, 2) full-resolution pixel positions (u, v) in the previous image.
        config: optical-flow settings (the ones the flow images were made with).

    Returns:
        ``(tracked_N2, ok_N)``: (N, 2) float64 full-resolution positions in the current
        image and the (N,) bool mask of tracks that passed the forward-backward and
        inside-the-image checks (rows where ``ok_N`` is False hold meaningless positions).

    Raises:
        TrackingConfigError: when the images differ in size or are not 2-D uint8.
    """
    if previous_gray.shape != current_gray.shape or previous_gray.ndim != 2:
        raise TrackingConfigError(
            f"need two grey images of the same (H, W) size, got {previous_gray.shape} and "
            f"{current_gray.shape}")
    if len(points_N2) == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=bool)
    window = (config.window_px, config.window_px)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, config.max_iterations,
                config.epsilon)
    scale = config.image_scale  # pixel centres: u_flow + 0.5 = (u + 0.5) * scale
    start = np.ascontiguousarray((points_N2 + 0.5) * scale - 0.5, dtype=np.float32)
    start = start.reshape(-1, 1, 2)
    forward, ok_forward, _ = cv2.calcOpticalFlowPyrLK(
        previous_gray, current_gray, start, None, winSize=window,
        maxLevel=config.pyramid_levels, criteria=criteria)
    backward, ok_backward, _ = cv2.calcOpticalFlowPyrLK(
        current_gray, previous_gray, forward, None, winSize=window,
        maxLevel=config.pyramid_levels, criteria=criteria)
    forward_N2 = forward.reshape(-1, 2).astype(np.float64)
    fb_error_N = np.linalg.norm(backward.reshape(-1, 2) - start.reshape(-1, 2), axis=1) / scale
    height, width = current_gray.shape
    inside_N = ((forward_N2[:, 0] >= 0) & (forward_N2[:, 0] <= width - 1)
                & (forward_N2[:, 1] >= 0) & (forward_N2[:, 1] <= height - 1))
    ok_N = (ok_forward.ravel() == 1) & (ok_backward.ravel() == 1) & inside_N
    ok_N &= fb_error_N < config.max_fb_error_px
    return (forward_N2 + 0.5) / scale - 0.5, ok_N
