"""The training buffer: encoder features of augmented mapping images with their pixel rays.

Each augmented mapping image contributes its salient patches (top-K keypoint cells after NMS)
first, then random other valid patches up to a per-image budget. A patch is valid when its
centre maps back inside the original image (rotation leaves black corners). Each patch keeps
its centre in ORIGINAL image pixels and the id of its frame, whose intrinsics and world-to-
camera pose the reprojection loss uses.

For RGB-D mapping (``config.depth``) each patch also keeps the sensor depth at its centre:
the frame's depth image is registered to the colour camera once and read at the patch
centres (median of a small neighbourhood, none at depth edges).

For SeqACE's sequence loss, :func:`link_tracks` then gives each salient patch that lies on a
feature track the keyframe where that track started and its pixel there (both in original
image pixels, like the patch centres, so the augmentation warp plays no part).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from seqace_ros.core.depth import depths_at
from seqace_ros.core.encoder import Encoder
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import invert_transform
from seqace_ros.core.keypoints import cell_centres_px, select_salient_cells
from seqace_ros.datasets.base import PosedFrameSource
from seqace_ros.pipeline.mapping.augment import random_augmentation
from seqace_ros.pipeline.mapping.config import MappingConfig
from seqace_ros.pipeline.mapping.tracks import FeatureTracks, link_patches

#: Patch centres closer than this to the original image border (pixels) are not used.
BORDER_MARGIN_PX = 4.0


class MappingDataError(SeqaceError, ValueError):
    """Mapping frames that cannot be used (no pose, no frames)."""


@dataclass(frozen=True)
class FeatureBuffer:
    """Patches for training, on the CPU.

    Attributes:
        features_NC: (N, C) float16 encoder features.
        pixels_N2: (N, 2) float32 patch centres (u, v) in original image pixels.
        frame_ids_N: (N,) int64 index into the per-frame tables.
        salient_N: (N,) bool, True for salient (keypoint) patches.
        K_F33: (F, 3, 3) float32 intrinsics of each mapping frame.
        T_cam_world_F44: (F, 4, 4) float32 world-to-camera pose of each mapping frame.
        camera_centres_F3: (F, 3) float64 camera positions in the world (metres).
        keyframe_ids_N: (N,) int64 keyframe (frame id) of each patch's track, -1 for patches
            on no track; ``None`` when tracks were not linked (see :func:`link_tracks`).
        keyframe_pixels_N2: (N, 2) float32 the patch's pixel (u, v) in that keyframe, original
            image pixels; ``None`` with ``keyframe_ids_N``.
        depths_N: (N,) float32 colour-camera z-depth (metres) of each patch centre from the
            sensor, 0 where none; ``None`` when mapping without depth.
    """

    features_NC: torch.Tensor
    pixels_N2: torch.Tensor
    frame_ids_N: torch.Tensor
    salient_N: torch.Tensor
    K_F33: torch.Tensor
    T_cam_world_F44: torch.Tensor
    camera_centres_F3: np.ndarray
    keyframe_ids_N: torch.Tensor | None = None
    keyframe_pixels_N2: torch.Tensor | None = None
    depths_N: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.features_NC.shape[0])

    def tracked_patches(self) -> int:
        """Patches linked to a track's keyframe (0 when tracks were not linked)."""
        if self.keyframe_ids_N is None:
            return 0
        return int((self.keyframe_ids_N >= 0).sum())


def _select_patches(
    scores_HW: torch.Tensor, valid_HW: torch.Tensor, budget: int | None, config: MappingConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, int]:
    """Flat indices of at most ``budget`` patches to keep (salient first), and how many are
    salient."""
    valid_flat = valid_HW.flatten()
    masked = torch.where(valid_HW, scores_HW, torch.full_like(scores_HW, -1.0))
    salient = torch.zeros(0, dtype=torch.long)
    if config.salient_per_image > 0:
        salient = select_salient_cells(masked, config.salient_per_image, config.nms_radius)
        salient = salient[valid_flat[salient]][:budget]
    taken = torch.zeros_like(valid_flat)
    taken[salient] = True
    rest = torch.nonzero(valid_flat & ~taken).flatten()
    rest = rest[torch.randperm(rest.numel(), generator=generator)]
    if budget is not None:
        rest = rest[: max(0, budget - salient.numel())]
    return torch.cat([salient, rest]), int(salient.numel())


def patch_budget(config: MappingConfig, num_images: int) -> int | None:
    """Patches per augmented image: ``patches_per_image``, lowered so the buffer holds at most
    ``max_buffer_patches``; ``None`` means all valid patches."""
    budget = config.patches_per_image
    if config.max_buffer_patches is not None:
        share = max(1, config.max_buffer_patches // (num_images * config.augmentation_passes))
        budget = share if budget is None else min(budget, share)
    return budget


def build_buffer(
    frames: PosedFrameSource, indices: Sequence[int], encoder: Encoder, config: MappingConfig,
    progress: bool = True,
) -> FeatureBuffer:
    """Encode augmented copies of the frames ``indices`` of ``frames`` into a buffer.

    Raises:
        MappingDataError: when no frame is given, a frame has no pose, or ``config.depth``
            is set and a frame has no depth.
    """
    if len(indices) == 0:
        raise MappingDataError("mapping needs at least one frame, got none")
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    features, pixels, frame_ids, salient_flags, depths = [], [], [], [], []
    K_list, T_cam_world_list, centres = [], [], []
    budget = patch_budget(config, len(indices))
    bar = tqdm(total=len(indices) * config.augmentation_passes, desc="encoding",
               unit="img", disable=not progress, dynamic_ncols=True)
    for frame_id, index in enumerate(indices):
        frame = frames[index]
        if frame.T_world_cam is None:
            raise MappingDataError(f"mapping frame {frame.name} has no pose")
        K_list.append(frame.intrinsics.K)
        T_cam_world_list.append(invert_transform(frame.T_world_cam))
        centres.append(frame.T_world_cam[:3, 3])
        height, width = frame.image_rgb.shape[:2]
        registered_depth = None
        if config.depth:
            if frame.depth is None:
                raise MappingDataError(f"RGB-D mapping: frame {frame.name} has no depth")
            registered_depth = frame.depth.registered_to(frame.intrinsics)
        for _ in range(config.augmentation_passes):
            augmented = random_augmentation(frame.image_rgb, config.image_height,
                                            config.augment, rng)
            output = encoder.encode(augmented.image_rgb,
                                    network_height=augmented.image_rgb.shape[0])
            grid_h, grid_w = output.scores_HW.shape
            all_cells = torch.arange(grid_h * grid_w)
            uv_aug = cell_centres_px(all_cells, grid_w, encoder.stride).double().numpy()
            uv_orig = uv_aug @ augmented.A_orig_from_aug_23[:, :2].T
            uv_orig += augmented.A_orig_from_aug_23[:, 2]
            valid = ((uv_orig[:, 0] >= BORDER_MARGIN_PX)
                     & (uv_orig[:, 0] <= width - 1 - BORDER_MARGIN_PX)
                     & (uv_orig[:, 1] >= BORDER_MARGIN_PX)
                     & (uv_orig[:, 1] <= height - 1 - BORDER_MARGIN_PX))
            valid_HW = torch.from_numpy(valid).reshape(grid_h, grid_w)
            keep, n_salient = _select_patches(output.scores_HW.cpu(), valid_HW, budget,
                                              config, generator)
            features_CN = output.features_CHW.reshape(output.features_CHW.shape[0], -1)
            features.append(features_CN[:, keep.to(features_CN.device)].T.half().cpu())
            pixels.append(torch.from_numpy(uv_orig[keep.numpy()]).float())
            if registered_depth is not None:
                depth_K, _ = depths_at(uv_orig[keep.numpy()], registered_depth,
                                       config.depth_window_px, config.depth_max_spread)
                depths.append(torch.from_numpy(depth_K).float())
            frame_ids.append(torch.full((keep.numel(),), frame_id, dtype=torch.long))
            flags = torch.zeros(keep.numel(), dtype=torch.bool)
            flags[:n_salient] = True
            salient_flags.append(flags)
            bar.update(1)
    bar.close()
    return FeatureBuffer(
        features_NC=torch.cat(features),
        pixels_N2=torch.cat(pixels),
        frame_ids_N=torch.cat(frame_ids),
        salient_N=torch.cat(salient_flags),
        K_F33=torch.from_numpy(np.stack(K_list)).float(),
        T_cam_world_F44=torch.from_numpy(np.stack(T_cam_world_list)).float(),
        camera_centres_F3=np.stack(centres),
        depths_N=torch.cat(depths) if config.depth else None)


def link_tracks(buffer: FeatureBuffer, tracks: FeatureTracks, radius_px: float) -> FeatureBuffer:
    """``buffer`` with each salient patch linked to the keyframe of the track it lies on.

    ``tracks`` must be built over the same mapping frames, in the same order (frame ids are
    positions in the mapping ``indices``). Non-salient patches are never linked; a salient
    patch links to the nearest track observation of its frame within ``radius_px`` (see
    :func:`~seqace_ros.pipeline.mapping.tracks.link_patches`).
    """
    salient = buffer.salient_N.numpy()
    keyframe_ids_S, keyframe_pixels_S2 = link_patches(
        tracks, buffer.frame_ids_N.numpy()[salient], buffer.pixels_N2.numpy()[salient],
        radius_px)
    keyframe_ids_N = torch.full((len(buffer),), -1, dtype=torch.long)
    keyframe_pixels_N2 = torch.zeros((len(buffer), 2), dtype=torch.float32)
    salient_t = torch.from_numpy(salient)
    keyframe_ids_N[salient_t] = torch.from_numpy(keyframe_ids_S)
    keyframe_pixels_N2[salient_t] = torch.from_numpy(keyframe_pixels_S2)
    return replace(buffer, keyframe_ids_N=keyframe_ids_N, keyframe_pixels_N2=keyframe_pixels_N2)
