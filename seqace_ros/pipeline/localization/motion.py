"""Relative camera motion between consecutive frames, from points carried by optical flow.

A local-map point keeps the scene coordinate the head regressed for it, and optical flow
gives its pixel in the previous and in the current image. Solving both frames' poses from
the SAME scene coordinates makes most of the regression error common to the two poses, so
it cancels in their relative motion, which is therefore several times more precise than the
difference of two independent single-frame estimates: precise enough to carry the previous
pose into the current frame and average it with the current estimate (see :mod:`.sequence`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.geometry import invert_transform

PoseSolver = Callable[
    [NDArray[np.float64], NDArray[np.float64], Intrinsics],
    tuple[NDArray[np.float64] | None, NDArray[np.bool_]],
]
"""Robust PnP: (N, 2) pixels, (N, 3) scene points, camera -> (4, 4) T_world_cam or ``None``,
and the (N,) inlier mask (e.g. :meth:`Localizer.solve`)."""


def relative_motion(
    solve: PoseSolver, points_previous_M2: NDArray[np.float64],
    points_current_M2: NDArray[np.float64], scene_points_M3: NDArray[np.float64],
    intrinsics: Intrinsics, min_inliers: int,
) -> NDArray[np.float64] | None:
    """Camera motion ``T_previous_current`` (4, 4) between two frames of a stream.

    Both frames are solved from the same points; give the inliers of the current frame's
    estimate, so that the two solves keep (nearly) the same points.

    Args:
        solve: the robust PnP solver.
        points_previous_M2: (M, 2) pixels of the tracked points in the previous image.
        points_current_M2: (M, 2) their pixels in the current image.
        scene_points_M3: (M, 3) their map-frame scene coordinates, metres.
        intrinsics: the camera of both frames.
        min_inliers: fewer points, or fewer inliers in either solve, gives ``None``.

    Returns:
        The (4, 4) float64 transform from the current camera to the previous camera
        (``T_world_current = T_world_previous @ T_previous_current``), or ``None`` when the
        points do not determine it.
    """
    if len(scene_points_M3) < max(min_inliers, 4):
        return None
    T_world_previous, inliers_previous_M = solve(points_previous_M2, scene_points_M3, intrinsics)
    T_world_current, inliers_current_M = solve(points_current_M2, scene_points_M3, intrinsics)
    if (T_world_previous is None or T_world_current is None
            or min(int(inliers_previous_M.sum()), int(inliers_current_M.sum())) < min_inliers):
        return None
    return invert_transform(T_world_previous) @ T_world_current
