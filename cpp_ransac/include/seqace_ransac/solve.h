// Facade: robust PnP from pixels and pinhole intrinsics, for one camera or for a
// generalized camera (K frames with known transforms to a reference frame).
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
    Rigid T_world_ref;              // camera (or reference frame) to world; identity on failure
    std::vector<std::uint8_t> inliers;  // (N,) in input order; all zero on failure
    RansacStats stats;
};

// Camera pose from N >= 4 correspondences: points2d (N, 2) pixels, points3d (N, 3) world,
// row-major. Throws std::invalid_argument on invalid input (sizes, non-finite values,
// non-positive focal length, bad options); never throws for degenerate data.
PoseSolution solve_pnp(const double* points2d, const double* points3d, std::size_t num_points,
                       const Intrinsics& intrinsics, const RansacOptions& options);

// Reference-frame pose from correspondences seen by K cameras: frame_index (N,) in [0, K),
// intrinsics (K,), T_ref_frame (K,) frame-to-reference transforms.
PoseSolution solve_generalized_pnp(const double* points2d, const double* points3d,
                                   const std::int64_t* frame_index, std::size_t num_points,
                                   const std::vector<Intrinsics>& intrinsics,
                                   const std::vector<Rigid>& T_ref_frame,
                                   const RansacOptions& options);

}  // namespace seqace_ransac
