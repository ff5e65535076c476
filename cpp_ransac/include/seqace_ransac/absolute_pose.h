// Estimator for (generalized) absolute pose: 2D-3D correspondences observed by K pinhole
// cameras rigidly attached to a reference frame, solving for T_ref_world. A single camera is
// the case K = 1 with T_ref_frame = identity, so one estimator serves both facades.
//
// Minimal solver choice for K > 1: P3P inside one frame (the frame of the first sampled
// point), lifted to the reference frame through that frame's known T_ref_frame, then a
// 4th-point pre-check, scoring and refinement over all frames (generalized). A true
// generalized P3P (gP3P, e.g. Nister-Stewenius or Kneip's solvers) needs an octic
// polynomial, is several times slower and less stable, and its advantage, mixing rays of
// different frames inside one sample, does not matter here: every frame of a sequence
// carries hundreds of correspondences with similar inlier ratios, so an all-inlier triplet
// is as likely within one frame as across frames, and a sample's accuracy comes from the
// all-frame refinement anyway. The frame-local sample also keeps the minimal solve as cheap
// as the single-frame case, which is what keeps K x 500 correspondences as fast as 1 x 1000.
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

// Correspondences of one generalized camera, by reference (not owned).
struct GeneralizedCorrespondences {
    const double* points2d = nullptr;   // (N, 2) pixels, row-major
    const double* points3d = nullptr;   // (N, 3) world points, row-major
    const std::int64_t* frame_index = nullptr;  // (N,) in [0, K); nullptr means all frame 0
    std::size_t num_points = 0;
    std::vector<Intrinsics> intrinsics;  // (K,)
    std::vector<Rigid> T_ref_frame;      // (K,) frame-to-reference transforms
};

class GeneralizedAbsolutePoseEstimator {
public:
    using Model = Rigid;  // T_ref_world
    static constexpr int kSampleSize = 4;  // three for P3P plus one pre-check point
    static constexpr int kMaxModels = 4;

    GeneralizedAbsolutePoseEstimator(const GeneralizedCorrespondences& data,
                                     const RansacOptions& options);

    // Correspondences score() counts (the inlier ratio's denominator).
    std::size_t num_ranked() const {
        return ranking_.X.empty() ? all_.X.size() : ranking_.X.size();
    }
    bool draw_sample(Rng& rng, int* sample) const;
    int generate(const int* sample, Model* models) const;
    // Score on the ranking subset (all points when N <= max_score_points), bailing out once
    // `bail` cannot be beaten; score_all scores every point.
    Score score(const Model& T_ref_world, const Score& bail) const;
    Score score_all(const Model& T_ref_world) const;
    int refine(Model* T_ref_world, std::size_t max_points, int max_iterations) const;

    // Exact score, inlier flags in the caller's order and the reprojection RMSE (pixels)
    // over the inliers, in one pass.
    Score evaluate(const Model& T_ref_world, std::uint8_t* inliers_N, double* rmse_px) const;

private:
    struct Frame {
        std::size_t begin, end;  // range in the frame-sorted arrays
        Intrinsics K;
        Rigid T_frame_ref;
        Rigid T_ref_frame;
        bool is_reference;  // T_ref_frame is exactly the identity
    };

    // Frame-sorted structure-of-arrays: world points and normalised image coordinates;
    // frame k owns [frame_begin[k], frame_begin[k + 1]).
    struct PointArrays {
        std::vector<double> X, Y, Z, xn, yn;
        std::vector<std::size_t> frame_begin;
        void resize(std::size_t n) {
            for (auto* v : {&X, &Y, &Z, &xn, &yn}) v->resize(n);
        }
    };

    // Squared pixel reprojection error of sorted point i in its frame, given T_frame_world;
    // +inf when the point is behind the camera.
    double squared_error(const Rigid& T_frame_world, const Frame& f, std::size_t i) const;
    Score score_points(const PointArrays& points, const Model& T_ref_world,
                       const Score& bail) const;

    std::vector<Frame> frames_;
    std::vector<std::uint32_t> frame_of_;  // sorted index -> frame
    std::vector<std::uint32_t> original_;  // sorted index -> caller's index
    PointArrays all_;
    PointArrays ranking_;  // even subsample for hypothesis ranking; empty: use all_
    std::vector<Vec3> bearing_;  // unit bearing vectors of all_ (P3P input)
    bool can_sample_ = false;
    double tau2_;  // squared threshold, px^2
    bool soft_scoring_;
};

}  // namespace seqace_ransac
