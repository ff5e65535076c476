// pybind11 bindings: the private extension seqace_ros.ransac._ransac. The public, checked
// Python face is seqace_ros.ransac; these functions re-check sizes so that a direct call
// with bad arrays raises ValueError instead of reading out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "seqace_ransac/solve.h"

namespace py = pybind11;
using namespace seqace_ransac;

namespace {

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using IndexArray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

void require_shape(const py::array& a, const char* name, py::ssize_t rows, py::ssize_t cols) {
    const bool ok = a.ndim() == 2 && a.shape(1) == cols && (rows < 0 || a.shape(0) == rows);
    if (!ok)
        throw std::invalid_argument(std::string(name) + " must have shape (N, " +
                                    std::to_string(cols) + "), got " + shape_of(a));
}

// Finite, orthonormal rotation block with det +1 (to 1e-6), last row (0, 0, 0, 1).
template <typename Proxy>
bool is_rigid(const Proxy& T, py::ssize_t f) {
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j)
            if (!std::isfinite(T(f, i, j))) return false;
    if (T(f, 3, 0) != 0.0 || T(f, 3, 1) != 0.0 || T(f, 3, 2) != 0.0 || T(f, 3, 3) != 1.0)
        return false;
    Mat3 R;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) R.m[i][j] = T(f, i, j);
    const Mat3 RtR = R.transpose() * R;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            if (std::abs(RtR.m[i][j] - (i == j ? 1.0 : 0.0)) > 1e-6) return false;
    return std::abs(determinant(R) - 1.0) < 1e-5;
}

Intrinsics intrinsics_from(const std::array<double, 4>& k) { return {k[0], k[1], k[2], k[3]}; }

py::tuple to_python(PoseSolution&& solution) {
    py::array_t<double> T({4, 4});
    auto t = T.mutable_unchecked<2>();
    const Rigid& P = solution.T_world_ref;
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) t(i, j) = P.R.m[i][j];
        t(i, 3) = P.t[i];
        t(3, i) = 0.0;
    }
    t(3, 3) = 1.0;
    py::array_t<bool> inliers(static_cast<py::ssize_t>(solution.inliers.size()));
    auto m = inliers.mutable_unchecked<1>();
    for (py::ssize_t i = 0; i < m.shape(0); ++i) m(i) = solution.inliers[i] != 0;
    return py::make_tuple(solution.success, T, inliers, solution.stats);
}

py::tuple solve_pnp_py(const DoubleArray& points2d, const DoubleArray& points3d,
                       const std::array<double, 4>& intrinsics, const RansacOptions& options) {
    require_shape(points2d, "points2d", -1, 2);
    require_shape(points3d, "points3d", points2d.shape(0), 3);
    PoseSolution solution;
    {
        py::gil_scoped_release release;
        solution = solve_pnp(points2d.data(), points3d.data(),
                             static_cast<std::size_t>(points2d.shape(0)),
                             intrinsics_from(intrinsics), options);
    }
    return to_python(std::move(solution));
}

py::tuple solve_generalized_pnp_py(const DoubleArray& points2d, const DoubleArray& points3d,
                                   const IndexArray& frame_index, const DoubleArray& intrinsics_K4,
                                   const DoubleArray& T_ref_frame_K44,
                                   const RansacOptions& options) {
    require_shape(points2d, "points2d", -1, 2);
    const py::ssize_t n = points2d.shape(0);
    require_shape(points3d, "points3d", n, 3);
    if (frame_index.ndim() != 1 || frame_index.shape(0) != n)
        throw std::invalid_argument("frame_index must have shape (" + std::to_string(n) +
                                    ",), got " + shape_of(frame_index));
    require_shape(intrinsics_K4, "intrinsics_K4", -1, 4);
    const py::ssize_t k = intrinsics_K4.shape(0);
    if (T_ref_frame_K44.ndim() != 3 || T_ref_frame_K44.shape(0) != k ||
        T_ref_frame_K44.shape(1) != 4 || T_ref_frame_K44.shape(2) != 4)
        throw std::invalid_argument("T_ref_frame_K44 must have shape (" + std::to_string(k) +
                                    ", 4, 4), got " + shape_of(T_ref_frame_K44));
    std::vector<Intrinsics> intrinsics;
    std::vector<Rigid> T_ref_frame;
    auto K = intrinsics_K4.unchecked<2>();
    auto T = T_ref_frame_K44.unchecked<3>();
    for (py::ssize_t f = 0; f < k; ++f) {
        intrinsics.push_back({K(f, 0), K(f, 1), K(f, 2), K(f, 3)});
        Rigid pose;
        for (int i = 0; i < 3; ++i) {
            for (int j = 0; j < 3; ++j) pose.R.m[i][j] = T(f, i, j);
            pose.t = {T(f, 0, 3), T(f, 1, 3), T(f, 2, 3)};
        }
        if (!is_rigid(T, f))
            throw std::invalid_argument("T_ref_frame_K44[" + std::to_string(f) +
                                        "] is not a rigid transform (finite, orthonormal "
                                        "rotation with det +1, last row 0 0 0 1)");
        T_ref_frame.push_back(pose);
    }
    PoseSolution solution;
    {
        py::gil_scoped_release release;
        solution = solve_generalized_pnp(points2d.data(), points3d.data(), frame_index.data(),
                                         static_cast<std::size_t>(n), intrinsics, T_ref_frame,
                                         options);
    }
    return to_python(std::move(solution));
}

}  // namespace

PYBIND11_MODULE(_ransac, m) {
    m.doc() = "C++ RANSAC PnP (Lambda Twist P3P, DSAC*-style sampling, LM refinement).";

    py::class_<RansacOptions>(m, "RansacOptions", "Options of a robust PnP solve.")
        .def(py::init<>())
        .def_readwrite("threshold_px", &RansacOptions::threshold_px)
        .def_readwrite("max_hypotheses", &RansacOptions::max_hypotheses)
        .def_readwrite("max_samples", &RansacOptions::max_samples)
        .def_readwrite("confidence", &RansacOptions::confidence)
        .def_readwrite("soft_scoring", &RansacOptions::soft_scoring)
        .def_readwrite("refine_top_k", &RansacOptions::refine_top_k)
        .def_readwrite("max_lo_rounds", &RansacOptions::max_lo_rounds)
        .def_readwrite("lo_max_points", &RansacOptions::lo_max_points)
        .def_readwrite("max_refine_iterations", &RansacOptions::max_refine_iterations)
        .def_readwrite("polish_iterations", &RansacOptions::polish_iterations)
        .def_readwrite("min_inliers", &RansacOptions::min_inliers)
        .def_readwrite("min_inlier_ratio", &RansacOptions::min_inlier_ratio)
        .def_readwrite("max_score_points", &RansacOptions::max_score_points)
        .def_readwrite("seed", &RansacOptions::seed);

    py::class_<RansacStats>(m, "RansacStats", "What a robust PnP solve did.")
        .def_readonly("num_hypotheses", &RansacStats::num_hypotheses)
        .def_readonly("num_samples", &RansacStats::num_samples)
        .def_readonly("num_inliers", &RansacStats::num_inliers)
        .def_readonly("score", &RansacStats::score)
        .def_readonly("rmse_px", &RansacStats::rmse_px)
        .def_readonly("lo_rounds", &RansacStats::lo_rounds)
        .def_readonly("refinement_iterations", &RansacStats::refinement_iterations)
        .def_readonly("early_stop", &RansacStats::early_stop)
        .def_readonly("sampling_ms", &RansacStats::sampling_ms)
        .def_readonly("scoring_ms", &RansacStats::scoring_ms)
        .def_readonly("refinement_ms", &RansacStats::refinement_ms)
        .def_readonly("total_ms", &RansacStats::total_ms)
        .def_readonly("seed", &RansacStats::seed)
        .def("__repr__", [](const RansacStats& s) {
            return "RansacStats(num_hypotheses=" + std::to_string(s.num_hypotheses) +
                   ", num_samples=" + std::to_string(s.num_samples) +
                   ", num_inliers=" + std::to_string(s.num_inliers) +
                   ", score=" + std::to_string(s.score) + ", rmse_px=" + std::to_string(s.rmse_px) +
                   ", total_ms=" + std::to_string(s.total_ms) + ")";
        });

    m.def("solve_pnp", &solve_pnp_py, py::arg("points2d"), py::arg("points3d"),
          py::arg("intrinsics"), py::arg("options"),
          "Robust PnP; returns (success, T_world_cam (4, 4), inliers (N,), RansacStats).");
    m.def("solve_generalized_pnp", &solve_generalized_pnp_py, py::arg("points2d"),
          py::arg("points3d"), py::arg("frame_index"), py::arg("intrinsics"),
          py::arg("T_ref_frame"), py::arg("options"),
          "Robust generalized PnP; returns (success, T_world_ref (4, 4), inliers (N,), "
          "RansacStats).");
}
