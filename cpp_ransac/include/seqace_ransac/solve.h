// Facade: robust PnP from pixels and pinhole intrinsics.
#pragma once

#include <cstdint>
#include <vector>

#include "seqace_ransac/absolute_pose.h"
#include "seqace_ransac/linalg.h"
#include "seqace_ransac/ransac.h"

namespace seqace_ransac {

struct PoseSolution {
    bool success = false;           // a pose with >= max(min(min_inliers, N),
                                    // min_inlier_ratio * N) inliers was found
    Rigid T_world_cam;              // camera to world; identity on failure
    std::vector<std::uint8_t> inliers;  // (N,) in input order; all zero on failure
    RansacStats stats;
};

// Camera pose from N >= 4 correspondences: points2d (N, 2) pixels, points3d (N, 3) world,
// row-major; weights (N,) finite and > 0, or nullptr for all 1 (a weight scales the
// correspondence's soft score and least-squares term; inlier counts stay counts). Throws
// std::invalid_argument naming the problem on invalid input (N < 4, non-finite values,
// non-positive weights, non-finite intrinsics or non-positive focal lengths, out-of-range
// option values: the one place options are validated); never throws for degenerate data.
PoseSolution solve_pnp(const double* points2d, const double* points3d, const double* weights,
                       std::size_t num_points, const Intrinsics& intrinsics,
                       const RansacOptions& options);

}  // namespace seqace_ransac
