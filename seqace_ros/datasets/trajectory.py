"""TUM-format trajectories: ``timestamp tx ty tz qx qy qz qw`` per line.

Timestamps are seconds (parsed digit-exactly into integer nanoseconds), translations metres,
quaternions (x, y, z, w). Each line is the pose of a body (usually the camera) in the world:
``T_world_body``. Lines starting with ``#`` and blank lines are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from seqace_ros.core.atomic_io import atomic_write_text
from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import (
    is_rigid_transform,
    transform_from_translation_quaternion,
    translation_quaternion_from_transform,
)


class TrajectoryError(SeqaceError, ValueError):
    """A trajectory file is missing, malformed or not time-ordered."""


@dataclass(frozen=True)
class Trajectory:
    """Time-stamped poses of one body in a world frame.

    Attributes:
        stamps_ns: (N,) int64 strictly increasing timestamps in nanoseconds.
        T_world_body_N44: (N, 4, 4) float64 body-to-world poses.
    """

    stamps_ns: NDArray[np.int64]
    T_world_body_N44: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.stamps_ns.shape[0])


def parse_seconds_to_ns(text: str) -> int:
    """Integer nanoseconds of a decimal seconds string, without float rounding.

    ``"1305031102.175304"`` -> ``1305031102175304000`` exactly (float64 resolves only ~0.2 us
    at 1e9 s). Digits past the ninth decimal are rounded half up. Exponent notation falls back
    to float.

    Raises:
        ValueError: if ``text`` is not a finite number.
    """
    stripped = text.strip()
    sign = -1 if stripped.startswith("-") else 1
    body = stripped.lstrip("+-")
    whole, _, fraction = body.partition(".")
    if (
        (whole or fraction)
        and (not whole or whole.isdigit())
        and (not fraction or fraction.isdigit())
    ):
        nanos = int(whole or "0") * 1_000_000_000 + int((fraction + "000000000")[:9])
        if len(fraction) > 9 and fraction[9] >= "5":
            nanos += 1
        return sign * nanos
    value = float(stripped)
    if not np.isfinite(value):
        raise ValueError(f"timestamp must be finite, got {text!r}")
    return round(value * 1e9)


def read_tum_trajectory(path: str | Path) -> Trajectory:
    """Read a TUM trajectory file.

    Raises:
        TrajectoryError: missing, unreadable or not UTF-8 file, a line without 8 numbers
            (file and line number given), a zero quaternion, no poses, or timestamps not
            strictly increasing.
    """
    file = Path(path)
    if not file.is_file():
        raise TrajectoryError(f"trajectory file {file} does not exist")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise TrajectoryError(f"cannot read trajectory file {file}: {error}") from None
    stamps: list[int] = []
    poses: list[NDArray[np.float64]] = []
    for line_number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.replace(",", " ").split()
        if len(fields) != 8:
            raise TrajectoryError(
                f"{file}:{line_number}: expected 8 values 'timestamp tx ty tz qx qy qz qw', "
                f"got {len(fields)}: {text[:80]!r}"
            )
        try:
            stamp_ns = parse_seconds_to_ns(fields[0])
            values = np.array([float(v) for v in fields[1:]], dtype=np.float64)
            if not np.all(np.isfinite(values)):
                raise ValueError("non-finite value")
            T = transform_from_translation_quaternion(values[:3], values[3:])
        except ValueError as error:
            raise TrajectoryError(f"{file}:{line_number}: {error}: {text[:80]!r}") from None
        if stamps and stamp_ns <= stamps[-1]:
            raise TrajectoryError(
                f"{file}:{line_number}: timestamps must increase strictly, got {fields[0]} "
                f"after {stamps[-1] / 1e9:.9f}"
            )
        stamps.append(stamp_ns)
        poses.append(T)
    if not stamps:
        raise TrajectoryError(f"trajectory file {file} holds no poses")
    return Trajectory(np.asarray(stamps, dtype=np.int64), np.stack(poses))


def write_tum_trajectory(
    path: str | Path, stamps_ns: ArrayLike, T_world_body_N44: ArrayLike
) -> Path:
    """Write poses as a TUM trajectory, atomically (temporary file, fsync, rename).

    Args:
        path: output file.
        stamps_ns: (N,) non-negative integer nanoseconds, strictly increasing; written as
            seconds with 9 decimals.
        T_world_body_N44: (N, 4, 4) body-to-world rigid transforms.

    Returns:
        The path written.

    Raises:
        TrajectoryError: mismatched lengths, non-increasing stamps or non-rigid transforms.
    """
    stamps = np.asarray(stamps_ns)
    poses = np.asarray(T_world_body_N44, dtype=np.float64)
    if stamps.ndim != 1 or not np.issubdtype(stamps.dtype, np.integer):
        raise TrajectoryError(
            f"stamps_ns must be a 1-D integer array, got {stamps.dtype} {stamps.shape}")
    if poses.shape != (stamps.shape[0], 4, 4):
        raise TrajectoryError(
            f"T_world_body_N44 must have shape ({stamps.shape[0]}, 4, 4), got {poses.shape}")
    if np.any(np.diff(stamps) <= 0) or np.any(stamps < 0):
        raise TrajectoryError("stamps_ns must be non-negative and increase strictly")
    bad = [i for i in range(len(poses)) if not is_rigid_transform(poses[i], atol=1e-5)]
    if bad:
        raise TrajectoryError(f"poses {bad[:5]} are not rigid transforms")
    lines = ["# timestamp tx ty tz qx qy qz qw"]
    for stamp, T in zip(stamps.tolist(), poses, strict=True):
        t, q = translation_quaternion_from_transform(T)
        seconds, nanos = divmod(int(stamp), 1_000_000_000)
        numbers = " ".join(f"{v:.9f}" for v in (*t, *q))
        lines.append(f"{seconds}.{nanos:09d} {numbers}")
    return atomic_write_text(path, "\n".join(lines) + "\n")
