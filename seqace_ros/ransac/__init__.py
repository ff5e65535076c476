"""Robust PnP: the Python face of the C++ RANSAC solver (``cpp_ransac``, pybind11).

Two solvers, both releasing the GIL while they run:

- :func:`solve_pnp`: one pinhole camera, N 2D-3D correspondences -> ``T_world_cam``.
- :func:`solve_generalized_pnp`: K cameras with known ``T_ref_frame`` (a generalized
  camera, e.g. the frames of a sequence) -> ``T_world_ref``.

Method: Lambda Twist P3P on three correspondences, a 4th-correspondence consistency
pre-check, DSAC*-style fixed hypothesis budget (``max_hypotheses``) with an early stop once
the best inlier ratio makes an all-inlier sample near certain (``confidence``), soft inlier
scoring (sum of ``max(0, 1 - e^2 / threshold^2)`` over reprojection errors ``e``) with early
bail-out, then Levenberg-Marquardt on SE(3) over (a subsample of) the inliers of the best
``refine_top_k`` hypotheses, repeated while the inlier set grows, and a final polish on all
inliers. Equal seeds give equal results. Poses are camera-to-world 4x4 float64, OpenCV
camera axes (x right, y down, z forward); pixels follow OpenCV (origin at the centre of the
top-left pixel). ``result.stats`` carries per-stage times (C++ side, milliseconds).

Errors: invalid input (shapes, dtypes, non-finite values, N < 4, non-positive focal
lengths, bad option values) raises ``ValueError`` naming the problem; an unknown option is
a ``TypeError``; degenerate data (collinear points, all outliers) gives
``success=False``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from seqace_ros.core.camera import Intrinsics

try:
    from seqace_ros.ransac import _ransac
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "seqace_ros.ransac._ransac, the C++ RANSAC extension, is not built or does not load "
        f"({exc}). Build it from the repository root with `scripts/setup.sh` or "
        "`python -m pip install --no-build-isolation -e .`."
    ) from exc

RansacOptions = _ransac.RansacOptions
RansacStats = _ransac.RansacStats

_DEFAULTS = _ransac.RansacOptions()
_MAX_SEED = 2**64 - 1

__all__ = [
    "GeneralizedPnPResult",
    "PnPResult",
    "RansacOptions",
    "RansacStats",
    "solve_generalized_pnp",
    "solve_pnp",
]


@dataclass(frozen=True)
class _RobustResult:
    """Fields shared by both results; ``stats`` holds the full solve statistics."""

    success: bool
    inliers: NDArray[np.bool_]
    stats: RansacStats

    @property
    def num_inliers(self) -> int:
        """Correspondences with reprojection error below the threshold."""
        return int(self.stats.num_inliers)

    @property
    def num_hypotheses(self) -> int:
        """Pose hypotheses scored (those that passed the 4th-point check)."""
        return int(self.stats.num_hypotheses)

    @property
    def score(self) -> float:
        """Soft inlier count of the returned pose, in [0, N]."""
        return float(self.stats.score)

    @property
    def rmse_px(self) -> float:
        """Reprojection RMSE over the inliers, pixels."""
        return float(self.stats.rmse_px)


@dataclass(frozen=True)
class PnPResult(_RobustResult):
    """Result of :func:`solve_pnp`.

    Attributes:
        success: a pose with enough inliers was found (see ``min_inliers``).
        inliers: (N,) bool, inlier flags in input order (all False on failure).
        stats: hypotheses, samples, inliers, score, refinement steps, per-stage times.
        T_world_cam: (4, 4) float64 camera-to-world pose; identity on failure.
    """

    T_world_cam: NDArray[np.float64]


@dataclass(frozen=True)
class GeneralizedPnPResult(_RobustResult):
    """Result of :func:`solve_generalized_pnp`.

    Attributes:
        success: a pose with enough inliers was found (see ``min_inliers``).
        inliers: (N,) bool, inlier flags in input order (all False on failure).
        stats: hypotheses, samples, inliers, score, refinement steps, per-stage times.
        T_world_ref: (4, 4) float64 reference-frame-to-world pose; identity on failure.
    """

    T_world_ref: NDArray[np.float64]


def _float_array(name: str, value: ArrayLike, trailing: tuple[int, ...]) -> NDArray[np.float64]:
    """``value`` as a C-contiguous float64 array of shape (N, *trailing), all finite."""
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise ValueError(f"{name} must have a floating-point dtype, got {array.dtype}")
    if array.ndim != 1 + len(trailing) or array.shape[1:] != trailing:
        expected = "(N, " + ", ".join(str(d) for d in trailing) + ")"
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}")
    finite = np.isfinite(array)
    if not finite.all():
        row = int(np.flatnonzero(~finite.reshape(len(array), -1).all(axis=1))[0])
        raise ValueError(f"{name} must be finite, found NaN or Inf in row {row}")
    return np.ascontiguousarray(array, dtype=np.float64)


def _correspondences(
    points2d: ArrayLike, points3d: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    points2d_N2 = _float_array("points2d", points2d, (2,))
    points3d_N3 = _float_array("points3d", points3d, (3,))
    if len(points2d_N2) != len(points3d_N3):
        raise ValueError(
            f"points2d and points3d must have the same N, got {len(points2d_N2)} and "
            f"{len(points3d_N3)}"
        )
    if len(points2d_N2) < 4:
        raise ValueError(f"need at least 4 correspondences, got N={len(points2d_N2)}")
    return points2d_N2, points3d_N3


def _options(seed: int | None, **values: float | int | bool) -> RansacOptions:
    """Typed options: pybind11 rejects a value of the wrong type with TypeError; the C++
    solver rejects out-of-range values with ValueError."""
    if seed is None:
        seed = secrets.randbits(64)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if not 0 <= int(seed) <= _MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    options = RansacOptions()
    options.seed = int(seed)
    for name, value in values.items():
        setattr(options, name, value)
    return options


def solve_pnp(
    points2d: ArrayLike,
    points3d: ArrayLike,
    intrinsics: Sequence[float] | Intrinsics,
    *,
    threshold_px: float = _DEFAULTS.threshold_px,
    max_hypotheses: int = _DEFAULTS.max_hypotheses,
    seed: int | None = None,
    max_samples: int = _DEFAULTS.max_samples,
    confidence: float = _DEFAULTS.confidence,
    soft_scoring: bool = _DEFAULTS.soft_scoring,
    refine_top_k: int = _DEFAULTS.refine_top_k,
    max_lo_rounds: int = _DEFAULTS.max_lo_rounds,
    lo_max_points: int = _DEFAULTS.lo_max_points,
    max_refine_iterations: int = _DEFAULTS.max_refine_iterations,
    polish_iterations: int = _DEFAULTS.polish_iterations,
    max_score_points: int = _DEFAULTS.max_score_points,
    min_inliers: int = _DEFAULTS.min_inliers,
    min_inlier_ratio: float = _DEFAULTS.min_inlier_ratio,
) -> PnPResult:
    """Camera pose from 2D-3D correspondences, robust to outliers.

    Args:
        points2d: (N, 2) pixel coordinates (u, v), floating point.
        points3d: (N, 3) world points (metres), floating point; N >= 4.
        intrinsics: (fx, fy, cx, cy) in pixels, or an :class:`Intrinsics`.
        threshold_px: inlier threshold on the reprojection error, pixels.
        max_hypotheses: budget of scored pose hypotheses.
        seed: random seed (equal seeds give equal results); None draws one (see
            ``result.stats.seed``).
        max_samples: cap on minimal samples drawn, failed ones included.
        confidence: early stop once an all-inlier sample has been drawn with this
            probability given the best inlier ratio; 1.0 uses the whole budget.
        soft_scoring: rank hypotheses by soft inlier count (else by hard count).
        refine_top_k: hypotheses that get local optimisation.
        max_lo_rounds: local optimisation rounds (repeated while the inlier set grows).
        lo_max_points: inliers used per local optimisation round (an even subsample, 0 =
            all); the winner is then polished on all of its inliers.
        max_refine_iterations: Levenberg-Marquardt iterations per round.
        polish_iterations: Levenberg-Marquardt iterations of the final polish on all inliers.
        max_score_points: hypotheses are ranked on an even subsample of at most this many
            correspondences (0 = all); refinement and the result use all of them.
        min_inliers: success needs at least ``min(min_inliers, N)`` inliers ...
        min_inlier_ratio: ... and at least ``min_inlier_ratio * N`` (a random pose keeps
            about 0.1 % of random pixels within 10 px in a 640x480 image).

    Returns:
        :class:`PnPResult` with ``T_world_cam`` (4, 4) camera-to-world, OpenCV axes.

    Raises:
        ValueError: invalid shapes, dtypes, non-finite values, N < 4, non-positive focal
            lengths or option values.
    """
    points2d_N2, points3d_N3 = _correspondences(points2d, points3d)
    values = intrinsics.as_tuple if isinstance(intrinsics, Intrinsics) else intrinsics
    intrinsics_4 = np.asarray(values, dtype=np.float64)
    if intrinsics_4.shape != (4,):
        raise ValueError(f"intrinsics must be (fx, fy, cx, cy), got shape {intrinsics_4.shape}")
    options = _options(
        seed, threshold_px=threshold_px, max_hypotheses=max_hypotheses, max_samples=max_samples,
        confidence=confidence, soft_scoring=soft_scoring, refine_top_k=refine_top_k,
        max_lo_rounds=max_lo_rounds, lo_max_points=lo_max_points,
        max_refine_iterations=max_refine_iterations, polish_iterations=polish_iterations,
        max_score_points=max_score_points, min_inliers=min_inliers,
        min_inlier_ratio=min_inlier_ratio,
    )  # fmt: skip
    success, T_world_cam, inliers, stats = _ransac.solve_pnp(
        points2d_N2, points3d_N3, tuple(intrinsics_4.tolist()), options
    )
    return PnPResult(success=success, inliers=inliers, stats=stats, T_world_cam=T_world_cam)


def solve_generalized_pnp(
    points2d: ArrayLike,
    points3d: ArrayLike,
    frame_index: ArrayLike,
    intrinsics_K4: ArrayLike,
    T_ref_frame_K44: ArrayLike,
    *,
    threshold_px: float = _DEFAULTS.threshold_px,
    max_hypotheses: int = _DEFAULTS.max_hypotheses,
    seed: int | None = None,
    max_samples: int = _DEFAULTS.max_samples,
    confidence: float = _DEFAULTS.confidence,
    soft_scoring: bool = _DEFAULTS.soft_scoring,
    refine_top_k: int = _DEFAULTS.refine_top_k,
    max_lo_rounds: int = _DEFAULTS.max_lo_rounds,
    lo_max_points: int = _DEFAULTS.lo_max_points,
    max_refine_iterations: int = _DEFAULTS.max_refine_iterations,
    polish_iterations: int = _DEFAULTS.polish_iterations,
    max_score_points: int = _DEFAULTS.max_score_points,
    min_inliers: int = _DEFAULTS.min_inliers,
    min_inlier_ratio: float = _DEFAULTS.min_inlier_ratio,
) -> GeneralizedPnPResult:
    """Pose of a reference frame from correspondences seen by K rigidly linked cameras.

    Correspondence i is pixel ``points2d[i]`` in frame ``frame_index[i]`` seeing world point
    ``points3d[i]``. Frame k's camera sits at ``T_ref_frame_K44[k]`` (camera-to-reference)
    with its own intrinsics. Minimal samples are P3P within one frame (see
    ``cpp_ransac/include/seqace_ransac/absolute_pose.h`` for why), lifted to the reference
    frame; scoring and refinement use every frame.

    Args:
        points2d: (N, 2) pixels. points3d: (N, 3) world points; N >= 4.
        frame_index: (N,) integers in [0, K).
        intrinsics_K4: (K, 4) rows (fx, fy, cx, cy), pixels.
        T_ref_frame_K44: (K, 4, 4) rigid transforms, frame k camera to reference frame.
        threshold_px, max_hypotheses, seed, max_samples, confidence, soft_scoring,
        refine_top_k, max_lo_rounds, lo_max_points, max_refine_iterations,
        polish_iterations, max_score_points, min_inliers, min_inlier_ratio: as in
            :func:`solve_pnp`.

    Returns:
        :class:`GeneralizedPnPResult` with ``T_world_ref`` (4, 4), reference-to-world.

    Raises:
        ValueError: invalid shapes, dtypes, non-finite values, N < 4, frame indices out of
            range, non-rigid transforms, non-positive focal lengths or option values.
    """
    points2d_N2, points3d_N3 = _correspondences(points2d, points3d)
    intrinsics_K4 = _float_array("intrinsics_K4", intrinsics_K4, (4,))
    T_ref_frame_K44 = _float_array("T_ref_frame_K44", T_ref_frame_K44, (4, 4))
    if len(intrinsics_K4) == 0 or len(T_ref_frame_K44) != len(intrinsics_K4):
        raise ValueError(
            "need one intrinsics_K4 row and one T_ref_frame_K44 matrix per frame (K >= 1), got "
            f"shapes {intrinsics_K4.shape} and {T_ref_frame_K44.shape}"
        )
    frame_index_N = np.asarray(frame_index)
    if frame_index_N.dtype.kind not in "iu":
        raise ValueError(f"frame_index must have an integer dtype, got {frame_index_N.dtype}")
    if frame_index_N.shape != (len(points2d_N2),):
        raise ValueError(
            f"frame_index must have shape ({len(points2d_N2)},), got {frame_index_N.shape}"
        )
    options = _options(
        seed, threshold_px=threshold_px, max_hypotheses=max_hypotheses, max_samples=max_samples,
        confidence=confidence, soft_scoring=soft_scoring, refine_top_k=refine_top_k,
        max_lo_rounds=max_lo_rounds, lo_max_points=lo_max_points,
        max_refine_iterations=max_refine_iterations, polish_iterations=polish_iterations,
        max_score_points=max_score_points, min_inliers=min_inliers,
        min_inlier_ratio=min_inlier_ratio,
    )  # fmt: skip
    success, T_world_ref, inliers, stats = _ransac.solve_generalized_pnp(
        points2d_N2,
        points3d_N3,
        np.ascontiguousarray(frame_index_N, dtype=np.int64),
        intrinsics_K4,
        T_ref_frame_K44,
        options,
    )
    return GeneralizedPnPResult(
        success=success, inliers=inliers, stats=stats, T_world_ref=T_world_ref
    )
