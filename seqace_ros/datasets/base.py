"""The posed-image types every dataset reader produces and every pipeline step consumes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.depth import DepthImage


@dataclass(frozen=True)
class PosedFrame:
    """One image with its calibration and (for mapping and evaluation) its pose.

    Attributes:
        image_rgb: (H, W, 3) uint8 RGB image.
        intrinsics: pinhole intrinsics of ``image_rgb`` (its own size).
        T_world_cam: (4, 4) float64 camera-to-world pose, OpenCV camera axes; ``None``
            when the frame has no ground truth.
        stamp_ns: acquisition time in nanoseconds (frame index for folder datasets).
        name: a short identifier (file stem, or topic plus stamp).
        depth: the frame's depth image with its own calibration (RGB-D sources read with
            depth), else ``None``.
    """

    image_rgb: NDArray[np.uint8]
    intrinsics: Intrinsics
    T_world_cam: NDArray[np.float64] | None
    stamp_ns: int
    name: str
    depth: DepthImage | None = None


class PosedFrameSource(Protocol):
    """An ordered, indexable collection of posed frames (a folder, a bag, a synthetic scene)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> PosedFrame: ...

    def __iter__(self) -> Iterator[PosedFrame]: ...


def parse_frame_range(text: str, length: int) -> Sequence[int]:
    """Indices selected by ``START:END`` ranges (END exclusive, either side may be empty),
    several joined by commas (``0:200,400:700``), in the order given.

    Raises:
        ValueError: on a malformed range, one outside ``[0, length]``, or ranges that
            overlap.
    """
    indices: list[int] = []
    for part in text.split(","):
        indices.extend(_one_frame_range(part, length))
    if len(set(indices)) != len(indices):
        raise ValueError(f"frame ranges {text!r} overlap")
    return indices if "," in text else range(indices[0], indices[-1] + 1)


def _one_frame_range(text: str, length: int) -> range:
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"frame range must look like START:END, got {text!r}")
    try:
        start = int(parts[0]) if parts[0].strip() else 0
        end = int(parts[1]) if parts[1].strip() else length
    except ValueError as error:
        raise ValueError(f"frame range must look like START:END, got {text!r}") from error
    if not 0 <= start < end <= length:
        raise ValueError(f"frame range {text!r} is empty or outside the {length} frames available")
    return range(start, end)
