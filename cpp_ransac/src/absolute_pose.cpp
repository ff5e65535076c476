#include "seqace_ransac/absolute_pose.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>

#include "seqace_ransac/p3p.h"

namespace seqace_ransac {
namespace {

constexpr std::size_t kScoreBlock = 128;  // points scored between bail-out checks
constexpr double kLossScaleOfThreshold = 1.0;  // robust loss scale in refinement

bool is_identity(const Rigid& T) {
    const Mat3 I = Mat3::identity();
    return T.R.m == I.m && T.t.x == 0.0 && T.t.y == 0.0 && T.t.z == 0.0;
}

}  // namespace

GeneralizedAbsolutePoseEstimator::GeneralizedAbsolutePoseEstimator(
    const GeneralizedCorrespondences& data, const RansacOptions& options)
    : tau2_(options.threshold_px * options.threshold_px),
      soft_scoring_(options.soft_scoring) {
    const std::size_t n = data.num_points;
    const std::size_t n_frames = data.intrinsics.size();
    auto frame_of_input = [&](std::size_t i) {
        return data.frame_index ? static_cast<std::size_t>(data.frame_index[i]) : 0;
    };
    // Counting sort by frame (stable), so that scoring runs frame by frame.
    std::vector<std::size_t> counts(n_frames + 1, 0);
    for (std::size_t i = 0; i < n; ++i) ++counts[frame_of_input(i) + 1];
    for (std::size_t k = 0; k < n_frames; ++k) counts[k + 1] += counts[k];
    frames_.resize(n_frames);
    for (std::size_t k = 0; k < n_frames; ++k) {
        Frame& f = frames_[k];
        f.begin = counts[k];
        f.end = counts[k + 1];
        f.K = data.intrinsics[k];
        f.T_ref_frame = data.T_ref_frame[k];
        f.T_frame_ref = f.T_ref_frame.inverse();
        f.is_reference = is_identity(f.T_ref_frame);
        can_sample_ = can_sample_ || (f.end - f.begin >= 3);
    }
    can_sample_ = can_sample_ && n >= static_cast<std::size_t>(kSampleSize);

    original_.resize(n);
    frame_of_.resize(n);
    std::vector<std::size_t> cursor(counts.begin(), counts.end() - 1);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = frame_of_input(i);
        const std::size_t j = cursor[k]++;
        original_[j] = static_cast<std::uint32_t>(i);
        frame_of_[j] = static_cast<std::uint32_t>(k);
    }
    all_.resize(n);
    bearing_.resize(n);
    for (std::size_t j = 0; j < n; ++j) {
        const std::size_t i = original_[j];
        const Intrinsics& K = frames_[frame_of_[j]].K;
        all_.X[j] = data.points3d[3 * i];
        all_.Y[j] = data.points3d[3 * i + 1];
        all_.Z[j] = data.points3d[3 * i + 2];
        all_.xn[j] = (data.points2d[2 * i] - K.cx) / K.fx;
        all_.yn[j] = (data.points2d[2 * i + 1] - K.cy) / K.fy;
        const Vec3 ray{all_.xn[j], all_.yn[j], 1.0};
        bearing_[j] = ray * (1.0 / norm(ray));
    }
    all_.frame_begin.assign(counts.begin(), counts.end());

    // Ranking subsample: every (n / m)-th point in frame-sorted order, so frames keep their
    // share; its frame offsets follow from the frame of each picked point.
    const auto m = static_cast<std::size_t>(std::max(0, options.max_score_points));
    if (m > 0 && n > m) {
        ranking_.resize(m);
        ranking_.frame_begin.assign(n_frames + 1, 0);
        const double stride = static_cast<double>(n) / static_cast<double>(m);
        for (std::size_t r = 0; r < m; ++r) {
            const auto j = static_cast<std::size_t>(static_cast<double>(r) * stride);
            ranking_.X[r] = all_.X[j];
            ranking_.Y[r] = all_.Y[j];
            ranking_.Z[r] = all_.Z[j];
            ranking_.xn[r] = all_.xn[j];
            ranking_.yn[r] = all_.yn[j];
            ++ranking_.frame_begin[frame_of_[j] + 1];
        }
        for (std::size_t k = 0; k < n_frames; ++k)
            ranking_.frame_begin[k + 1] += ranking_.frame_begin[k];
    }
}

bool GeneralizedAbsolutePoseEstimator::draw_sample(Rng& rng, int* sample) const {
    if (!can_sample_) return false;
    const auto n = static_cast<std::uint32_t>(all_.X.size());
    std::uint32_t i0;
    const Frame* f;
    do {  // terminates: some frame holds >= 3 points
        i0 = rng.uniform(n);
        f = &frames_[frame_of_[i0]];
    } while (f->end - f->begin < 3);
    const auto n_frame = static_cast<std::uint32_t>(f->end - f->begin);
    const auto begin = static_cast<std::uint32_t>(f->begin);
    std::uint32_t i1, i2, i3;
    do i1 = begin + rng.uniform(n_frame);
    while (i1 == i0);
    do i2 = begin + rng.uniform(n_frame);
    while (i2 == i0 || i2 == i1);
    do i3 = rng.uniform(n);
    while (i3 == i0 || i3 == i1 || i3 == i2);
    sample[0] = static_cast<int>(i0);
    sample[1] = static_cast<int>(i1);
    sample[2] = static_cast<int>(i2);
    sample[3] = static_cast<int>(i3);
    return true;
}

double GeneralizedAbsolutePoseEstimator::squared_error(const Rigid& T_frame_world,
                                                       const Frame& f, std::size_t i) const {
    const Vec3 p = T_frame_world.apply({all_.X[i], all_.Y[i], all_.Z[i]});
    if (!(p.z > 0.0)) return std::numeric_limits<double>::infinity();
    const double du = f.K.fx * (p.x / p.z - all_.xn[i]);
    const double dv = f.K.fy * (p.y / p.z - all_.yn[i]);
    return du * du + dv * dv;
}

int GeneralizedAbsolutePoseEstimator::generate(const int* sample, Model* models) const {
    const Frame& f = frames_[frame_of_[sample[0]]];
    std::array<Vec3, 3> bearings, points;
    for (int k = 0; k < 3; ++k) {
        const std::size_t i = static_cast<std::size_t>(sample[k]);
        bearings[k] = bearing_[i];
        points[k] = {all_.X[i], all_.Y[i], all_.Z[i]};
    }
    std::array<Rigid, 4> T_frame_world;
    const int n_solutions = p3p_lambda_twist(bearings, points, &T_frame_world);
    const std::size_t check = static_cast<std::size_t>(sample[3]);
    const Frame& f_check = frames_[frame_of_[check]];
    int kept = 0;
    for (int k = 0; k < n_solutions; ++k) {
        const Rigid T_ref_world = f.T_ref_frame * T_frame_world[k];
        if (squared_error(f_check.T_frame_ref * T_ref_world, f_check, check) < tau2_)
            models[kept++] = T_ref_world;
    }
    return kept;
}

Score GeneralizedAbsolutePoseEstimator::score(const Model& T_ref_world, const Score& bail) const {
    return score_points(ranking_.X.empty() ? all_ : ranking_, T_ref_world, bail);
}

Score GeneralizedAbsolutePoseEstimator::score_all(const Model& T_ref_world) const {
    return score_points(all_, T_ref_world, Score{});
}

Score GeneralizedAbsolutePoseEstimator::score_points(const PointArrays& points,
                                                     const Model& T_ref_world,
                                                     const Score& bail) const {
    const double inv_tau2 = 1.0 / tau2_;
    const double tau2 = tau2_;
    const double n_total = static_cast<double>(points.X.size());
    double soft = 0.0, inliers = 0.0, processed = 0.0;
    const double* X = points.X.data();
    const double* Y = points.Y.data();
    const double* Z = points.Z.data();
    const double* xn = points.xn.data();
    const double* yn = points.yn.data();
    for (std::size_t k = 0; k < frames_.size(); ++k) {
        const Frame& f = frames_[k];
        const Rigid T = f.T_frame_ref * T_ref_world;
        const double r00 = T.R.m[0][0], r01 = T.R.m[0][1], r02 = T.R.m[0][2];
        const double r10 = T.R.m[1][0], r11 = T.R.m[1][1], r12 = T.R.m[1][2];
        const double r20 = T.R.m[2][0], r21 = T.R.m[2][1], r22 = T.R.m[2][2];
        const double t0 = T.t.x, t1 = T.t.y, t2 = T.t.z;
        const double fx = f.K.fx, fy = f.K.fy;
        const std::size_t frame_end = points.frame_begin[k + 1];
        for (std::size_t b = points.frame_begin[k]; b < frame_end; b += kScoreBlock) {
            const std::size_t e = std::min(b + kScoreBlock, frame_end);
            double block_soft = 0.0, block_inliers = 0.0;
#pragma omp simd reduction(+ : block_soft, block_inliers)
            for (std::size_t i = b; i < e; ++i) {
                const double x = r00 * X[i] + r01 * Y[i] + r02 * Z[i] + t0;
                const double y = r10 * X[i] + r11 * Y[i] + r12 * Z[i] + t1;
                const double z = r20 * X[i] + r21 * Y[i] + r22 * Z[i] + t2;
                const double iz = 1.0 / z;
                const double du = fx * (x * iz - xn[i]);
                const double dv = fy * (y * iz - yn[i]);
                const double e2 = du * du + dv * dv;
                const bool inlier = (z > 0.0) & (e2 < tau2);  // NaN compares false
                block_soft += inlier ? 1.0 - e2 * inv_tau2 : 0.0;
                block_inliers += inlier ? 1.0 : 0.0;
            }
            soft += block_soft;
            inliers += block_inliers;
            processed += static_cast<double>(e - b);
            if (bail.valid()) {
                const double remaining = n_total - processed;
                const bool hopeless = soft_scoring_ ? soft + remaining < bail.soft
                                                    : inliers + remaining < bail.inliers;
                if (hopeless) return Score::bailed();
            }
        }
    }
    return {soft, static_cast<int>(inliers)};
}

int GeneralizedAbsolutePoseEstimator::refine(Model* T_ref_world, std::size_t max_points,
                                             int max_iterations) const {
    // Inliers of the current pose, frame by frame (sorted order keeps frames contiguous).
    std::vector<std::uint32_t> idx;
    idx.reserve(all_.X.size());
    for (const Frame& f : frames_) {
        const Rigid T = f.T_frame_ref * *T_ref_world;
        for (std::size_t i = f.begin; i < f.end; ++i)
            if (squared_error(T, f, i) < tau2_) idx.push_back(static_cast<std::uint32_t>(i));
    }
    if (idx.size() < 3) return 0;
    if (max_points > 0 && idx.size() > max_points) {
        // Even subsample (deterministic), still sorted by frame.
        const double stride = static_cast<double>(idx.size()) / static_cast<double>(max_points);
        for (std::size_t j = 0; j < max_points; ++j)
            idx[j] = idx[static_cast<std::size_t>(static_cast<double>(j) * stride)];
        idx.resize(max_points);
    }
    std::vector<std::size_t> frame_end(frames_.size());
    {
        std::size_t j = 0;
        for (std::size_t k = 0; k < frames_.size(); ++k) {
            while (j < idx.size() && idx[j] < frames_[k].end) ++j;
            frame_end[k] = j;
        }
    }

    // Levenberg-Marquardt with the Geman-McClure loss rho(s) = s / (1 + s), s = e^2 / c^2,
    // c = kLossScaleOfThreshold * threshold (IRLS weight 1 / (1 + s)^2; no transcendental
    // functions per point): one pass per iteration evaluates the cost of the current pose and
    // its normal equations; a step whose cost went up is rolled back and the damping raised.
    const double c2 = tau2_ * kLossScaleOfThreshold * kLossScaleOfThreshold;
    const double behind_cost = 1.0;  // the loss's supremum: a full outlier
    std::vector<Mat3> R_frame_ref_T(frames_.size());
    for (std::size_t k = 0; k < frames_.size(); ++k)
        R_frame_ref_T[k] = frames_[k].T_frame_ref.R.transpose();

    struct Normal {
        double cost = 0.0;
        std::array<double, 36> H{};
        std::array<double, 6> g{};
    };
    auto accumulate = [&](const Rigid& T_rw, Normal* n) {
        // Local accumulators (no aliasing with the point arrays): cost, g, upper H.
        double cost = 0.0;
        double g[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
        double H[21] = {};
        // One correspondence; `kIdentity`: the frame is the reference frame itself.
        auto add = [&](auto identity_tag, const Frame& f, const Rigid& T, const Mat3& Rt,
                       std::size_t i) {
            constexpr bool kIdentity = decltype(identity_tag)::value;
            const double fx = f.K.fx, fy = f.K.fy;
            const Vec3 p = T.apply({all_.X[i], all_.Y[i], all_.Z[i]});
            if (!(p.z > 0.0)) {
                cost += behind_cost;  // behind the camera: a full outlier
                return;
            }
            const double iz = 1.0 / p.z, u = p.x * iz, v = p.y * iz;
            const double ru = fx * (u - all_.xn[i]), rv = fy * (v - all_.yn[i]);
            const double s = (ru * ru + rv * rv) / c2;
            const double inv = 1.0 / (1.0 + s);
            cost += s * inv;
            const double w = inv * inv;
            // d(residual)/d(p_frame) rows, pulled back to the reference frame; the
            // perturbation p_ref -> p_ref + omega x p_ref + nu gives d/d omega = p_ref x row.
            Vec3 du_dp{fx * iz, 0.0, -fx * u * iz}, dv_dp{0.0, fy * iz, -fy * v * iz}, p_ref = p;
            if constexpr (!kIdentity) {
                du_dp = Rt * du_dp;
                dv_dp = Rt * dv_dp;
                p_ref = Rt * (p - f.T_frame_ref.t);
            }
            const Vec3 du_dw = cross(p_ref, du_dp), dv_dw = cross(p_ref, dv_dp);
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
        };
        std::size_t j = 0;
        for (std::size_t k = 0; k < frames_.size(); ++k) {
            const Frame& f = frames_[k];
            const Rigid T = f.T_frame_ref * T_rw;
            const Mat3& Rt = R_frame_ref_T[k];
            if (f.is_reference) {
                for (; j < frame_end[k]; ++j) add(std::true_type{}, f, T, Rt, idx[j]);
            } else {
                for (; j < frame_end[k]; ++j) add(std::false_type{}, f, T, Rt, idx[j]);
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
    accumulate(*T_ref_world, &current);
    Rigid pose = *T_ref_world;
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
    *T_ref_world = pose;
    return iteration;
}

Score GeneralizedAbsolutePoseEstimator::evaluate(const Model& T_ref_world, std::uint8_t* inliers_N,
                                                 double* rmse_px) const {
    double sum = 0.0, soft = 0.0;
    int count = 0;
    for (const Frame& f : frames_) {
        const Rigid T = f.T_frame_ref * T_ref_world;
        for (std::size_t i = f.begin; i < f.end; ++i) {
            const double e2 = squared_error(T, f, i);
            const bool inlier = e2 < tau2_;
            inliers_N[original_[i]] = inlier ? 1 : 0;
            if (inlier) {
                sum += e2;
                soft += 1.0 - e2 / tau2_;
                ++count;
            }
        }
    }
    *rmse_px = count > 0 ? std::sqrt(sum / count) : 0.0;
    return {soft, count};
}

}  // namespace seqace_ransac
