// Small fixed-size linear algebra for the RANSAC PnP solver: 3-vectors, 3x3 matrices,
// rigid transforms and a 6x6 symmetric positive-definite solve. Self-contained (no Eigen).
#pragma once

#include <array>
#include <cmath>

namespace seqace_ransac {

struct Vec3 {
    double x = 0.0, y = 0.0, z = 0.0;

    Vec3 operator+(const Vec3& o) const { return {x + o.x, y + o.y, z + o.z}; }
    Vec3 operator-(const Vec3& o) const { return {x - o.x, y - o.y, z - o.z}; }
    Vec3 operator*(double s) const { return {x * s, y * s, z * s}; }
    Vec3 operator-() const { return {-x, -y, -z}; }
    double operator[](int i) const { return i == 0 ? x : (i == 1 ? y : z); }
};

inline double dot(const Vec3& a, const Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
    return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
inline double squared_norm(const Vec3& a) { return dot(a, a); }
inline double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }

// Row-major 3x3 matrix: m[row][col].
struct Mat3 {
    std::array<std::array<double, 3>, 3> m{};

    static Mat3 identity() {
        Mat3 I;
        I.m[0][0] = I.m[1][1] = I.m[2][2] = 1.0;
        return I;
    }
    // Matrix whose columns are a, b, c.
    static Mat3 from_columns(const Vec3& a, const Vec3& b, const Vec3& c) {
        Mat3 M;
        M.m = {{{a.x, b.x, c.x}, {a.y, b.y, c.y}, {a.z, b.z, c.z}}};
        return M;
    }
    Vec3 operator*(const Vec3& v) const {
        return {m[0][0] * v.x + m[0][1] * v.y + m[0][2] * v.z,
                m[1][0] * v.x + m[1][1] * v.y + m[1][2] * v.z,
                m[2][0] * v.x + m[2][1] * v.y + m[2][2] * v.z};
    }
    Mat3 operator*(const Mat3& o) const {
        Mat3 r;
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j)
                r.m[i][j] = m[i][0] * o.m[0][j] + m[i][1] * o.m[1][j] + m[i][2] * o.m[2][j];
        return r;
    }
    Mat3 transpose() const {
        Mat3 r;
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) r.m[i][j] = m[j][i];
        return r;
    }
    Vec3 row(int i) const { return {m[i][0], m[i][1], m[i][2]}; }
};

inline double determinant(const Mat3& A) {
    return dot(A.row(0), cross(A.row(1), A.row(2)));
}

// Inverse of a 3x3 matrix; returns false when |det| is below `min_abs_det`.
inline bool invert(const Mat3& A, Mat3* inverse, double min_abs_det) {
    const Vec3 r0 = A.row(0), r1 = A.row(1), r2 = A.row(2);
    const Vec3 c0 = cross(r1, r2), c1 = cross(r2, r0), c2 = cross(r0, r1);
    const double det = dot(r0, c0);
    if (!(std::abs(det) > min_abs_det)) return false;
    *inverse = Mat3::from_columns(c0 * (1.0 / det), c1 * (1.0 / det), c2 * (1.0 / det));
    return true;
}

// Rotation matrix of the axis-angle vector w (radians), Rodrigues' formula.
inline Mat3 rotation_exp(const Vec3& w) {
    const double theta2 = squared_norm(w);
    double a, b;  // R = I + a [w]x + b [w]x^2
    if (theta2 < 1e-12) {
        a = 1.0 - theta2 / 6.0;
        b = 0.5 - theta2 / 24.0;
    } else {
        const double theta = std::sqrt(theta2);
        a = std::sin(theta) / theta;
        b = (1.0 - std::cos(theta)) / theta2;
    }
    Mat3 R = Mat3::identity();
    const double K[3][3] = {{0.0, -w.z, w.y}, {w.z, 0.0, -w.x}, {-w.y, w.x, 0.0}};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            double k2 = 0.0;
            for (int k = 0; k < 3; ++k) k2 += K[i][k] * K[k][j];
            R.m[i][j] += a * K[i][j] + b * k2;
        }
    return R;
}

// Rigid transform T_a_b: x_a = R * x_b + t.
struct Rigid {
    Mat3 R = Mat3::identity();
    Vec3 t;

    Vec3 apply(const Vec3& p) const { return R * p + t; }
    Rigid operator*(const Rigid& o) const { return {R * o.R, R * o.t + t}; }
    Rigid inverse() const {
        const Mat3 Rt = R.transpose();
        return {Rt, -(Rt * t)};
    }
};

// Solve A x = b for a symmetric positive-definite 6x6 A (row-major, full storage) by
// Cholesky; returns false when A is not numerically positive definite.
inline bool solve_spd6(const std::array<double, 36>& A, const std::array<double, 6>& b,
                       std::array<double, 6>* x) {
    double L[6][6] = {};
    for (int i = 0; i < 6; ++i) {
        for (int j = 0; j <= i; ++j) {
            double s = A[i * 6 + j];
            for (int k = 0; k < j; ++k) s -= L[i][k] * L[j][k];
            if (i == j) {
                if (!(s > 1e-300)) return false;
                L[i][i] = std::sqrt(s);
            } else {
                L[i][j] = s / L[j][j];
            }
        }
    }
    double y[6];
    for (int i = 0; i < 6; ++i) {
        double s = b[i];
        for (int k = 0; k < i; ++k) s -= L[i][k] * y[k];
        y[i] = s / L[i][i];
    }
    for (int i = 5; i >= 0; --i) {
        double s = y[i];
        for (int k = i + 1; k < 6; ++k) s -= L[k][i] * (*x)[k];
        (*x)[i] = s / L[i][i];
    }
    return true;
}

}  // namespace seqace_ransac
