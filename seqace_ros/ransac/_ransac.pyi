"""Type stubs of the private C++ extension (cpp_ransac/bindings/ransac_bindings.cpp)."""

import numpy as np
from numpy.typing import NDArray

class RansacOptions:
    """Options of a robust PnP solve (typed attributes; defaults in ransac.h)."""

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
    max_score_points: int
    min_inliers: int
    min_inlier_ratio: float
    seed: int
    def __init__(self) -> None: ...

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
) -> tuple[bool, NDArray[np.float64], NDArray[np.bool_], RansacStats]: ...
def solve_generalized_pnp(
    points2d: NDArray[np.float64],
    points3d: NDArray[np.float64],
    frame_index: NDArray[np.int64],
    intrinsics: NDArray[np.float64],
    T_ref_frame: NDArray[np.float64],
    options: RansacOptions,
) -> tuple[bool, NDArray[np.float64], NDArray[np.bool_], RansacStats]: ...
