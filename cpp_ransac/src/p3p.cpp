#include "seqace_ransac/p3p.h"

#include <algorithm>
#include <cmath>

namespace seqace_ransac {
namespace {

using Sym3 = std::array<std::array<double, 3>, 3>;

Sym3 add_scaled(const Sym3& A, double s, const Sym3& B) {
    Sym3 r;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) r[i][j] = A[i][j] + s * B[i][j];
    return r;
}

Vec3 row(const Sym3& A, int i) { return {A[i][0], A[i][1], A[i][2]}; }

// Cofactor matrix (= adjugate for a symmetric matrix).
Sym3 adjugate(const Sym3& A) {
    Sym3 C;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            const int i1 = (i + 1) % 3, i2 = (i + 2) % 3, j1 = (j + 1) % 3, j2 = (j + 2) % 3;
            C[j][i] = A[i1][j1] * A[i2][j2] - A[i1][j2] * A[i2][j1];
        }
    return C;
}

double trace_product(const Sym3& A, const Sym3& B) {
    double s = 0.0;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) s += A[i][j] * B[j][i];
    return s;
}

double det3(const Sym3& A) { return dot(row(A, 0), cross(row(A, 1), row(A, 2))); }

double quad_form(const Sym3& A, const Vec3& u, const Vec3& v) {
    return u.x * (A[0][0] * v.x + A[0][1] * v.y + A[0][2] * v.z) +
           u.y * (A[1][0] * v.x + A[1][1] * v.y + A[1][2] * v.z) +
           u.z * (A[2][0] * v.x + A[2][1] * v.y + A[2][2] * v.z);
}

// Null vector of a (near) rank-2 symmetric matrix: the longest cross product of two rows.
bool null_vector(const Sym3& A, Vec3* n) {
    const Vec3 c[3] = {cross(row(A, 0), row(A, 1)), cross(row(A, 0), row(A, 2)),
                       cross(row(A, 1), row(A, 2))};
    int best = 0;
    double best_n2 = squared_norm(c[0]);
    for (int k = 1; k < 3; ++k) {
        const double n2 = squared_norm(c[k]);
        if (n2 > best_n2) {
            best_n2 = n2;
            best = k;
        }
    }
    if (!(best_n2 > 1e-300)) return false;
    *n = c[best] * (1.0 / std::sqrt(best_n2));
    return true;
}

// Real roots of c3 g^3 + c2 g^2 + c1 g + c0, polished by Newton steps; returns the count.
int cubic_real_roots(double c3, double c2, double c1, double c0, double roots[3]) {
    const double scale = std::max({std::abs(c3), std::abs(c2), std::abs(c1), std::abs(c0)});
    if (!(scale > 0.0) || !std::isfinite(scale)) return 0;
    int n = 0;
    if (std::abs(c3) < 1e-12 * scale) {  // (near) quadratic
        if (std::abs(c2) < 1e-12 * scale) {
            if (std::abs(c1) < 1e-12 * scale) return 0;
            roots[n++] = -c0 / c1;
        } else {
            const double disc = c1 * c1 - 4.0 * c2 * c0;
            if (disc < 0.0) return 0;
            const double q = -0.5 * (c1 + std::copysign(std::sqrt(disc), c1));
            roots[n++] = q / c2;
            if (q != 0.0) roots[n++] = c0 / q;
        }
    } else {
        const double a = c2 / c3, b = c1 / c3, c = c0 / c3;
        // Depressed cubic t^3 + p t + q with g = t - a/3.
        const double p = b - a * a / 3.0;
        const double q = 2.0 * a * a * a / 27.0 - a * b / 3.0 + c;
        const double disc = q * q / 4.0 + p * p * p / 27.0;
        if (disc > 0.0) {
            const double s = std::sqrt(disc);
            roots[n++] = std::cbrt(-q / 2.0 + s) + std::cbrt(-q / 2.0 - s) - a / 3.0;
        } else {
            const double r = std::sqrt(std::max(-p / 3.0, 0.0));
            const double arg = (r > 0.0) ? std::clamp(-q / (2.0 * r * r * r), -1.0, 1.0) : 0.0;
            const double phi = std::acos(arg);
            for (int k = 0; k < 3; ++k)
                roots[n++] = 2.0 * r * std::cos((phi - 2.0 * M_PI * k) / 3.0) - a / 3.0;
        }
    }
    for (int k = 0; k < n; ++k) {
        double g = roots[k];
        for (int it = 0; it < 2; ++it) {
            const double f = ((c3 * g + c2) * g + c1) * g + c0;
            const double df = (3.0 * c3 * g + 2.0 * c2) * g + c1;
            if (df == 0.0) break;
            g -= f / df;
        }
        roots[k] = g;
    }
    return n;
}

// Gauss-Newton on the three distance equations l_i^2 + l_j^2 - 2 c_ij l_i l_j = a_ij.
void refine_depths(double L[3], const double a[3], const double c[3]) {
    // Equation k couples the pair (i, j) = (0, 1), (0, 2), (1, 2) with a[k], c[k].
    static constexpr int I[3] = {0, 0, 1}, J[3] = {1, 2, 2};
    for (int it = 0; it < 3; ++it) {
        double r[3];
        Mat3 Jm;
        for (int k = 0; k < 3; ++k) {
            const double li = L[I[k]], lj = L[J[k]];
            r[k] = li * li + lj * lj - 2.0 * c[k] * li * lj - a[k];
            Jm.m[k] = {0.0, 0.0, 0.0};
            Jm.m[k][I[k]] = 2.0 * li - 2.0 * c[k] * lj;
            Jm.m[k][J[k]] = 2.0 * lj - 2.0 * c[k] * li;
        }
        if (std::abs(r[0]) + std::abs(r[1]) + std::abs(r[2]) < 1e-15) return;
        Mat3 Jinv;
        if (!invert(Jm, &Jinv, 1e-300)) return;
        const Vec3 step = Jinv * Vec3{r[0], r[1], r[2]};
        const double next[3] = {L[0] - step.x, L[1] - step.y, L[2] - step.z};
        double r_next = 0.0;
        for (int k = 0; k < 3; ++k) {
            const double li = next[I[k]], lj = next[J[k]];
            r_next += std::abs(li * li + lj * lj - 2.0 * c[k] * li * lj - a[k]);
        }
        if (!(r_next < std::abs(r[0]) + std::abs(r[1]) + std::abs(r[2]))) return;
        std::copy(next, next + 3, L);
    }
}

}  // namespace

int p3p_lambda_twist(const std::array<Vec3, 3>& y, const std::array<Vec3, 3>& X,
                     std::array<Rigid, 4>* T_cam_world) {
    const Vec3 d01 = X[0] - X[1], d02 = X[0] - X[2], d12 = X[1] - X[2];
    const double a_max = std::max({squared_norm(d01), squared_norm(d02), squared_norm(d12)});
    if (!(a_max > 0.0)) return 0;
    // World triangle frame; singular when the points are (near) collinear.
    const Vec3 n_world = cross(d01, d02);
    if (!(squared_norm(n_world) > 1e-12 * a_max * a_max)) return 0;
    Mat3 X_inv;
    if (!invert(Mat3::from_columns(d01, d02, n_world), &X_inv, 0.0)) return 0;

    // Distances normalised by the longest edge (scale invariance, conditioning).
    const double a01 = squared_norm(d01) / a_max, a02 = squared_norm(d02) / a_max,
                 a12 = squared_norm(d12) / a_max;
    const double c01 = dot(y[0], y[1]), c02 = dot(y[0], y[2]), c12 = dot(y[1], y[2]);
    if (std::max({c01, c02, c12}) > 1.0 - 1e-12) return 0;  // parallel bearings

    // Quadric matrices: L^T M_ij L = |l_i y_i - l_j y_j|^2.
    const Sym3 M01 = {{{1.0, -c01, 0.0}, {-c01, 1.0, 0.0}, {0.0, 0.0, 0.0}}};
    const Sym3 M02 = {{{1.0, 0.0, -c02}, {0.0, 0.0, 0.0}, {-c02, 0.0, 1.0}}};
    const Sym3 M12 = {{{0.0, 0.0, 0.0}, {0.0, 1.0, -c12}, {0.0, -c12, 1.0}}};
    // Homogeneous conics through the solution: D1 = a12 M01 - a01 M12, D2 = a12 M02 - a02 M12.
    Sym3 D1, D2;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            D1[i][j] = a12 * M01[i][j] - a01 * M12[i][j];
            D2[i][j] = a12 * M02[i][j] - a02 * M12[i][j];
        }

    // det(D1 + g D2) = det D1 + g tr(adj(D1) D2) + g^2 tr(D1 adj(D2)) + g^3 det D2.
    double gammas[3];
    const int n_gamma = cubic_real_roots(det3(D2), trace_product(D1, adjugate(D2)),
                                         trace_product(adjugate(D1), D2), det3(D1), gammas);

    const double a[3] = {a01, a02, a12};
    const double c[3] = {c01, c02, c12};
    const double depth_scale = std::sqrt(a_max);
    int n_solutions = 0;
    for (int gi = 0; gi < n_gamma && n_solutions == 0; ++gi) {
        const Sym3 D0 = add_scaled(D1, gammas[gi], D2);
        Vec3 e3;
        if (!null_vector(D0, &e3)) continue;
        // Non-zero eigenvalues s1 > 0 > s2 from the trace and the principal minors.
        const double tr = D0[0][0] + D0[1][1] + D0[2][2];
        const double minors = D0[0][0] * D0[1][1] - D0[0][1] * D0[0][1] + D0[0][0] * D0[2][2] -
                              D0[0][2] * D0[0][2] + D0[1][1] * D0[2][2] - D0[1][2] * D0[1][2];
        if (!(minors < 0.0)) continue;  // complex plane pair: no real depths from this root
        const double root = std::sqrt(tr * tr / 4.0 - minors);
        const double s1 = tr / 2.0 + root, s2 = tr / 2.0 - root;
        Sym3 shifted = D0;
        for (int i = 0; i < 3; ++i) shifted[i][i] -= s1;
        Vec3 e1;
        if (!null_vector(shifted, &e1)) continue;
        const Vec3 e2 = cross(e3, e1);
        const double s = std::sqrt(-s2 / s1);

        for (int sign = 0; sign < 2; ++sign) {
            // Plane p^T L = 0 with p = e1 -+ s e2; eliminate its largest coordinate.
            const Vec3 p = sign == 0 ? e1 - e2 * s : e1 + e2 * s;
            const double pa[3] = {std::abs(p.x), std::abs(p.y), std::abs(p.z)};
            const int m = pa[0] >= pa[1] ? (pa[0] >= pa[2] ? 0 : 2) : (pa[1] >= pa[2] ? 1 : 2);
            const int ia = (m + 1) % 3, ib = (m + 2) % 3;
            double gv[3] = {0.0, 0.0, 0.0}, hv[3] = {0.0, 0.0, 0.0};
            gv[ia] = 1.0;
            gv[m] = -p[ia] / p[m];
            hv[ib] = 1.0;
            hv[m] = -p[ib] / p[m];
            const Vec3 g{gv[0], gv[1], gv[2]}, h{hv[0], hv[1], hv[2]};
            // On the plane, L = u g + v h solves A u^2 + B u v + C v^2 = 0 (conic D2).
            const double A = quad_form(D2, g, g), B = 2.0 * quad_form(D2, g, h),
                         C = quad_form(D2, h, h);
            const bool solve_u = std::abs(A) >= std::abs(C);
            const double qa = solve_u ? A : C, qc = solve_u ? C : A;
            if (qa == 0.0) continue;
            double disc = B * B - 4.0 * qa * qc;
            if (disc < 0.0) {
                if (disc < -1e-12 * (B * B + std::abs(4.0 * qa * qc))) continue;
                disc = 0.0;
            }
            const double q = -0.5 * (B + std::copysign(std::sqrt(disc), B));
            double ratios[2];
            int n_ratios = 0;
            ratios[n_ratios++] = q / qa;
            if (q != 0.0 && disc > 0.0) ratios[n_ratios++] = qc / q;
            for (int k = 0; k < n_ratios; ++k) {
                Vec3 L = solve_u ? g * ratios[k] + h : g + h * ratios[k];
                if (L.x < 0.0 && L.y < 0.0 && L.z < 0.0) L = -L;
                if (!(L.x > 0.0 && L.y > 0.0 && L.z > 0.0)) continue;
                // Scale from the longest-edge equation (its a is 1 after normalisation).
                int e = 0;
                if (a[1] > a[e]) e = 1;
                if (a[2] > a[e]) e = 2;
                static constexpr int I[3] = {0, 0, 1}, J[3] = {1, 2, 2};
                const double li = L[I[e]], lj = L[J[e]];
                const double qe = li * li + lj * lj - 2.0 * c[e] * li * lj;
                if (!(qe > 0.0)) continue;
                const double k_scale = std::sqrt(a[e] / qe);
                double depths[3] = {L.x * k_scale, L.y * k_scale, L.z * k_scale};
                refine_depths(depths, a, c);
                if (!(depths[0] > 0.0 && depths[1] > 0.0 && depths[2] > 0.0)) continue;
                const Vec3 P0 = y[0] * (depths[0] * depth_scale);
                const Vec3 P1 = y[1] * (depths[1] * depth_scale);
                const Vec3 P2 = y[2] * (depths[2] * depth_scale);
                const Vec3 v01 = P0 - P1, v02 = P0 - P2;
                Rigid& T = (*T_cam_world)[n_solutions];
                T.R = Mat3::from_columns(v01, v02, cross(v01, v02)) * X_inv;
                T.t = P0 - T.R * X[0];
                if (++n_solutions == 4) return n_solutions;
            }
        }
    }
    return n_solutions;
}

}  // namespace seqace_ransac
