"""Choosing and building the keyframes a map stores for pose refinement.

After training, a budget of mapping frames is chosen to cover the mapped poses (farthest-point
sampling in pose space), and each becomes a keyframe: its XFeat keypoints and descriptors
from one encoder pass, and a 3D point for each keypoint. With sensor depth (RGB-D mapping) the
point is the keypoint lifted with the registered depth under the frame's pose, where the depth
is valid and not at a depth edge; elsewhere, and for RGB maps, it is the point the trained head
predicts there (its dense prediction, bilinearly interpolated at the keypoint), kept only when
it reprojects onto the keypoint (the head is accurate at its mapping views, not everywhere). In
RGB maps that point is then moved onto the keypoint's ray at the head's depth (the mapping pose
fixes the ray; the head's sideways error only adds to its depth error). An RGB-D map's head
points are the keypoints at depth edges or without valid depth, where the ray may pass the
surface the head's point lies on: they stay as the head predicts them (moving them cost refined
poses precision on the redkitchen splits, ``bench/results/NOTES.md``).
Depth-lifted points are the scene's geometry rather than the map's estimate of it, which makes
refined poses more precise where queries leave the mapping views (README, Benchmarks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.depth import depths_at
from seqace_ros.core.encoder import Encoder
from seqace_ros.core.geometry import invert_transform, transform_points
from seqace_ros.core.head import SceneHead
from seqace_ros.core.keyframes import DESCRIPTOR_DIM, Keyframes, pose_distances
from seqace_ros.core.sparse_features import sample_at_pixels
from seqace_ros.datasets.base import PosedFrameSource
from seqace_ros.pipeline.localization.local_map import reprojection_errors_px


@dataclass(frozen=True)
class KeyframeConfig:
    """How many keyframes a map stores and what each holds.

    Attributes:
        count: most keyframes (fewer when there are fewer mapping frames); 0: none.
        keypoints: most XFeat keypoints per keyframe.
        rotation_weight_m: metres of camera travel one radian of viewing-direction change
            counts as, when spreading keyframes over the mapped poses.
        max_error_px: a keypoint whose head point reprojects farther than this from it in
            its own keyframe is dropped (the head is wrong there; matching it would pull
            refined poses off); pixels of the network input, like the localizer's thresholds
            (scaled to the keyframe image's own pixels).
        descriptor_bytes: bytes each keypoint descriptor is stored in: product-quantization
            codes (a divisor of 64; see :mod:`seqace_ros.core.product_quantizer`), or 0 for 64
            float16 values (128 bytes); map sizes in the README ("Keyframe descriptors in 16
            bytes"). Codes are stored only where they make the keyframes smaller: the codec
            (a 64 x 64 rotation and 256 centroids per group) has a fixed size, which outweighs
            the codes of a few descriptors.
    """

    count: int = 96
    keypoints: int = 1024
    rotation_weight_m: float = 0.5
    max_error_px: float = 4.0
    descriptor_bytes: int = 16

    def __post_init__(self) -> None:
        if self.count < 0 or self.keypoints < 16 or self.rotation_weight_m < 0:
            raise ValueError(
                "need keyframe count >= 0, keypoints >= 16, rotation_weight_m >= 0; got "
                f"{self.count}, {self.keypoints}, {self.rotation_weight_m}")
        if self.max_error_px <= 0:
            raise ValueError(f"max_error_px must be positive, got {self.max_error_px}")
        if self.descriptor_bytes < 0 or (self.descriptor_bytes
                                         and DESCRIPTOR_DIM % self.descriptor_bytes):
            raise ValueError(f"descriptor_bytes must be 0 (float16) or a divisor of "
                             f"{DESCRIPTOR_DIM}, got {self.descriptor_bytes}")


@dataclass(frozen=True)
class SensorDepth:
    """How keyframes read sensor depth at their keypoints (the mapping run's depth settings,
    see :func:`~seqace_ros.core.depth.depths_at`).

    Attributes:
        window_px: half-size of the neighbourhood whose median depth a keypoint takes.
        max_spread: largest accepted (max - min) / median depth in that neighbourhood.
    """

    window_px: int
    max_spread: float


def select_keyframes(T_world_cam_F44: NDArray[np.floating], count: int,
                     rotation_weight_m: float) -> NDArray[np.int64]:
    """Positions (ascending) of at most ``count`` of F poses that cover them all: greedy
    farthest-point sampling from the first pose with :func:`pose_distances`."""
    total = len(T_world_cam_F44)
    if count <= 0 or total == 0:
        return np.zeros(0, dtype=np.int64)
    chosen = [0]
    nearest = pose_distances(T_world_cam_F44, T_world_cam_F44[0], rotation_weight_m)
    while len(chosen) < min(count, total):
        farthest = int(np.argmax(nearest))
        if nearest[farthest] <= 0.0:
            break  # every remaining pose repeats a chosen one
        chosen.append(farthest)
        nearest = np.minimum(nearest, pose_distances(T_world_cam_F44, T_world_cam_F44[farthest],
                                                     rotation_weight_m))
    return np.sort(np.asarray(chosen, dtype=np.int64))


def lift_keypoints(T_world_cam: NDArray[np.floating], intrinsics: Intrinsics,
                   keypoints_N2: NDArray[np.float64],
                   depths_N: NDArray[np.float64]) -> NDArray[np.float64]:
    """World points (N, 3), metres, of the keyframe's keypoints (N, 2) (u, v pixels) at the
    camera-frame depths ``depths_N`` (N,) metres, under its camera-to-world pose."""
    return transform_points(T_world_cam, intrinsics.backproject(keypoints_N2, depths_N))


def on_keypoint_rays(T_world_cam: NDArray[np.floating], intrinsics: Intrinsics,
                     keypoints_N2: NDArray[np.float64],
                     points_N3: NDArray[np.float64]) -> NDArray[np.float64]:
    """World points (N, 3), metres, on the rays of the keyframe's keypoints (N, 2) (u, v pixels)
    at the camera-frame depth of the head's points ``points_N3`` (world frame): each head point
    moved sideways onto its keypoint's ray.

    The keyframe's pose is a mapping pose, so the ray through a keypoint is known; the head's
    point, interpolated between patch centres, only adds its own sideways error to it. Points
    behind the camera get a NaN depth; callers drop them (their reprojection error is infinite).
    """
    depth_N = transform_points(invert_transform(T_world_cam), points_N3)[:, 2]
    depth_N = np.where(depth_N > 0, depth_N, np.nan)
    return lift_keypoints(T_world_cam, intrinsics, keypoints_N2, depth_N)


@torch.inference_mode()
def build_keyframes(
    frames: PosedFrameSource, indices: Sequence[int], encoder: Encoder, head: SceneHead,
    config: KeyframeConfig, progress: bool = False, sensor_depth: SensorDepth | None = None,
) -> Keyframes:
    """Keyframes of the posed frames ``indices``: keypoints, descriptors and their 3D points
    (``config.keypoints`` per frame at most): depth-lifted with ``sensor_depth``, else the
    head's points it gets right (see ``max_error_px``), on their keypoints' rays without
    ``sensor_depth`` (see the module docstring); the descriptors product-quantized as
    ``config.descriptor_bytes`` asks where that makes the keyframes smaller.

    Raises:
        ValueError: no frames, a frame without a pose, or without depth when
            ``sensor_depth`` is given.
    """
    if len(indices) == 0:
        raise ValueError("keyframes need at least one frame")
    poses, descriptors, points, counts = [], [], [], []
    for index in tqdm(indices, desc="keyframes", unit="img", disable=not progress,
                      dynamic_ncols=True):
        frame = frames[index]
        if frame.T_world_cam is None:
            raise ValueError(f"keyframe {frame.name} has no pose")
        output = encoder.encode(frame.image_rgb, num_keypoints=config.keypoints)
        assert output.sparse is not None  # asked for keypoints
        channels, grid_h, grid_w = output.features_CHW.shape
        field_3hw = head(output.features_CHW.reshape(channels, -1).T).T.reshape(3, grid_h, grid_w)
        pixels_N2 = torch.from_numpy(output.sparse.keypoints_N2).to(field_3hw.device)
        points_N3 = sample_at_pixels(field_3hw.float(), pixels_N2, frame.image_rgb.shape[:2],
                                     "bilinear").cpu().double().numpy()
        keypoints_N2 = output.sparse.keypoints_N2.astype(np.float64)
        max_error_px = config.max_error_px * frame.image_rgb.shape[0] / output.input_height
        right_N = reprojection_errors_px(frame.T_world_cam, frame.intrinsics, keypoints_N2,
                                         points_N3) < max_error_px
        if sensor_depth is None:
            points_N3 = on_keypoint_rays(frame.T_world_cam, frame.intrinsics, keypoints_N2,
                                         points_N3)
        else:
            if frame.depth is None:
                raise ValueError(f"keyframe {frame.name} has no depth image")
            depth_N, has_depth_N = depths_at(
                keypoints_N2, frame.depth.registered_to(frame.intrinsics), sensor_depth.window_px,
                sensor_depth.max_spread)
            lifted_N3 = lift_keypoints(frame.T_world_cam, frame.intrinsics, keypoints_N2,
                                       depth_N)
            points_N3 = np.where(has_depth_N[:, None], lifted_N3, points_N3)
            right_N |= has_depth_N
        poses.append(frame.T_world_cam.astype(np.float32))
        descriptors.append(output.sparse.descriptors_ND[right_N].astype(np.float16))
        points.append(points_N3[right_N].astype(np.float32))
        counts.append(int(right_N.sum()))
    keyframes = Keyframes(
        T_world_cam_K44=np.stack(poses),
        offsets_K1=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        descriptors_ND=np.concatenate(descriptors),
        points_N3=np.concatenate(points),
        points_from_depth=sensor_depth is not None,
    )
    if config.descriptor_bytes and len(keyframes.descriptors_ND):
        quantized = keyframes.quantize(config.descriptor_bytes)
        if quantized.nbytes < keyframes.nbytes:  # the codec's size is fixed: few descriptors
            return quantized                     # stay float16
    return keyframes


def map_keyframes(
    frames: PosedFrameSource, indices: Sequence[int], T_world_cam_F44: NDArray[np.floating],
    encoder: Encoder, head: SceneHead, config: KeyframeConfig, progress: bool = False,
    sensor_depth: SensorDepth | None = None,
) -> Keyframes | None:
    """The keyframes of a map trained on ``frames[indices]`` (poses ``T_world_cam_F44``, in
    the same order): ``config.count`` of them spread over the poses, ``None`` for count 0;
    their points lifted with ``sensor_depth`` where it is valid (RGB-D mapping)."""
    chosen = select_keyframes(T_world_cam_F44, config.count, config.rotation_weight_m)
    if not len(chosen):
        return None
    return build_keyframes(frames, [indices[int(p)] for p in chosen], encoder, head, config,
                           progress, sensor_depth)
