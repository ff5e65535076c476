#include "seqace_ransac/absolute_pose.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "seqace_ransac/p3p.h"

namespace seqace_ransac {
namespace {

constexpr std::size_t kScoreBlock = 128;  // points scored between bail-out checks
constexpr double kLossScaleOfThreshold = 1.0;  // robust loss scale in refinement

}  // namespace

AbsolutePoseEstimator::AbsolutePoseEstimator(const double* points2d, const double* points3d,
                                             const double* weights, std::size_t num_points,
                                             const Intrinsics& intrinsics,
                                             const RansacOptions& options)
    : K_(intrinsics),
      tau2_(options.threshold_px * options.threshold_px),
      soft_scoring_(options.soft_scoring) {
    const std::size_t n = num_points;
    all_.resize(n);
    bearing_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        all_.X[i] = points3d[3 * i];
        all_.Y[i] = points3d[3 * i + 1];
        all_.Z[i] = points3d[3 * i + 2];
        all_.xn[i] = (points2d[2 * i] - K_.cx) / K_.fx;
        all_.yn[i] = (points2d[2 * i + 1] - K_.cy) / K_.fy;
        all_.W[i] = weights != nullptr ? weights[i] : 1.0;
        const Vec3 ray{all_.xn[i], all_.yn[i], 1.0};
        bearing_[i] = ray * (1.0 / norm(ray));
    }

    // Ranking subsample: every (n / m)-th point.
    const auto m = static_cast<std::size_t>(std::max(0, options.max_score_points));
    if (m > 0 && n > m) {
        ranking_.resize(m);
        const double stride = static_cast<double>(n) / static_cast<double>(m);
        for (std::size_t r = 0; r < m; ++r) {
            const auto j = static_cast<std::size_t>(static_cast<double>(r) * stride);
            ranking_.X[r] = all_.X[j];
            ranking_.Y[r] = all_.Y[j];
            ranking_.Z[r] = all_.Z[j];
            ranking_.xn[r] = all_.xn[j];
            ranking_.yn[r] = all_.yn[j];
            ranking_.W[r] = all_.W[j];
        }
    }
    const std::vector<double>& ranked = ranking_.X.empty() ? all_.W : ranking_.W;
    ranking_weight_ = 0.0;
    for (const double w : ranked) ranking_weight_ += w;
}

bool AbsolutePoseEstimator::draw_sample(Rng& rng, int* sample) const {
    const auto n = static_cast<std::uint32_t>(all_.X.size());
    if (n < static_cast<std::uint32_t>(kSampleSize)) return false;
    const std::uint32_t i0 = rng.uniform(n);
    std::uint32_t i1, i2, i3;
    do i1 = rng.uniform(n);
    while (i1 == i0);
    do i2 = rng.uniform(n);
    while (i2 == i0 || i2 == i1);
    do i3 = rng.uniform(n);
    while (i3 == i0 || i3 == i1 || i3 == i2);
    sample[0] = static_cast<int>(i0);
    sample[1] = static_cast<int>(i1);
    sample[2] = static_cast<int>(i2);
    sample[3] = static_cast<int>(i3);
    return true;
}

double AbsolutePoseEstimator::squared_error(const Rigid& T_cam_world, std::size_t i) const {
    const Vec3 p = T_cam_world.apply({all_.X[i], all_.Y[i], all_.Z[i]});
    if (!(p.z > 0.0)) return std::numeric_limits<double>::infinity();
    const double du = K_.fx * (p.x / p.z - all_.xn[i]);
    const double dv = K_.fy * (p.y / p.z - all_.yn[i]);
    return du * du + dv * dv;
}

int AbsolutePoseEstimator::generate(const int* sample, Model* models) const {
    std::array<Vec3, 3> bearings, points;
    for (int k = 0; k < 3; ++k) {
        const std::size_t i = static_cast<std::size_t>(sample[k]);
        bearings[k] = bearing_[i];
        points[k] = {all_.X[i], all_.Y[i], all_.Z[i]};
    }
    std::array<Rigid, 4> T_cam_world;
    const int n_solutions = p3p_lambda_twist(bearings, points, &T_cam_world);
    const std::size_t check = static_cast<std::size_t>(sample[3]);
    int kept = 0;
    for (int k = 0; k < n_solutions; ++k)
        if (squared_error(T_cam_world[k], check) < tau2_) models[kept++] = T_cam_world[k];
    return kept;
}

Score AbsolutePoseEstimator::score(const Model& T_cam_world, const Score& bail) const {
    return score_points(ranking_.X.empty() ? all_ : ranking_, ranking_weight_, T_cam_world, bail);
}

Score AbsolutePoseEstimator::score_all(const Model& T_cam_world) const {
    return score_points(all_, 0.0, T_cam_world, Score{});
}

Score AbsolutePoseEstimator::score_points(const PointArrays& points, double total_weight,
                                          const Model& T, const Score& bail) const {
    const double inv_tau2 = 1.0 / tau2_;
    const double tau2 = tau2_;
    const double n_total = static_cast<double>(points.X.size());
    // Bail-out bounds: what the points not yet scored could still add.
    double soft = 0.0, inliers = 0.0, processed = 0.0, processed_weight = 0.0;
    const double* X = points.X.data();
    const double* Y = points.Y.data();
    const double* Z = points.Z.data();
    const double* xn = points.xn.data();
    const double* yn = points.yn.data();
    const double* W = points.W.data();
    const double r00 = T.R.m[0][0], r01 = T.R.m[0][1], r02 = T.R.m[0][2];
    const double r10 = T.R.m[1][0], r11 = T.R.m[1][1], r12 = T.R.m[1][2];
    const double r20 = T.R.m[2][0], r21 = T.R.m[2][1], r22 = T.R.m[2][2];
    const double t0 = T.t.x, t1 = T.t.y, t2 = T.t.z;
    const double fx = K_.fx, fy = K_.fy;
    const std::size_t end = points.X.size();
    for (std::size_t b = 0; b < end; b += kScoreBlock) {
        const std::size_t e = std::min(b + kScoreBlock, end);
        double block_soft = 0.0, block_inliers = 0.0, block_weight = 0.0;
#pragma omp simd reduction(+ : block_soft, block_inliers, block_weight)
        for (std::size_t i = b; i < e; ++i) {
            const double x = r00 * X[i] + r01 * Y[i] + r02 * Z[i] + t0;
            const double y = r10 * X[i] + r11 * Y[i] + r12 * Z[i] + t1;
            const double z = r20 * X[i] + r21 * Y[i] + r22 * Z[i] + t2;
            const double iz = 1.0 / z;
            const double du = fx * (x * iz - xn[i]);
            const double dv = fy * (y * iz - yn[i]);
            const double e2 = du * du + dv * dv;
            const bool inlier = (z > 0.0) & (e2 < tau2);  // NaN compares false
            block_soft += inlier ? W[i] * (1.0 - e2 * inv_tau2) : 0.0;
            block_inliers += inlier ? 1.0 : 0.0;
            block_weight += W[i];
        }
        soft += block_soft;
        inliers += block_inliers;
        processed += static_cast<double>(e - b);
        processed_weight += block_weight;
        if (bail.valid()) {
            const bool hopeless = soft_scoring_
                                      ? soft + (total_weight - processed_weight) < bail.soft
                                      : inliers + (n_total - processed) < bail.inliers;
            if (hopeless) return Score::bailed();
        }
    }
    return {soft, static_cast<int>(inliers)};
}

int AbsolutePoseEstimator::refine(Model* T_cam_world, std::size_t max_points,
                                  int max_iterations) const {
    // Inliers of the current pose.
    std::vector<std::uint32_t> idx;
    idx.reserve(all_.X.size());
    for (std::size_t i = 0; i < all_.X.size(); ++i)
        if (squared_error(*T_cam_world, i) < tau2_) idx.push_back(static_cast<std::uint32_t>(i));
    if (idx.size() < 3) return 0;
    if (max_points > 0 && idx.size() > max_points) {
        // Even subsample (deterministic).
        const double stride = static_cast<double>(idx.size()) / static_cast<double>(max_points);
        for (std::size_t j = 0; j < max_points; ++j)
            idx[j] = idx[static_cast<std::size_t>(static_cast<double>(j) * stride)];
        idx.resize(max_points);
    }

    // Levenberg-Marquardt with the Geman-McClure loss rho(s) = s / (1 + s), s = e^2 / c^2,
    // c = kLossScaleOfThreshold * threshold (IRLS weight 1 / (1 + s)^2; no transcendental
    // functions per point): one pass per iteration evaluates the cost of the current pose and
    // its normal equations; a step whose cost went up is rolled back and the damping raised.
    const double c2 = tau2_ * kLossScaleOfThreshold * kLossScaleOfThreshold;
    const double behind_cost = 1.0;  // the loss's supremum: a full outlier
    const double fx = K_.fx, fy = K_.fy;

    struct Normal {
        double cost = 0.0;
        std::array<double, 36> H{};
        std::array<double, 6> g{};
    };
    auto accumulate = [&](const Rigid& T, Normal* n) {
        // Local accumulators (no aliasing with the point arrays): cost, g, upper H.
        double cost = 0.0;
        double g[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
        double H[21] = {};
        for (const std::uint32_t i : idx) {
            const Vec3 p = T.apply({all_.X[i], all_.Y[i], all_.Z[i]});
            if (!(p.z > 0.0)) {
                cost += all_.W[i] * behind_cost;  // behind the camera: a full outlier
                continue;
            }
            const double iz = 1.0 / p.z, u = p.x * iz, v = p.y * iz;
            const double ru = fx * (u - all_.xn[i]), rv = fy * (v - all_.yn[i]);
            const double s = (ru * ru + rv * rv) / c2;
            const double inv = 1.0 / (1.0 + s);
            cost += all_.W[i] * s * inv;
            const double w = all_.W[i] * inv * inv;
            // d(residual)/d(p) rows; the perturbation p -> p + omega x p + nu gives
            // d/d omega = p x row.
            const Vec3 du_dp{fx * iz, 0.0, -fx * u * iz}, dv_dp{0.0, fy * iz, -fy * v * iz};
            const Vec3 du_dw = cross(p, du_dp), dv_dw = cross(p, dv_dp);
            const double Ju[6] = {du_dw.x, du_dw.y, du_dw.z, du_dp.x, du_dp.y, du_dp.z};
            const double Jv[6] = {dv_dw.x, dv_dw.y, dv_dw.z, dv_dp.x, dv_dp.y, dv_dp.z};
            const double wru = w * ru, wrv = w * rv;
            // Fully unrolled rank-2 update of the upper triangle (21 entries) and gradient.
#pragma GCC unroll 6
            for (int a = 0; a < 6; ++a) {
                g[a] += Ju[a] * wru + Jv[a] * wrv;
                const double wJua = w * Ju[a], wJva = w * Jv[a];
                const int row = a * (11 - a) / 2;  // offset of H(a, a) in the packed upper part
#pragma GCC unroll 6
                for (int b = a; b < 6; ++b) H[row + b] += wJua * Ju[b] + wJva * Jv[b];
            }
        }
        n->cost = cost;
        int h = 0;
        for (int a = 0; a < 6; ++a) {
            n->g[a] = g[a];
            for (int b = a; b < 6; ++b, ++h) n->H[a * 6 + b] = n->H[b * 6 + a] = H[h];
        }
    };

    Normal current, trial;
    accumulate(*T_cam_world, &current);
    Rigid pose = *T_cam_world;
    double lambda = 1e-4;
    int iteration = 0;
    while (iteration < max_iterations) {
        ++iteration;
        std::array<double, 36> A = current.H;
        for (int a = 0; a < 6; ++a) A[a * 6 + a] += lambda * std::max(A[a * 6 + a], 1e-12);
        std::array<double, 6> rhs, delta;
        for (int a = 0; a < 6; ++a) rhs[a] = -current.g[a];
        if (!solve_spd6(A, rhs, &delta)) {
            lambda *= 10.0;
            if (lambda > 1e8) break;
            continue;
        }
        const Mat3 dR = rotation_exp({delta[0], delta[1], delta[2]});
        const Rigid candidate{dR * pose.R, dR * pose.t + Vec3{delta[3], delta[4], delta[5]}};
        accumulate(candidate, &trial);
        if (!(trial.cost <= current.cost)) {
            lambda *= 10.0;
            if (lambda > 1e8) break;
            continue;
        }
        const bool converged = current.cost - trial.cost <= 1e-7 * current.cost;
        pose = candidate;
        std::swap(current, trial);
        lambda = std::max(lambda * 0.1, 1e-10);
        if (converged) break;
    }
    *T_cam_world = pose;
    return iteration;
}

Score AbsolutePoseEstimator::evaluate(const Model& T_cam_world, std::uint8_t* inliers_N,
                                      double* rmse_px) const {
    double sum = 0.0, soft = 0.0;
    int count = 0;
    for (std::size_t i = 0; i < all_.X.size(); ++i) {
        const double e2 = squared_error(T_cam_world, i);
        const bool inlier = e2 < tau2_;
        inliers_N[i] = inlier ? 1 : 0;
        if (inlier) {
            sum += e2;
            soft += all_.W[i] * (1.0 - e2 / tau2_);
            ++count;
        }
    }
    *rmse_px = count > 0 ? std::sqrt(sum / count) : 0.0;
    return {soft, count};
}

}  // namespace seqace_ransac
