"""bench/gt_consistency.py: its ICP finds a known disagreement between a frame's depth and a
deliberately wrong pose of the same frame, and finds none where the poses agree."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from data_paths import require_redkitchen
from gt_consistency import best_alignment, icp, load_frame

from seqace_ros.core.geometry import make_transform, pose_error
from seqace_ros.datasets.folder import read_calibration

pytestmark = pytest.mark.real_data
STEP = 2


def _rotation_z(degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    return np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0],
                     [0.0, 0.0, 1.0]])


@pytest.mark.parametrize(("shift_m", "turn_deg"), [(0.03, 1.0), (0.015, 0.0), (0.0, 2.0)])
def test_icp_recovers_a_known_pose_error(shift_m: float, turn_deg: float) -> None:
    """The same depth under a pose moved by a known amount: ICP aligns it back onto the frame,
    so the aligned pose differs from the wrong 'ground truth' by that amount."""
    data = require_redkitchen()
    K = read_calibration(data / "depth-intrinsics.txt", 640, 480)
    target = load_frame(data, 100, K, STEP)
    delta = make_transform(_rotation_z(turn_deg), [shift_m, -0.5 * shift_m, 0.2 * shift_m])
    query = dataclasses.replace(target, T_world_cam=target.T_world_cam @ delta)
    T_target_query, overlap = icp(query, target, K, STEP)
    assert overlap > 0.9
    translation_m, rotation_deg = pose_error(target.T_world_cam @ T_target_query,
                                             target.T_world_cam)
    assert translation_m < 0.002
    assert rotation_deg < 0.1
    wrong_m, wrong_deg = pose_error(target.T_world_cam @ T_target_query, query.T_world_cam)
    assert wrong_m == pytest.approx(np.linalg.norm(delta[:3, 3]), abs=0.002)
    assert wrong_deg == pytest.approx(turn_deg, abs=0.1)


def test_consecutive_frames_agree_with_their_ground_truth() -> None:
    """Neighbouring frames of one tracking pass: the aligned pose stays within millimetres of
    the ground truth, and the best candidate is the nearest frame."""
    data = require_redkitchen()
    K = read_calibration(data / "depth-intrinsics.txt", 640, 480)
    map_indices = [40, 45, 50, 55]
    poses = np.stack([load_frame(data, i, K, STEP).T_world_cam for i in map_indices])
    query = load_frame(data, 51, K, STEP)
    frame, T_aligned, overlap = best_alignment(query, data, map_indices, poses, K, STEP, 2)
    assert frame == 50
    assert overlap > 0.8
    translation_m, rotation_deg = pose_error(T_aligned, query.T_world_cam)
    assert translation_m < 0.005
    assert rotation_deg < 0.3
