#include "seqace_ransac/solve.h"

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

namespace seqace_ransac {
namespace {

// The one validation of RansacOptions' values (the Python binding only converts types).
void check_options(const RansacOptions& o) {
    if (!(std::isfinite(o.threshold_px) && o.threshold_px > 0.0))
        throw std::invalid_argument("threshold_px must be finite and > 0, got " +
                                    std::to_string(o.threshold_px));
    if (o.max_hypotheses < 1)
        throw std::invalid_argument("max_hypotheses must be >= 1, got " +
                                    std::to_string(o.max_hypotheses));
    if (o.max_samples < 1)
        throw std::invalid_argument("max_samples must be >= 1, got " +
                                    std::to_string(o.max_samples));
    if (!(o.confidence > 0.0 && o.confidence <= 1.0))
        throw std::invalid_argument("confidence must be in (0, 1], got " +
                                    std::to_string(o.confidence));
    if (o.refine_top_k < 1)
        throw std::invalid_argument("refine_top_k must be >= 1, got " +
                                    std::to_string(o.refine_top_k));
    if (o.max_lo_rounds < 0 || o.max_refine_iterations < 0 || o.lo_max_points < 0 ||
        o.polish_iterations < 0)
        throw std::invalid_argument(
            "max_lo_rounds, max_refine_iterations, lo_max_points and polish_iterations must be "
            ">= 0, got " + std::to_string(o.max_lo_rounds) + ", " +
            std::to_string(o.max_refine_iterations) + ", " + std::to_string(o.lo_max_points) +
            ", " + std::to_string(o.polish_iterations));
    if (o.max_score_points < 0)
        throw std::invalid_argument("max_score_points must be >= 0, got " +
                                    std::to_string(o.max_score_points));
    if (!(o.min_inlier_ratio >= 0.0 && o.min_inlier_ratio <= 1.0))
        throw std::invalid_argument("min_inlier_ratio must be in [0, 1], got " +
                                    std::to_string(o.min_inlier_ratio));
    if (o.min_inliers < 1)
        throw std::invalid_argument("min_inliers must be >= 1, got " +
                                    std::to_string(o.min_inliers));
}

void check_intrinsics(const Intrinsics& K) {
    if (!(std::isfinite(K.fx) && std::isfinite(K.fy) && std::isfinite(K.cx) &&
          std::isfinite(K.cy)))
        throw std::invalid_argument("intrinsics must be finite, got fx=" + std::to_string(K.fx) +
                                    " fy=" + std::to_string(K.fy) + " cx=" +
                                    std::to_string(K.cx) + " cy=" + std::to_string(K.cy));
    if (!(K.fx > 0.0 && K.fy > 0.0))
        throw std::invalid_argument("intrinsics: focal lengths must be > 0, got fx=" +
                                    std::to_string(K.fx) + " fy=" + std::to_string(K.fy));
}

// Throws when one of the `n * dim` values is not finite, naming its row.
void check_finite(const char* name, const double* values, std::size_t n, std::size_t dim) {
    for (std::size_t i = 0; i < n * dim; ++i)
        if (!std::isfinite(values[i]))
            throw std::invalid_argument(std::string(name) +
                                        " must be finite, found NaN or Inf in row " +
                                        std::to_string(i / dim));
}

// Throws unless every weight is finite and > 0, naming the first that is not.
void check_weights(const double* weights, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (!(std::isfinite(weights[i]) && weights[i] > 0.0))
            throw std::invalid_argument("weights must be finite and > 0, got " +
                                        std::to_string(weights[i]) + " in row " +
                                        std::to_string(i));
}

// Nearest rotation by Newton's polar iteration R <- (R + R^-T) / 2 (R is near-orthonormal).
Mat3 nearest_rotation(Mat3 R) {
    for (int it = 0; it < 3; ++it) {
        Mat3 inv;
        if (!invert(R, &inv, 1e-12)) return R;
        const Mat3 inv_t = inv.transpose();
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) R.m[i][j] = 0.5 * (R.m[i][j] + inv_t.m[i][j]);
    }
    return R;
}

}  // namespace

PoseSolution solve_pnp(const double* points2d, const double* points3d, const double* weights,
                       std::size_t num_points, const Intrinsics& intrinsics,
                       const RansacOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    check_options(options);
    if (num_points < 4)
        throw std::invalid_argument("need at least 4 correspondences, got N=" +
                                    std::to_string(num_points));
    if (num_points > 0x7fffffffULL)
        throw std::invalid_argument("too many correspondences: N=" + std::to_string(num_points));
    check_intrinsics(intrinsics);
    check_finite("points2d", points2d, num_points, 2);
    check_finite("points3d", points3d, num_points, 3);
    if (weights != nullptr) check_weights(weights, num_points);

    AbsolutePoseEstimator estimator(points2d, points3d, weights, num_points, intrinsics, options);
    PoseSolution solution;
    solution.inliers.assign(num_points, 0);
    const RansacOutput<Rigid> best = ransac(estimator, options, &solution.stats);
    if (best.found) {
        const Rigid T_cam_world{nearest_rotation(best.model.R), best.model.t};
        const std::size_t needed = std::max(
            std::min(num_points, static_cast<std::size_t>(options.min_inliers)),
            static_cast<std::size_t>(std::ceil(options.min_inlier_ratio * num_points)));
        RansacStats& s = solution.stats;
        const Score final_score =
            estimator.evaluate(T_cam_world, solution.inliers.data(), &s.rmse_px);
        s.num_inliers = final_score.inliers;
        s.score = final_score.soft;
        solution.success = static_cast<std::size_t>(s.num_inliers) >= needed;
        if (solution.success) {
            solution.T_world_cam = T_cam_world.inverse();
        } else {
            solution.inliers.assign(num_points, 0);
        }
    }
    solution.stats.total_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return solution;
}

}  // namespace seqace_ransac
