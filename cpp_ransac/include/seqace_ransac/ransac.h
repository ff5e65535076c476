// Generic hypothesise-and-verify loop (DSAC*-style fixed hypothesis budget with an optional
// confidence-based early stop, top-k local optimisation) over an estimator interface:
//
//   struct Estimator {
//     using Model = ...;
//     static constexpr int kSampleSize;        // indices per sample (minimal set + pre-check)
//     static constexpr int kMaxModels;         // most models one sample can produce
//     size_t num_ranked() const;               // data counted by score()
//     bool draw_sample(Rng&, int* sample);     // false: no valid sample can ever be drawn
//     int generate(const int* sample, Model* models);  // minimal solve + pre-check, count
//     Score score(const Model&, const Score& bail) const;  // ranking score; Score::bailed()
//                                                           // once it cannot beat `bail`
//     Score score_all(const Model&) const;     // exact score over all data
//     int refine(Model*, size_t max_points, int max_iterations) const;  // robust least
//                                              // squares over the model's inliers (an even
//                                              // subsample of at most max_points, 0 = all);
//                                              // returns the iterations taken
//   };
//
// A mock estimator (e.g. a line or a constant) can exercise this loop on its own.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace seqace_ransac {

// Options of a robust PnP solve (the one options type: Python binds it as
// seqace_ros.ransac.RansacOptions); defaults are the ones the localizer uses. solve_pnp
// (solve.h) rejects out-of-range values with std::invalid_argument.
struct RansacOptions {
    double threshold_px = 10.0;       // inlier threshold on the reprojection error, pixels
    int max_hypotheses = 64;          // budget of scored pose hypotheses (DSAC*-style)
    int max_samples = 100000;         // cap on minimal samples drawn (bad samples included)
    double confidence = 0.9999;       // early stop once an all-inlier sample was drawn with
                                      // this probability given the best inlier ratio; >= 1
                                      // disables the early stop (full budget)
    bool soft_scoring = true;         // rank by soft inlier count (else by hard count)
    int refine_top_k = 1;             // hypotheses that get local optimisation
    int max_lo_rounds = 4;            // local optimisation rounds per hypothesis (repeated
                                      // while the inlier set grows)
    int lo_max_points = 256;          // inliers used per local optimisation round (an even
                                      // subsample; 0 = all); a final polish uses them all
    int max_refine_iterations = 10;   // Levenberg-Marquardt iterations per round
    int polish_iterations = 1;        // Levenberg-Marquardt iterations of the final polish
    int min_inliers = 12;             // success needs min(min_inliers, N) inliers ...
    double min_inlier_ratio = 0.01;   // ... and min_inlier_ratio * N of them (a random pose
                                      // keeps ~0.1% at 10 px in a 640x480 image)
    int max_score_points = 1024;      // hypotheses are ranked on an even subsample of at most
                                      // this many correspondences (0 = all); local
                                      // optimisation and the result use all of them
    std::optional<std::uint64_t> seed;  // random seed; equal seeds give equal results; unset:
                                        // drawn per solve (reported in RansacStats::seed)
};

// What a solve did; returned with every result.
struct RansacStats {
    int num_hypotheses = 0;         // pose hypotheses scored (passed the 4th-point check)
    int num_samples = 0;            // minimal samples drawn
    int num_inliers = 0;            // inliers of the returned pose
    double score = 0.0;             // soft inlier count of the returned pose
    double rmse_px = 0.0;           // reprojection RMSE over the inliers, pixels
    int lo_rounds = 0;              // local optimisation rounds run
    int refinement_iterations = 0;  // Levenberg-Marquardt iterations run
    bool early_stop = false;        // sampling ended by the confidence criterion
    double sampling_ms = 0.0;       // drawing samples, minimal solves, pre-checks
    double scoring_ms = 0.0;        // scoring hypotheses
    double refinement_ms = 0.0;     // local optimisation
    double total_ms = 0.0;          // whole solve, validation and set-up included
    std::uint64_t seed = 0;         // the seed used
};

// Soft and hard inlier counts of a model.
struct Score {
    double soft = -1.0;
    int inliers = -1;

    static Score bailed() { return {}; }
    bool valid() const { return inliers >= 0; }
};

// True when a ranks strictly above b.
inline bool better(const Score& a, const Score& b, bool soft_scoring) {
    if (soft_scoring) return a.soft > b.soft || (a.soft == b.soft && a.inliers > b.inliers);
    return a.inliers > b.inliers || (a.inliers == b.inliers && a.soft > b.soft);
}

// xoshiro256** seeded by splitmix64: fast and identical on every platform.
class Rng {
public:
    explicit Rng(std::uint64_t seed) {
        for (auto& s : state_) {
            seed += 0x9E3779B97F4A7C15ULL;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
            s = z ^ (z >> 31);
        }
    }
    std::uint64_t next() {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }
    // Uniform integer in [0, n), n > 0 (multiply-shift; bias below 2^-32 for n < 2^32).
    std::uint32_t uniform(std::uint32_t n) {
        return static_cast<std::uint32_t>(((next() >> 32) * static_cast<std::uint64_t>(n)) >> 32);
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::uint64_t state_[4];
};

// options.seed, or a fresh nondeterministic seed when it is unset.
inline std::uint64_t seed_of(const RansacOptions& options) {
    if (options.seed) return *options.seed;
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

template <typename Model>
struct RansacOutput {
    bool found = false;  // at least one hypothesis was scored
    Model model{};
    Score score{};
};

namespace detail {
inline double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
        .count();
}
}  // namespace detail

template <typename Estimator>
RansacOutput<typename Estimator::Model> ransac(Estimator& estimator, const RansacOptions& options,
                                               RansacStats* stats) {
    using Model = typename Estimator::Model;
    using Clock = std::chrono::steady_clock;
    struct Candidate {
        Model model;
        Score score;
    };
    const bool soft = options.soft_scoring;
    const std::size_t top_k = static_cast<std::size_t>(std::max(1, options.refine_top_k));
    const double n_ranked = static_cast<double>(estimator.num_ranked());
    const double log_miss =
        options.confidence < 1.0 ? std::log(1.0 - std::max(options.confidence, 0.0)) : 0.0;

    std::vector<Candidate> top;  // best first
    top.reserve(top_k + 1);
    stats->seed = seed_of(options);
    Rng rng(stats->seed);
    int sample[Estimator::kSampleSize];
    Model models[Estimator::kMaxModels];
    double required_samples = HUGE_VAL;

    const auto t_loop = Clock::now();
    while (stats->num_hypotheses < options.max_hypotheses &&
           stats->num_samples < options.max_samples) {
        if (!estimator.draw_sample(rng, sample)) break;
        ++stats->num_samples;
        const int n_models = estimator.generate(sample, models);
        for (int i = 0; i < n_models && stats->num_hypotheses < options.max_hypotheses; ++i) {
            ++stats->num_hypotheses;
            const Score bail = top.size() < top_k ? Score{} : top.back().score;
            const auto t_score = Clock::now();
            const Score s = estimator.score(models[i], bail);
            stats->scoring_ms += detail::ms_since(t_score);
            if (!s.valid() || (top.size() == top_k && !better(s, bail, soft))) continue;
            auto pos = std::find_if(top.begin(), top.end(),
                                    [&](const Candidate& c) { return better(s, c.score, soft); });
            top.insert(pos, Candidate{models[i], s});
            if (top.size() > top_k) top.pop_back();
            if (log_miss < 0.0) {
                // Samples needed to draw one all-inlier sample with the requested confidence.
                const double w = top.front().score.inliers / n_ranked;
                const double p_good = std::pow(w, Estimator::kSampleSize);
                required_samples = p_good >= 1.0 ? 1.0
                                   : p_good > 0.0 ? log_miss / std::log1p(-p_good)
                                                  : HUGE_VAL;
            }
        }
        if (stats->num_samples >= required_samples) {
            stats->early_stop = true;
            break;
        }
    }
    stats->sampling_ms = detail::ms_since(t_loop) - stats->scoring_ms;

    RansacOutput<Model> out;
    const auto t_refine = Clock::now();
    const auto lo_points = static_cast<std::size_t>(std::max(0, options.lo_max_points));
    // Local optimisation of the top hypotheses on (a subsample of) their inliers, repeated
    // while the inlier set grows; the winner is then polished on all of its inliers.
    for (const Candidate& candidate : top) {
        Candidate current{candidate.model, estimator.score_all(candidate.model)};
        for (int round = 0; round < options.max_lo_rounds; ++round) {
            Model refined = current.model;
            stats->refinement_iterations +=
                estimator.refine(&refined, lo_points, options.max_refine_iterations);
            ++stats->lo_rounds;
            const Score s = estimator.score_all(refined);
            if (better(current.score, s, soft)) break;  // refinement made it worse
            const bool grew = s.inliers > current.score.inliers;
            current = Candidate{refined, s};
            if (!grew) break;
        }
        if (!out.found || better(current.score, out.score, soft)) {
            out.found = true;
            out.model = current.model;
            out.score = current.score;
        }
    }
    if (out.found && lo_points > 0 && options.polish_iterations > 0) {
        Model polished = out.model;
        stats->refinement_iterations +=
            estimator.refine(&polished, 0, options.polish_iterations);
        const Score s = estimator.score_all(polished);
        if (!better(out.score, s, soft)) {
            out.model = polished;
            out.score = s;
        }
    }
    stats->refinement_ms = detail::ms_since(t_refine);
    return out;
}

}  // namespace seqace_ransac
