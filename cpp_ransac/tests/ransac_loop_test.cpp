// The generic RANSAC loop (ransac.h) on its own, with a mock estimator: the data are
// scalars, the model is a constant, one sample is one datum. Built and run by
// test/ransac/test_ransac_loop_cpp.py; prints one line per check and exits non-zero on
// the first failure.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "seqace_ransac/ransac.h"

using namespace seqace_ransac;

namespace {

struct ConstantEstimator {
    using Model = double;
    static constexpr int kSampleSize = 1;
    static constexpr int kMaxModels = 1;

    std::vector<double> values;
    double threshold = 0.1;
    bool sampleable = true;
    mutable int refine_calls = 0;

    std::size_t num_ranked() const { return values.size(); }
    bool draw_sample(Rng& rng, int* sample) const {
        if (!sampleable) return false;
        sample[0] = static_cast<int>(rng.uniform(static_cast<std::uint32_t>(values.size())));
        return true;
    }
    int generate(const int* sample, Model* models) const {
        models[0] = values[sample[0]];
        return 1;
    }
    Score score_all(const Model& c) const { return score(c, Score{}); }
    Score score(const Model& c, const Score& bail) const {
        Score s{0.0, 0};
        for (std::size_t i = 0; i < values.size(); ++i) {
            const double e2 = (values[i] - c) * (values[i] - c);
            if (e2 < threshold * threshold) {
                s.soft += 1.0 - e2 / (threshold * threshold);
                ++s.inliers;
            }
            const double remaining = static_cast<double>(values.size() - i - 1);
            if (bail.valid() && s.soft + remaining < bail.soft) return Score::bailed();
        }
        return s;
    }
    int refine(Model* c, std::size_t, int) const {  // mean of the inliers
        ++refine_calls;
        double sum = 0.0;
        int n = 0;
        for (double v : values)
            if (std::abs(v - *c) < threshold) {
                sum += v;
                ++n;
            }
        if (n > 0) *c = sum / n;
        return 1;
    }
};

int failures = 0;

void check(bool ok, const char* what) {
    std::printf("%s %s\n", ok ? "PASS" : "FAIL", what);
    if (!ok) ++failures;
}

ConstantEstimator make_data(double inlier_ratio, std::uint64_t seed) {
    ConstantEstimator e;
    Rng rng(seed);
    for (int i = 0; i < 1000; ++i) {
        const double u = (rng.next() >> 11) * 0x1.0p-53;  // [0, 1)
        const double w = (rng.next() >> 11) * 0x1.0p-53;
        e.values.push_back(i < inlier_ratio * 1000 ? 5.0 + 0.02 * (w - 0.5) : 100.0 * u);
    }
    return e;
}

}  // namespace

int main() {
    {
        ConstantEstimator e = make_data(0.3, 1);
        RansacOptions o;
        o.seed = 0;
        RansacStats stats;
        const auto out = ransac(e, o, &stats);
        check(out.found, "finds a model with 70% outliers");
        check(std::abs(out.model - 5.0) < 0.005, "refined model is the inliers' mean");
        check(out.score.inliers >= 300, "all inliers counted");
        check(stats.num_hypotheses <= o.max_hypotheses, "hypothesis budget respected");
        check(stats.early_stop, "early stop once an all-inlier sample is near certain");
        check(e.refine_calls >= 1 && stats.lo_rounds >= 1, "local optimisation ran");
    }
    {
        ConstantEstimator e = make_data(0.3, 2);
        RansacOptions o;
        o.seed = 0;
        o.confidence = 1.0;
        o.max_hypotheses = 40;
        RansacStats stats;
        ransac(e, o, &stats);
        check(stats.num_hypotheses == 40 && !stats.early_stop, "confidence 1 uses the budget");
    }
    {
        ConstantEstimator e = make_data(0.5, 3);
        RansacOptions o;
        o.seed = 7;
        RansacStats a, b;
        const auto ra = ransac(e, o, &a);
        const auto rb = ransac(e, o, &b);
        check(ra.model == rb.model && a.num_samples == b.num_samples, "deterministic per seed");
    }
    {
        ConstantEstimator e = make_data(0.5, 6);
        RansacOptions o;  // seed unset: drawn per solve and reported
        RansacStats a, b, replayed;
        const auto ra = ransac(e, o, &a);
        ransac(e, o, &b);
        o.seed = a.seed;
        const auto rr = ransac(e, o, &replayed);
        check(a.seed != b.seed && rr.model == ra.model && replayed.seed == a.seed &&
                  replayed.num_samples == a.num_samples,
              "an unset seed is drawn, reported and replayable");
    }
    {
        ConstantEstimator e = make_data(0.5, 4);
        e.sampleable = false;
        RansacOptions o;
        o.seed = 0;
        RansacStats stats;
        const auto out = ransac(e, o, &stats);
        check(!out.found && stats.num_hypotheses == 0, "no sample, no model");
    }
    {
        ConstantEstimator e = make_data(0.0, 5);  // uniform noise only
        RansacOptions o;
        o.seed = 0;
        o.max_samples = 500;
        o.max_hypotheses = 1000000;
        RansacStats stats;
        ransac(e, o, &stats);
        check(stats.num_samples == 500, "max_samples caps sampling");
    }
    {
        Rng rng(9);
        std::vector<int> counts(10, 0);
        for (int i = 0; i < 100000; ++i) ++counts[rng.uniform(10)];
        bool uniform = true;
        for (int c : counts) uniform = uniform && std::abs(c - 10000) < 500;
        check(uniform, "Rng::uniform is uniform");
    }
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
