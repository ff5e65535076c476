#include "seqace_ransac/solve.h"

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

namespace seqace_ransac {
namespace {

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

void check_intrinsics(const Intrinsics& K, const std::string& name) {
    if (!(std::isfinite(K.fx) && std::isfinite(K.fy) && std::isfinite(K.cx) &&
          std::isfinite(K.cy)))
        throw std::invalid_argument(name + " must be finite, got fx=" + std::to_string(K.fx) +
                                    " fy=" + std::to_string(K.fy) + " cx=" +
                                    std::to_string(K.cx) + " cy=" + std::to_string(K.cy));
    if (!(K.fx > 0.0 && K.fy > 0.0))
        throw std::invalid_argument(name + ": focal lengths must be > 0, got fx=" +
                                    std::to_string(K.fx) + " fy=" + std::to_string(K.fy));
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

PoseSolution solve_generalized_pnp(const double* points2d, const double* points3d,
                                   const std::int64_t* frame_index, std::size_t num_points,
                                   const std::vector<Intrinsics>& intrinsics,
                                   const std::vector<Rigid>& T_ref_frame,
                                   const RansacOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    check_options(options);
    if (num_points < 4)
        throw std::invalid_argument("need at least 4 correspondences, got " +
                                    std::to_string(num_points));
    if (num_points > 0x7fffffffULL)
        throw std::invalid_argument("too many correspondences: " + std::to_string(num_points));
    if (intrinsics.empty() || intrinsics.size() != T_ref_frame.size())
        throw std::invalid_argument("need one intrinsics and one T_ref_frame per frame, got " +
                                    std::to_string(intrinsics.size()) + " and " +
                                    std::to_string(T_ref_frame.size()));
    for (std::size_t k = 0; k < intrinsics.size(); ++k)
        check_intrinsics(intrinsics[k], frame_index ? "intrinsics_K4[" + std::to_string(k) + "]"
                                                    : std::string("intrinsics"));
    for (std::size_t i = 0; i < 2 * num_points; ++i)
        if (!std::isfinite(points2d[i]))
            throw std::invalid_argument("points2d has a non-finite value at row " +
                                        std::to_string(i / 2));
    for (std::size_t i = 0; i < 3 * num_points; ++i)
        if (!std::isfinite(points3d[i]))
            throw std::invalid_argument("points3d has a non-finite value at row " +
                                        std::to_string(i / 3));
    if (frame_index)
        for (std::size_t i = 0; i < num_points; ++i)
            if (frame_index[i] < 0 || frame_index[i] >= static_cast<std::int64_t>(intrinsics.size()))
                throw std::invalid_argument("frame_index[" + std::to_string(i) + "] = " +
                                            std::to_string(frame_index[i]) + " is outside [0, " +
                                            std::to_string(intrinsics.size()) + ")");

    GeneralizedCorrespondences data;
    data.points2d = points2d;
    data.points3d = points3d;
    data.frame_index = frame_index;
    data.num_points = num_points;
    data.intrinsics = intrinsics;
    data.T_ref_frame = T_ref_frame;
    GeneralizedAbsolutePoseEstimator estimator(data, options);

    PoseSolution solution;
    solution.stats.seed = options.seed;
    solution.inliers.assign(num_points, 0);
    const RansacOutput<Rigid> best = ransac(estimator, options, &solution.stats);
    if (best.found) {
        const Rigid T_ref_world{nearest_rotation(best.model.R), best.model.t};
        const std::size_t needed = std::max(
            std::min(num_points, static_cast<std::size_t>(options.min_inliers)),
            static_cast<std::size_t>(std::ceil(options.min_inlier_ratio * num_points)));
        RansacStats& s = solution.stats;
        const Score final_score =
            estimator.evaluate(T_ref_world, solution.inliers.data(), &s.rmse_px);
        s.num_inliers = final_score.inliers;
        s.score = final_score.soft;
        solution.success = static_cast<std::size_t>(s.num_inliers) >= needed;
        if (solution.success) {
            solution.T_world_ref = T_ref_world.inverse();
        } else {
            solution.inliers.assign(num_points, 0);
        }
    }
    solution.stats.total_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return solution;
}

PoseSolution solve_pnp(const double* points2d, const double* points3d, std::size_t num_points,
                       const Intrinsics& intrinsics, const RansacOptions& options) {
    return solve_generalized_pnp(points2d, points3d, nullptr, num_points, {intrinsics},
                                 {Rigid{}}, options);
}

}  // namespace seqace_ransac
