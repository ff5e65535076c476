"""Robust PnP: the Python face of the C++ RANSAC solver (``cpp_ransac``, pybind11).

:func:`solve_pnp` takes one pinhole camera's N 2D-3D correspondences and a
:class:`RansacOptions`, and returns ``T_world_cam``; it releases the GIL while it runs.

Method: Lambda Twist P3P on three correspondences, a 4th-correspondence consistency
pre-check, DSAC*-style fixed hypothesis budget (``max_hypotheses``) with an early stop once
the best inlier ratio makes an all-inlier sample near certain (``confidence``), soft inlier
scoring (sum of ``max(0, 1 - e^2 / threshold^2)`` over reprojection errors ``e``) with early
bail-out, then Levenberg-Marquardt on SE(3) over (a subsample of) the inliers of the best
``refine_top_k`` hypotheses, repeated while the inlier set grows, and a final polish on all
inliers. Optional per-correspondence weights scale each one's soft score and least-squares
term (inlier counts stay counts): sources of different precision fused in one solve, e.g. by
inverse variance. Equal seeds give equal results. Poses are camera-to-world 4x4 float64, OpenCV
camera axes (x right, y down, z forward); pixels follow OpenCV (origin at the centre of the
top-left pixel). ``result.stats`` carries per-stage times (C++ side, milliseconds).

Options: ``RansacOptions(threshold_px=5.0, seed=0)`` (keywords or typed attributes, each
documented in ``_ransac.pyi``); an unknown option or a value of the wrong type raises
``TypeError`` when set, an out-of-range value ``ValueError`` from the solve (the C++ solver
validates options, once, for C++ and Python callers alike).

Errors: invalid input (shapes, dtypes, non-finite values, N < 4, non-positive weights or focal
lengths, bad option values) raises ``ValueError`` naming the problem; degenerate data
(collinear points, all outliers) gives ``success=False``.
"""

from __future__ import annotations

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

__all__ = ["PnPResult", "RansacOptions", "RansacStats", "solve_pnp"]


@dataclass(frozen=True)
class PnPResult:
    """Result of :func:`solve_pnp`.

    Attributes:
        success: a pose with enough inliers was found (see ``RansacOptions.min_inliers``).
        inliers: (N,) bool, inlier flags in input order (all False on failure).
        stats: hypotheses, samples, inliers, score, refinement steps, per-stage times, seed.
        T_world_cam: (4, 4) float64 camera-to-world pose; identity on failure.
    """

    success: bool
    inliers: NDArray[np.bool_]
    stats: RansacStats
    T_world_cam: NDArray[np.float64]


def _float_array(name: str, value: ArrayLike, columns: int) -> NDArray[np.float64]:
    """``value`` as a C-contiguous float64 array of shape (N, columns)."""
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise ValueError(f"{name} must have a floating-point dtype, got {array.dtype}")
    if array.ndim != 2 or array.shape[1] != columns:
        raise ValueError(f"{name} must have shape (N, {columns}), got {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float64)


def solve_pnp(
    points2d_N2: ArrayLike,
    points3d_N3: ArrayLike,
    intrinsics: Sequence[float] | Intrinsics,
    options: RansacOptions | None = None,
    weights_N: ArrayLike | None = None,
) -> PnPResult:
    """Camera pose from 2D-3D correspondences, robust to outliers.

    Args:
        points2d_N2: (N, 2) pixel coordinates (u, v), floating point.
        points3d_N3: (N, 3) world points (metres), floating point; N >= 4.
        intrinsics: (fx, fy, cx, cy) in pixels, or an :class:`Intrinsics`.
        options: solver options; None means ``RansacOptions()`` (its defaults, a seed
            drawn per solve and reported in ``result.stats.seed``).
        weights_N: (N,) finite weights > 0 of the correspondences, or None for all 1. A
            weight scales the correspondence's soft score and least-squares term;
            ``stats.num_inliers`` and ``min_inliers`` still count correspondences and
            ``stats.score`` is the weighted soft count.

    Returns:
        :class:`PnPResult` with ``T_world_cam`` (4, 4) camera-to-world, OpenCV axes.

    Raises:
        TypeError: ``options`` is not a :class:`RansacOptions`.
        ValueError: invalid shapes, dtypes, non-finite values, N < 4, non-positive weights,
            focal lengths or option values.
    """
    if options is None:
        options = RansacOptions()
    elif not isinstance(options, RansacOptions):
        raise TypeError(f"options must be a RansacOptions, got {type(options).__name__}")
    points2d = _float_array("points2d", points2d_N2, 2)
    points3d = _float_array("points3d", points3d_N3, 3)
    if len(points2d) != len(points3d):
        raise ValueError(
            f"points2d and points3d must have the same N, got {len(points2d)} and "
            f"{len(points3d)}")
    values = intrinsics.as_tuple if isinstance(intrinsics, Intrinsics) else intrinsics
    intrinsics_4 = np.asarray(values, dtype=np.float64)
    if intrinsics_4.shape != (4,):
        raise ValueError(f"intrinsics must be (fx, fy, cx, cy), got shape {intrinsics_4.shape}")
    weights = None
    if weights_N is not None:
        weights = np.ascontiguousarray(weights_N, dtype=np.float64)
        if weights.shape != (len(points2d),):
            raise ValueError(f"weights must have shape ({len(points2d)},), got {weights.shape}")
    success, T_world_cam, inliers, stats = _ransac.solve_pnp(
        points2d, points3d, tuple(intrinsics_4.tolist()), options, weights)
    return PnPResult(success=success, inliers=inliers, stats=stats, T_world_cam=T_world_cam)
