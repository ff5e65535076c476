"""TUM trajectory files: exact round trip, exact timestamps, and malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqace_ros.core.geometry import make_transform, pose_error, rotation_from_quaternion_xyzw
from seqace_ros.datasets.trajectory import (
    TrajectoryError,
    parse_seconds_to_ns,
    read_tum_trajectory,
    write_tum_trajectory,
)


def random_poses(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(n):
        q = rng.normal(size=4)
        poses.append(make_transform(rotation_from_quaternion_xyzw(q), rng.uniform(-5, 5, 3)))
    return np.stack(poses)


def test_round_trip_is_exact_in_time_and_tight_in_pose(tmp_path: Path) -> None:
    stamps = np.array(
        [1_305_031_102_175_304_123, 1_305_031_102_208_000_001, 1_305_031_103_000_000_000]
    )
    poses = random_poses(3)
    path = write_tum_trajectory(tmp_path / "traj.txt", stamps, poses)
    trajectory = read_tum_trajectory(path)
    np.testing.assert_array_equal(trajectory.stamps_ns, stamps)
    for read, written in zip(trajectory.T_world_body_N44, poses, strict=True):
        meters, degrees = pose_error(read, written)
        assert meters < 1e-8
        assert degrees < 1e-5  # acos-based angle metric has a ~1e-6 deg floor
    assert not list(tmp_path.glob(".traj.txt.*")), "temporary file left behind"


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("1305031102.175304", 1_305_031_102_175_304_000),
        ("1305031102.1753041236", 1_305_031_102_175_304_124),
        ("0.5", 500_000_000),
        (".25", 250_000_000),
        ("12", 12_000_000_000),
        ("1.5e3", 1_500_000_000_000),
    ],
)
def test_parse_seconds_is_digit_exact(text: str, nanos: int) -> None:
    assert parse_seconds_to_ns(text) == nanos


def test_comments_blank_lines_and_commas_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("# header\n\n1.0 1 2 3 0 0 0 1\n2.0,1,2,3,0,0,0,2\n")
    trajectory = read_tum_trajectory(path)
    assert len(trajectory) == 2
    np.testing.assert_allclose(trajectory.T_world_body_N44[1][:3, 3], [1, 2, 3])
    np.testing.assert_allclose(trajectory.T_world_body_N44[1][:3, :3], np.eye(3))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1.0 1 2 3 0 0 0\n", r"t\.txt:1: expected 8 values"),
        ("1.0 1 2 3 0 0 0 1\n0.5 1 2 3 0 0 0 1\n", r"t\.txt:2: timestamps must increase"),
        ("1.0 1 2 3 0 0 0 0\n", r"t\.txt:1: quaternion .* non-zero"),
        ("1.0 1 x 3 0 0 0 1\n", r"t\.txt:1: could not convert"),
        ("1.0 1 nan 3 0 0 0 1\n", r"t\.txt:1: non-finite"),
        ("# nothing\n", "holds no poses"),
    ],
)
def test_malformed_files_raise_with_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.txt"
    path.write_text(content)
    with pytest.raises(TrajectoryError, match=message):
        read_tum_trajectory(path)


def test_missing_file_and_bad_writer_input(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryError, match="does not exist"):
        read_tum_trajectory(tmp_path / "missing.txt")
    with pytest.raises(TrajectoryError, match="increase strictly"):
        write_tum_trajectory(tmp_path / "a.txt", np.array([2, 1]), random_poses(2))
    with pytest.raises(TrajectoryError, match=r"shape \(2, 4, 4\)"):
        write_tum_trajectory(tmp_path / "a.txt", np.array([1, 2]), random_poses(3))
    with pytest.raises(TrajectoryError, match="not rigid"):
        write_tum_trajectory(tmp_path / "a.txt", np.array([1]), 2 * random_poses(1))
    assert not (tmp_path / "a.txt").exists()


def test_a_binary_file_is_a_trajectory_error(tmp_path: Path) -> None:
    path = tmp_path / "poses.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe binary")
    with pytest.raises(TrajectoryError, match=r"cannot read trajectory file .*poses\.txt"):
        read_tum_trajectory(path)
