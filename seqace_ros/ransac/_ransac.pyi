"""Type stubs of the private C++ extension (cpp_ransac/bindings/ransac_bindings.cpp)."""

import numpy as np
from numpy.typing import NDArray

class RansacOptions:
    """Options of a robust PnP solve (``RansacOptions(threshold_px=5.0, seed=0)``).

    Typed attributes with the defaults of ``cpp_ransac/include/seqace_ransac/ransac.h``; an
    unknown option or a value of the wrong type raises TypeError, an out-of-range value
    raises ValueError from the solve.

    Attributes:
        threshold_px: inlier threshold on the reprojection error, pixels (> 0).
        max_hypotheses: budget of scored pose hypotheses (>= 1).
        max_samples: cap on minimal samples drawn, failed ones included (>= 1).
        confidence: early stop once an all-inlier sample has been drawn with this
            probability given the best inlier ratio, in (0, 1]; 1.0 uses the whole budget.
        soft_scoring: rank hypotheses by soft inlier count (else by hard count).
        refine_top_k: hypotheses that get local optimisation (>= 1).
        max_lo_rounds: local optimisation rounds (repeated while the inlier set grows).
        lo_max_points: inliers used per local optimisation round (an even subsample, 0 =
            all); the winner is then polished on all of its inliers.
        max_refine_iterations: Levenberg-Marquardt iterations per round.
        polish_iterations: Levenberg-Marquardt iterations of the final polish on all inliers.
        min_inliers: success needs at least ``min(min_inliers, N)`` inliers (>= 1) ...
        min_inlier_ratio: ... and at least ``min_inlier_ratio * N``, in [0, 1] (a random
            pose keeps a small fraction of random pixels within the threshold).
        max_score_points: hypotheses are ranked on an even subsample of at most this many
            correspondences (0 = all); refinement and the result use all of them.
        seed: random seed in [0, 2**64) (equal seeds give equal results); None draws one
            per solve (see ``RansacStats.seed``).
    """

    threshold_px: float
    max_hypotheses: int
    max_samples: int
    confidence: float
    soft_scoring: bool
    refine_top_k: int
    max_lo_rounds: int
    lo_max_points: int
    max_refine_iterations: int
    polish_iterations: int
    min_inliers: int
    min_inlier_ratio: float
    max_score_points: int
    seed: int | None
    def __init__(
        self,
        *,
        threshold_px: float = ...,
        max_hypotheses: int = ...,
        max_samples: int = ...,
        confidence: float = ...,
        soft_scoring: bool = ...,
        refine_top_k: int = ...,
        max_lo_rounds: int = ...,
        lo_max_points: int = ...,
        max_refine_iterations: int = ...,
        polish_iterations: int = ...,
        min_inliers: int = ...,
        min_inlier_ratio: float = ...,
        max_score_points: int = ...,
        seed: int | None = ...,
    ) -> None: ...

class RansacStats:
    """What a robust PnP solve did (read-only)."""

    @property
    def num_hypotheses(self) -> int: ...
    @property
    def num_samples(self) -> int: ...
    @property
    def num_inliers(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def rmse_px(self) -> float: ...
    @property
    def lo_rounds(self) -> int: ...
    @property
    def refinement_iterations(self) -> int: ...
    @property
    def early_stop(self) -> bool: ...
    @property
    def sampling_ms(self) -> float: ...
    @property
    def scoring_ms(self) -> float: ...
    @property
    def refinement_ms(self) -> float: ...
    @property
    def total_ms(self) -> float: ...
    @property
    def seed(self) -> int: ...

def solve_pnp(
    points2d: NDArray[np.float64],
    points3d: NDArray[np.float64],
    intrinsics: tuple[float, float, float, float],
    options: RansacOptions,
    weights: NDArray[np.float64] | None = None,
) -> tuple[bool, NDArray[np.float64], NDArray[np.bool_], RansacStats]: ...
