"""The peer's map: mapping frames' sparse features lifted to 3D, and their global descriptors.

Built once from the posed RGB-D frames of a folder dataset opened with depth (its depth
registered to the colour camera as the folder's calibration says) and cached as an ``.npz`` of plain
arrays (loaded with ``allow_pickle=False``), named after a hash of everything it depends on.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from seqace_ros.core.atomic_io import atomic_write_bytes
from seqace_ros.core.depth import depths_at
from seqace_ros.datasets.folder import FolderDataset

from .lifting import lift_keypoints
from .matching import XFeatSparse
from .retrieval import fit_codebook, vlad

_FORMAT = "seqace_peer_db_v1"


class DatabaseError(ValueError):
    """A database file that is not one of ours, or was built with other settings."""


@dataclass(frozen=True)
class DatabaseConfig:
    """Settings the database depends on.

    Attributes:
        num_keypoints: XFeat keypoints kept per mapping frame.
        vocabulary_words: VLAD codebook size.
        codebook_samples: descriptors (a random subset of all mapping descriptors) to fit it on.
        max_depth_spread: keypoints whose depth neighbourhood spreads more than this
            fraction of their depth get no 3D point (depth edges).
        seed: seed of the codebook's sampling and initialisation.
    """

    num_keypoints: int = 2048
    vocabulary_words: int = 64
    codebook_samples: int = 100_000
    max_depth_spread: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class PeerDatabase:
    """Mapping frames ready for retrieval and 2D-3D matching (M frames, N keypoints in all).

    Attributes:
        frame_indices_M: (M,) dataset indices of the mapping frames.
        offsets_M1: (M + 1,) frame m's keypoints are rows ``offsets[m]:offsets[m + 1]``.
        keypoints_N2: (N, 2) float32 colour-image pixels.
        descriptors_ND: (N, 64) float16 L2-normalised XFeat descriptors.
        points_world_N3: (N, 3) float32 world points in metres (zeros where not valid).
        valid_N: (N,) bool: the keypoint has a 3D point.
        global_MG: (M, G) float32 VLAD descriptors.
        codebook_KD: (K, 64) float32 VLAD codebook.
        settings: JSON-able description of what the database was built from.
    """

    frame_indices_M: NDArray[np.int64]
    offsets_M1: NDArray[np.int64]
    keypoints_N2: NDArray[np.float32]
    descriptors_ND: NDArray[np.float16]
    points_world_N3: NDArray[np.float32]
    valid_N: NDArray[np.bool_]
    global_MG: NDArray[np.float32]
    codebook_KD: NDArray[np.float32]
    settings: dict[str, Any]

    def frame_slice(self, m: int) -> slice:
        """Rows of mapping frame ``m`` (its position in ``frame_indices_M``)."""
        return slice(int(self.offsets_M1[m]), int(self.offsets_M1[m + 1]))

    def save(self, path: str | Path) -> Path:
        """Write as ``.npz`` atomically; returns the path."""
        buffer = io.BytesIO()
        arrays = {k: v for k, v in asdict(self).items() if k != "settings"}
        np.savez(buffer, format=np.array(_FORMAT), settings=np.array(json.dumps(self.settings)),
                 **arrays)
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> PeerDatabase:
        """Read a database written by :meth:`save` (no pickle).

        Raises:
            DatabaseError: when the file is not a peer database.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != _FORMAT:
                    raise DatabaseError(f"{path}: not a {_FORMAT} file")
                fields = {k: data[k] for k in data.files if k not in ("format", "settings")}
                settings = json.loads(str(data["settings"]))
        except (OSError, KeyError, ValueError) as error:
            if isinstance(error, DatabaseError):
                raise
            raise DatabaseError(f"{path}: cannot read peer database ({error})") from error
        return cls(settings=settings, **fields)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (the peer's map size in memory)."""
        return sum(v.nbytes for k, v in asdict(self).items() if k != "settings")


def build_database(
    dataset: FolderDataset, indices: Sequence[int], extractor: XFeatSparse,
    config: DatabaseConfig, progress: bool = False,
) -> PeerDatabase:
    """Detect, describe and lift the keypoints of the mapping frames; fit the codebook.

    Raises:
        DatabaseError: when ``dataset`` was not opened with depth.
        DatasetError: when a frame or its depth cannot be read, or a frame has no pose.
    """
    if not dataset.depth:
        raise DatabaseError("the peer lifts keypoints with depth: open the dataset with depth")
    keypoints, descriptors, points, valid = [], [], [], []
    for index in tqdm(indices, desc="peer database", disable=not progress):
        frame = dataset[index]
        if frame.T_world_cam is None:
            raise ValueError(f"mapping frame {frame.name} has no pose")
        features = extractor.detect(frame.image_rgb, config.num_keypoints)
        assert frame.depth is not None  # the dataset reads depth
        registered = frame.depth.registered_to(frame.intrinsics)
        depths_N, valid_N = depths_at(features.keypoints_N2, registered,
                                       max_relative_spread=config.max_depth_spread)
        points_N3 = lift_keypoints(features.keypoints_N2, depths_N, frame.intrinsics,
                                   frame.T_world_cam)
        keypoints.append(features.keypoints_N2)
        descriptors.append(features.descriptors_ND)
        points.append(np.where(valid_N[:, None], points_N3, 0.0).astype(np.float32))
        valid.append(valid_N)
    all_descriptors = np.concatenate(descriptors)
    rng = np.random.default_rng(config.seed)
    sample = rng.choice(len(all_descriptors), min(config.codebook_samples, len(all_descriptors)),
                        replace=False)
    codebook_KD = fit_codebook(all_descriptors[sample], config.vocabulary_words, seed=config.seed)
    return PeerDatabase(
        frame_indices_M=np.asarray(indices, np.int64),
        offsets_M1=np.concatenate([[0], np.cumsum([len(k) for k in keypoints])]).astype(np.int64),
        keypoints_N2=np.concatenate(keypoints),
        descriptors_ND=all_descriptors.astype(np.float16),
        points_world_N3=np.concatenate(points),
        valid_N=np.concatenate(valid),
        global_MG=np.stack([vlad(d, codebook_KD) for d in descriptors]),
        codebook_KD=codebook_KD,
        settings={"dataset": str(dataset.root.resolve()), "frames": [int(i) for i in indices],
                  "config": asdict(config),
                  "T_colour_depth": dataset.T_colour_depth.tolist(),
                  "detection_threshold": extractor.detection_threshold})


def load_or_build_database(
    dataset: FolderDataset, indices: Sequence[int], extractor: XFeatSparse,
    config: DatabaseConfig, cache_dir: Path, progress: bool = False,
) -> tuple[PeerDatabase, Path, bool]:
    """The cached database for these frames and settings, built and cached when absent.

    Returns:
        The database, its cache file, and whether it was built now (not read from the cache).
    """
    key = json.dumps({"dataset": str(dataset.root.resolve()), "frames": list(map(int, indices)),
                      "config": asdict(config), "T_colour_depth": dataset.T_colour_depth.tolist(),
                      "detection_threshold": extractor.detection_threshold,
                      "format": _FORMAT}, sort_keys=True)
    path = cache_dir / f"peer_db_{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        return PeerDatabase.load(path), path, False
    database = build_database(dataset, indices, extractor, config, progress)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return database, database.save(path), True
