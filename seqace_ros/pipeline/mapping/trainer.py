"""Training a scene head on a feature buffer (the ACE recipe, written for this project).

Loss per patch, for the prediction X (world) moved into its frame's camera (X_cam):

- valid (depth in [depth_min, depth_max] and reprojection error e < hard clamp):
  ``c * tanh(e / c)`` with a soft clamp c shrinking from ``clamp_max_px`` to ``clamp_min_px``
  on a quarter circle (slowly first, then fast);
- invalid: ``|X_cam - ray(u, v) * depth_target|``, pulling it in front of the camera.

RGB-D mapping (``config.depth``, a buffer with sensor depths): a patch with sensor depth d
has the 3D target ``ray(u, v) * d``. A valid prediction adds, times ``depth_loss_weight``,
the same soft clamp of its 3D error in pixel units, ``fx * |X_cam - ray * d| / d`` (the
lateral part of that error is the reprojection error; the rest is the error along the ray,
which the reprojection loss cannot see); an invalid prediction is pulled to its sensor point
instead of the ray point at ``depth_target``.

With ``config.sequence`` (SeqACE), a tracked salient patch's prediction X is also reprojected
into the keyframe where its track started (:func:`keyframe_loss`): the same physical point
must project onto the track's keyframe pixel too, which triangulates X across views. Its
soft-clamped error, times ``sequence_loss_weight``, is added for predictions in front of the
keyframe camera (depth and hard clamp as above); other tracked patches and untracked ones
get only the per-frame loss.

Summed and divided by the batch size. AdamW with a one-cycle learning rate. Mixed precision
(:func:`autocast_dtype`): fp16 autocast on CUDA, bf16 autocast on CPUs with native bf16
matrix units (AMX or AVX512-BF16, where a step is faster than in fp32); the loss is always
computed in fp32. Patches are visited in a seeded
random order, epoch after epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from seqace_ros.core.head import HeadConfig, SceneHead
from seqace_ros.core.stop import check_stop
from seqace_ros.pipeline.mapping.buffer import FeatureBuffer
from seqace_ros.pipeline.mapping.config import MappingConfig

#: ``(step, batch loss, valid fraction)`` observer of training (see :func:`train_head`).
StepCallback = Callable[[int, float, float], None]


@dataclass(frozen=True)
class TrainingStats:
    """What training did: steps, patches seen, time, last smoothed loss, valid fraction."""

    iterations: int
    patches_seen: int
    seconds: float
    final_loss: float
    final_valid_fraction: float


def autocast_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype for training the head on ``device``, or ``None`` for plain fp32.

    fp16 on CUDA; bf16 on a CPU that multiplies bf16 natively (AMX-BF16 or AVX512-BF16);
    ``None`` elsewhere, where emulated bf16 would be slower than fp32.
    """
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu":
        capabilities = torch.cpu.get_capabilities()
        if capabilities.get("amx_bf16") or capabilities.get("avx512_bf16"):
            return torch.bfloat16
    return None


def soft_clamp_px(progress: float, config: MappingConfig) -> float:
    """Soft clamp (pixels) at training ``progress`` in [0, 1] (quarter-circle schedule)."""
    weight = math.sqrt(max(0.0, 1.0 - progress * progress))
    return config.clamp_min_px + (config.clamp_max_px - config.clamp_min_px) * weight


def _reproject(
    scene_points_B3: torch.Tensor, pixels_B2: torch.Tensor, K_B33: torch.Tensor,
    T_cam_world_B44: torch.Tensor, config: MappingConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """World points in camera coordinates (B, 3), their reprojection error against
    ``pixels_B2`` (B,) in pixels (depth clamped at ``depth_min_m`` for the division), and the
    (B,) mask of valid predictions: depth in (depth_min, depth_max), error under the hard clamp.
    """
    points_cam_B3 = (torch.einsum("bij,bj->bi", T_cam_world_B44[:, :3, :3], scene_points_B3)
                     + T_cam_world_B44[:, :3, 3])
    depth_B = points_cam_B3[:, 2]
    projected_B3 = torch.einsum("bij,bj->bi", K_B33, points_cam_B3)
    safe_depth_B = depth_B.clamp(min=config.depth_min_m)
    uv_B2 = projected_B3[:, :2] / safe_depth_B[:, None]
    error_px_B = torch.linalg.vector_norm(uv_B2 - pixels_B2, dim=1)
    valid_B = ((depth_B > config.depth_min_m) & (depth_B < config.depth_max_m)
               & (error_px_B < config.hard_clamp_px))
    return points_cam_B3, error_px_B, valid_B


def reprojection_loss(
    scene_points_B3: torch.Tensor, pixels_B2: torch.Tensor, K_B33: torch.Tensor,
    T_cam_world_B44: torch.Tensor, clamp_px: float, config: MappingConfig,
    depths_B: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss over the batch and the (B,) mask of valid predictions.

    Args:
        scene_points_B3: predicted world points (metres).
        pixels_B2: observed patch centres (u, v) in pixels of the frame.
        K_B33: intrinsics of each patch's frame.
        T_cam_world_B44: world-to-camera pose of each patch's frame.
        clamp_px: current soft clamp.
        config: thresholds (depth range, hard clamp, depth target), depth loss weight.
        depths_B: sensor z-depth (metres) of each patch centre, 0 where none; ``None``
            without depth (RGB mapping).
    """
    points_cam_B3, error_px_B, valid_B = _reproject(
        scene_points_B3, pixels_B2, K_B33, T_cam_world_B44, config)
    loss = (clamp_px * torch.tanh(error_px_B[valid_B] / clamp_px)).sum()
    fx, fy = K_B33[:, 0, 0], K_B33[:, 1, 1]
    cx, cy = K_B33[:, 0, 2], K_B33[:, 1, 2]
    ray_B3 = torch.stack([(pixels_B2[:, 0] - cx) / fx, (pixels_B2[:, 1] - cy) / fy,
                          torch.ones_like(fx)], dim=1)
    target_depth_B = torch.full_like(fx, config.depth_target_m)
    if depths_B is not None:
        has_depth_B = depths_B > 0
        target_depth_B = torch.where(has_depth_B, depths_B, target_depth_B)
        supervised_B = has_depth_B & valid_B
        error_3d_px_B = (fx * torch.linalg.vector_norm(
            points_cam_B3 - ray_B3 * target_depth_B[:, None], dim=1) / target_depth_B)
        loss = loss + config.depth_loss_weight * (
            clamp_px * torch.tanh(error_3d_px_B[supervised_B] / clamp_px)).sum()
    target_B3 = ray_B3 * target_depth_B[:, None]
    invalid_B = ~valid_B
    invalid_loss = torch.linalg.vector_norm(
        points_cam_B3[invalid_B] - target_B3[invalid_B], dim=1).sum()
    return (loss + invalid_loss) / scene_points_B3.shape[0], valid_B


def keyframe_loss(
    scene_points_T3: torch.Tensor, keyframe_pixels_T2: torch.Tensor, K_T33: torch.Tensor,
    T_cam_world_T44: torch.Tensor, clamp_px: float, config: MappingConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over T tracked patches of the soft-clamped reprojection error into their keyframes.

    Args:
        scene_points_T3: predicted world points (metres) of the tracked patches.
        keyframe_pixels_T2: each track's pixel (u, v) in its keyframe.
        K_T33: intrinsics of each patch's keyframe.
        T_cam_world_T44: world-to-camera pose of each patch's keyframe.
        clamp_px: current soft clamp (pixels).
        config: thresholds (depth range, hard clamp).

    Returns:
        ``(loss_sum, valid_T)``: the sum (a scalar; the caller weights it and divides by the
        batch size) and the mask of predictions that count: in front of the keyframe camera
        within the depth range and under the hard clamp. Others add nothing here.
    """
    _, error_px_T, valid_T = _reproject(
        scene_points_T3, keyframe_pixels_T2, K_T33, T_cam_world_T44, config)
    return (clamp_px * torch.tanh(error_px_T[valid_T] / clamp_px)).sum(), valid_T


def train_head(
    buffer: FeatureBuffer, head_config: HeadConfig, scene_centre_3: torch.Tensor,
    config: MappingConfig, device: torch.device, progress: bool = True,
    on_step: StepCallback | None = None,
) -> tuple[SceneHead, TrainingStats]:
    """Train a new head on ``buffer``; returns it (eval mode, on ``device``) and statistics.

    ``on_step(step, loss, valid_fraction)`` is called every 20 steps and at the last one with
    that step's batch loss and fraction of valid predictions (for loss curves and progress).
    The keyframe loss is used when ``config.sequence`` is set and ``buffer`` has track links
    (:func:`~seqace_ros.pipeline.mapping.buffer.link_tracks`); the reported batch loss then
    includes it.

    Raises:
        ValueError: ``config.sequence`` is set but ``buffer`` has no track links, or
            ``config.depth`` is set but ``buffer`` has no depths.
        StopRequested: a stop signal arrived (checked before every step).
    """
    if config.depth and buffer.depths_N is None:
        raise ValueError("config.depth needs a buffer with sensor depths (build_buffer)")
    track_links: tuple[torch.Tensor, torch.Tensor] | None = None
    if config.sequence:
        if buffer.keyframe_ids_N is None or buffer.keyframe_pixels_N2 is None:
            raise ValueError("config.sequence needs a buffer with track links (link_tracks)")
        if config.sequence_loss_weight > 0:
            track_links = (buffer.keyframe_ids_N.to(device), buffer.keyframe_pixels_N2.to(device))
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed + 1)
    head = SceneHead(head_config, scene_centre_3).to(device).train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr_min)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr_max, total_steps=config.iterations,
        div_factor=config.lr_max / config.lr_min, final_div_factor=1.0, cycle_momentum=False)
    amp_dtype = autocast_dtype(device, config.mixed_precision)
    # Loss scaling guards fp16 gradients against underflow; bf16 has fp32's exponent range.
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    on_device = device.type == "cuda"
    features = buffer.features_NC.to(device) if on_device else buffer.features_NC
    pixels = buffer.pixels_N2.to(device)
    frame_ids = buffer.frame_ids_N.to(device)
    depths = buffer.depths_N.to(device) if config.depth and buffer.depths_N is not None else None
    K_F33 = buffer.K_F33.to(device)
    T_cam_world_F44 = buffer.T_cam_world_F44.to(device)
    n = len(buffer)
    batch_size = min(config.batch_size, n)
    order = torch.randperm(n, generator=generator)
    cursor = 0
    smoothed_loss, valid_fraction = float("nan"), float("nan")
    start = time.perf_counter()
    bar = tqdm(range(config.iterations), desc="training", unit="it", disable=not progress,
               dynamic_ncols=True)
    for step in bar:
        check_stop()
        if cursor + batch_size > n:
            order = torch.randperm(n, generator=generator)
            cursor = 0
        batch = order[cursor : cursor + batch_size]
        cursor += batch_size
        batch_dev = batch.to(device)
        features_BC = features[batch_dev] if on_device else features[batch].to(device)
        ids = frame_ids[batch_dev]
        clamp_px = soft_clamp_px(step / config.iterations, config)
        with torch.autocast(device_type=device.type, dtype=amp_dtype or torch.float32,
                            enabled=amp_dtype is not None):
            scene_points_B3 = head(features_BC.float())
        scene_points_B3 = scene_points_B3.float()
        loss, valid_B = reprojection_loss(
            scene_points_B3, pixels[batch_dev], K_F33[ids], T_cam_world_F44[ids],
            clamp_px, config, None if depths is None else depths[batch_dev])
        if track_links is not None:
            keyframe_ids_B, keyframe_pixels_B2 = (links[batch_dev] for links in track_links)
            tracked_B = keyframe_ids_B >= 0
            keyframes_T = keyframe_ids_B[tracked_B]
            track_sum, _ = keyframe_loss(
                scene_points_B3[tracked_B], keyframe_pixels_B2[tracked_B],
                K_F33[keyframes_T], T_cam_world_F44[keyframes_T], clamp_px, config)
            loss = loss + config.sequence_loss_weight * track_sum / batch_size
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if step % 20 == 0 or step == config.iterations - 1:
            value = float(loss.detach())
            smoothed_loss = (value if math.isnan(smoothed_loss)
                             else 0.8 * smoothed_loss + 0.2 * value)
            valid_fraction = float(valid_B.float().mean())
            if on_step is not None:
                on_step(step, value, valid_fraction)
            bar.set_postfix(loss=f"{smoothed_loss:.2f}", valid=f"{valid_fraction:.2f}",
                            clamp=f"{clamp_px:.1f}")
    bar.close()
    stats = TrainingStats(
        iterations=config.iterations,
        patches_seen=config.iterations * batch_size,
        seconds=time.perf_counter() - start,
        final_loss=smoothed_loss,
        final_valid_fraction=valid_fraction)
    return head.eval().requires_grad_(False), stats
