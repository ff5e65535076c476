// Minimal solver: perspective-three-point (P3P) by the Lambda Twist method
// (Persson and Nordberg, "Lambda Twist: An Accurate Fast Robust Perspective Three Point
// (P3P) Solver", ECCV 2018), written from the paper's derivation.
#pragma once

#include <array>

#include "seqace_ransac/linalg.h"

namespace seqace_ransac {

// Camera poses T_cam_world that map the three world points onto the three bearing rays.
//
// bearings: unit direction vectors in the camera frame (OpenCV axes) of the three
// observations; points_world: the three matching world points. Writes up to four poses
// with all three points in front of the camera and returns how many it wrote (0 for a
// degenerate configuration: collinear world points, parallel bearings, no real solution).
//
// Method: the depths L = (l1, l2, l3) satisfy three quadrics |l_i y_i - l_j y_j|^2 = a_ij.
// Two homogeneous combinations D1, D2 of them define a pencil D1 + g D2; a real root g of
// the cubic det(D1 + g D2) = 0 makes the conic degenerate, i.e. a pair of planes through
// the origin found from its eigen-decomposition. Intersecting each plane with the conic D2
// gives a quadratic in one depth ratio; the scale follows from one distance equation, the
// depths are polished by Gauss-Newton on all three equations, and the pose follows from
// aligning the triangle's edge frames in world and camera.
int p3p_lambda_twist(const std::array<Vec3, 3>& bearings, const std::array<Vec3, 3>& points_world,
                     std::array<Rigid, 4>* T_cam_world);

}  // namespace seqace_ransac
