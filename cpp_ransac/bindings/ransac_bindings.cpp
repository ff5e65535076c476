// pybind11 bindings: the private extension seqace_ros.ransac._ransac. The public, checked
// Python face is seqace_ros.ransac. RansacOptions is bound with typed attributes: a value of
// the wrong type or an unknown option raises TypeError here; option values are validated once,
// by the C++ solver (solve.cpp). solve_pnp re-checks array shapes so that a direct call with
// bad arrays raises ValueError instead of reading out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <climits>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "seqace_ransac/solve.h"

namespace py = pybind11;
using namespace seqace_ransac;

namespace {

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

// --- RansacOptions: typed attributes ------------------------------------------------------

[[noreturn]] void wrong_type(const char* name, const char* expected, py::handle value) {
    const std::string type = py::str(py::type::of(value).attr("__name__"));
    throw py::type_error(std::string("RansacOptions.") + name + " must be " + expected + ", got " +
                         type);
}

// A Python int or anything with __index__ (numpy integers), never a bool.
py::int_ to_int(const char* name, const char* expected, py::handle value) {
    if (PyBool_Check(value.ptr()) || !PyIndex_Check(value.ptr())) wrong_type(name, expected, value);
    return py::reinterpret_steal<py::int_>(PyNumber_Index(value.ptr()));
}

void convert(const char* name, py::handle value, bool* out) {
    if (!PyBool_Check(value.ptr())) wrong_type(name, "a bool", value);
    *out = value.ptr() == Py_True;
}

void convert(const char* name, py::handle value, double* out) {
    if (PyBool_Check(value.ptr()) ||
        !(PyIndex_Check(value.ptr()) || py::hasattr(value, "__float__")))
        wrong_type(name, "a real number", value);
    *out = py::float_(py::reinterpret_borrow<py::object>(value)).cast<double>();
}

void convert(const char* name, py::handle value, int* out) {
    const py::int_ integer = to_int(name, "an int", value);
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(integer.ptr(), &overflow);
    if (overflow != 0 || v < INT_MIN || v > INT_MAX)
        throw py::value_error(std::string("RansacOptions.") + name + " must fit in a C int, got " +
                              py::repr(integer).cast<std::string>());
    *out = static_cast<int>(v);
}

void convert(const char* name, py::handle value, std::optional<std::uint64_t>* out) {
    if (value.is_none()) {
        out->reset();
        return;
    }
    const py::int_ integer = to_int(name, "an int or None", value);
    const unsigned long long v = PyLong_AsUnsignedLongLong(integer.ptr());
    if (PyErr_Occurred()) {  // negative or >= 2**64
        PyErr_Clear();
        throw py::value_error(std::string("RansacOptions.") + name +
                              " must be in [0, 2**64) or None, got " +
                              py::repr(integer).cast<std::string>());
    }
    *out = static_cast<std::uint64_t>(v);
}

struct Field {
    const char* name;
    std::function<py::object(const RansacOptions&)> get;
    std::function<void(RansacOptions&, py::handle)> set;
};

template <typename T>
Field field(const char* name, T RansacOptions::*member) {
    return {name, [member](const RansacOptions& o) { return py::cast(o.*member); },
            [name, member](RansacOptions& o, py::handle value) {
                convert(name, value, &(o.*member));
            }};
}

// Every option, in the order of RansacOptions (ransac.h).
const std::vector<Field>& fields() {
    static const std::vector<Field> all = {
        field("threshold_px", &RansacOptions::threshold_px),
        field("max_hypotheses", &RansacOptions::max_hypotheses),
        field("max_samples", &RansacOptions::max_samples),
        field("confidence", &RansacOptions::confidence),
        field("soft_scoring", &RansacOptions::soft_scoring),
        field("refine_top_k", &RansacOptions::refine_top_k),
        field("max_lo_rounds", &RansacOptions::max_lo_rounds),
        field("lo_max_points", &RansacOptions::lo_max_points),
        field("max_refine_iterations", &RansacOptions::max_refine_iterations),
        field("polish_iterations", &RansacOptions::polish_iterations),
        field("min_inliers", &RansacOptions::min_inliers),
        field("min_inlier_ratio", &RansacOptions::min_inlier_ratio),
        field("max_score_points", &RansacOptions::max_score_points),
        field("seed", &RansacOptions::seed),
    };
    return all;
}

RansacOptions options_from(const py::kwargs& kwargs) {
    RansacOptions options;
    for (const auto& [key, value] : kwargs) {
        const std::string name = py::str(key);
        const Field* match = nullptr;
        for (const Field& f : fields())
            if (name == f.name) match = &f;
        if (match == nullptr) {
            std::string known;
            for (const Field& f : fields())
                known += (known.empty() ? "" : ", ") + std::string(f.name);
            throw py::type_error("RansacOptions has no option '" + name + "'; the options are " +
                                 known);
        }
        match->set(options, value);
    }
    return options;
}

std::string repr(const RansacOptions& options) {
    std::string s = "RansacOptions(";
    for (const Field& f : fields())
        s += (s.back() == '(' ? "" : ", ") + std::string(f.name) + "=" +
             py::repr(f.get(options)).cast<std::string>();
    return s + ")";
}

// --- solve --------------------------------------------------------------------------------

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

py::tuple solve_pnp_py(const DoubleArray& points2d, const DoubleArray& points3d,
                       const std::array<double, 4>& intrinsics, const RansacOptions& options,
                       const std::optional<DoubleArray>& weights) {
    require_shape(points2d, "points2d", -1, 2);
    require_shape(points3d, "points3d", points2d.shape(0), 3);
    if (weights && (weights->ndim() != 1 || weights->shape(0) != points2d.shape(0)))
        throw std::invalid_argument("weights must have shape (N,) with N = " +
                                    std::to_string(points2d.shape(0)) + ", got " +
                                    shape_of(*weights));
    PoseSolution solution;
    {
        py::gil_scoped_release release;
        solution = solve_pnp(points2d.data(), points3d.data(),
                             weights ? weights->data() : nullptr,
                             static_cast<std::size_t>(points2d.shape(0)),
                             {intrinsics[0], intrinsics[1], intrinsics[2], intrinsics[3]},
                             options);
    }
    py::array_t<double> T({4, 4});
    auto t = T.mutable_unchecked<2>();
    const Rigid& P = solution.T_world_cam;
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

}  // namespace

PYBIND11_MODULE(_ransac, m) {
    m.doc() = "C++ RANSAC PnP (Lambda Twist P3P, DSAC*-style sampling, LM refinement).";

    py::class_<RansacOptions> options(
        m, "RansacOptions",
        "Options of a robust PnP solve: keyword arguments or typed attributes (see _ransac.pyi "
        "for each); unknown options and wrong types raise TypeError, out-of-range values "
        "ValueError at the solve.");
    options.def(py::init(&options_from)).def("__repr__", &repr);
    for (const Field& f : fields())
        options.def_property(f.name, py::cpp_function(f.get), py::cpp_function(f.set));

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
          py::arg("intrinsics"), py::arg("options"), py::arg("weights") = py::none(),
          "Robust PnP; returns (success, T_world_cam (4, 4), inliers (N,), RansacStats).");
}
