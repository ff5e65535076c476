// Estimator for absolute pose: 2D-3D correspondences of one pinhole camera, solving for
// T_cam_world. Minimal solve: Lambda Twist P3P on three correspondences plus a 4th-point
// pre-check; scoring on an even subsample; Levenberg-Marquardt refinement (ransac.h).
// Correspondences may carry positive weights: a weight scales the point's soft score and its
// least-squares term (inlier counts stay counts), so a caller can fuse sources of different
// precision, e.g. inverse-variance weights.
#pragma once

#include <cstdint>
#include <vector>

#include "seqace_ransac/linalg.h"
#include "seqace_ransac/ransac.h"

namespace seqace_ransac {

// Pinhole intrinsics in pixels.
struct Intrinsics {
    double fx = 1.0, fy = 1.0, cx = 0.0, cy = 0.0;
};

class AbsolutePoseEstimator {
public:
    using Model = Rigid;  // T_cam_world
    static constexpr int kSampleSize = 4;  // three for P3P plus one pre-check point
    static constexpr int kMaxModels = 4;

    // points2d (N, 2) pixels and points3d (N, 3) world points, row-major; weights (N,) > 0 or
    // nullptr (all 1); copied.
    AbsolutePoseEstimator(const double* points2d, const double* points3d, const double* weights,
                          std::size_t num_points, const Intrinsics& intrinsics,
                          const RansacOptions& options);

    // Correspondences score() counts (the inlier ratio's denominator).
    std::size_t num_ranked() const {
        return ranking_.X.empty() ? all_.X.size() : ranking_.X.size();
    }
    bool draw_sample(Rng& rng, int* sample) const;
    int generate(const int* sample, Model* models) const;
    // Score on the ranking subset (all points when N <= max_score_points), bailing out once
    // `bail` cannot be beaten; score_all scores every point.
    Score score(const Model& T_cam_world, const Score& bail) const;
    Score score_all(const Model& T_cam_world) const;
    int refine(Model* T_cam_world, std::size_t max_points, int max_iterations) const;

    // Exact score, inlier flags (N,) and the (unweighted) reprojection RMSE (pixels) over the
    // inliers, in one pass.
    Score evaluate(const Model& T_cam_world, std::uint8_t* inliers_N, double* rmse_px) const;

private:
    // Structure-of-arrays: world points, normalised image coordinates and weights.
    struct PointArrays {
        std::vector<double> X, Y, Z, xn, yn, W;
        void resize(std::size_t n) {
            for (auto* v : {&X, &Y, &Z, &xn, &yn, &W}) v->resize(n);
        }
    };

    // Squared pixel reprojection error of point i; +inf when it is behind the camera.
    double squared_error(const Rigid& T_cam_world, std::size_t i) const;
    // total_weight: the weights of `points` summed (only read when `bail` is valid).
    Score score_points(const PointArrays& points, double total_weight, const Model& T_cam_world,
                       const Score& bail) const;

    Intrinsics K_;
    PointArrays all_;
    PointArrays ranking_;  // even subsample for hypothesis ranking; empty: use all_
    double ranking_weight_;  // total weight of the points score() counts (bail-out bound)
    std::vector<Vec3> bearing_;  // unit bearing vectors of all_ (P3P input)
    double tau2_;  // squared threshold, px^2
    bool soft_scoring_;
};

}  // namespace seqace_ransac
