"""Product quantization of keypoint descriptors: how a map stores keyframe descriptors in a
few bytes each instead of 128 (64 float16 values).

A unit-length descriptor d (D = 64 values) is rotated into the principal axes of the map's own
descriptors, dealt out round-robin over M groups of D / M axes (group g takes axes g, g + M,
g + 2M, ... in order of decreasing variance, so every group holds strong and weak axes alike),
and each group is replaced by the index of its nearest of 256 centroids, found by k-means on
that group of the map's descriptors: M one-byte codes per descriptor. Decoding concatenates
the groups' centroids, rotates back and normalises to unit length.

Only the stored side is quantized: localization matches a query's exact descriptors against the
decoded ones. The rotation, the centroids and the codes are plain arrays in the map file; the
codec holds no code and loads nothing but numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from numpy.typing import NDArray

#: Centroids per group: one byte per code.
CENTROIDS = 256
#: Most descriptors k-means fits the centroids on (an even subsample of larger sets, 64 per
#: centroid); all of them are then encoded. Fitting on four times as many, with more
#: iterations, took many times as long for decodings hardly closer to the descriptors
#: (``bench/results/NOTES.md``, section 35).
FIT_SAMPLES = 16_384
#: Lloyd iterations of k-means.
KMEANS_ITERATIONS = 10
#: Largest entry of R R^T - I accepted for a stored rotation R.
ORTHONORMAL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ProductQuantizer:
    """A fitted codec for D-dimensional descriptors, M codes each.

    Attributes:
        rotation_DD: (D, D) float32 orthonormal matrix; a descriptor row d is rotated to
            ``d @ rotation_DD``, whose columns g*S:(g+1)*S (S = D / M) are group g.
        centroids_MCS: (M, 256, S) float32 centroids of each group in rotated coordinates.
    """

    rotation_DD: NDArray[np.float32]
    centroids_MCS: NDArray[np.float32]

    def __post_init__(self) -> None:
        dim = self.rotation_DD.shape[0] if self.rotation_DD.ndim == 2 else 0
        groups, centroids, width = (self.centroids_MCS.shape if self.centroids_MCS.ndim == 3
                                    else (0, 0, 0))
        if (dim < 1 or self.rotation_DD.shape != (dim, dim) or groups < 1
                or centroids != CENTROIDS or groups * width != dim):
            raise ValueError(
                f"product quantizer needs a (D, D) rotation and (M, {CENTROIDS}, D / M) "
                f"centroids, got {self.rotation_DD.shape} and {self.centroids_MCS.shape}")
        if self.rotation_DD.dtype != np.float32 or self.centroids_MCS.dtype != np.float32:
            raise ValueError("product quantizer arrays must be float32")
        if not (np.all(np.isfinite(self.rotation_DD)) and np.all(np.isfinite(self.centroids_MCS))):
            raise ValueError("product quantizer arrays hold NaN or inf")
        rotation = self.rotation_DD.astype(np.float64)
        if np.max(np.abs(rotation @ rotation.T - np.eye(dim))) > ORTHONORMAL_TOLERANCE:
            raise ValueError("product quantizer rotation is not orthonormal")

    @property
    def code_bytes(self) -> int:
        """Codes (bytes) per descriptor, M."""
        return self.centroids_MCS.shape[0]

    @property
    def dim(self) -> int:
        """Descriptor dimension D."""
        return self.rotation_DD.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes of the codec's arrays (stored once per map)."""
        return self.rotation_DD.nbytes + self.centroids_MCS.nbytes

    def encode(self, descriptors_ND: NDArray[np.floating]) -> NDArray[np.uint8]:
        """(N, M) uint8 codes of N descriptors (N, D): each group's nearest centroid."""
        rotated = self._groups(torch.from_numpy(np.asarray(descriptors_ND, dtype=np.float32)))
        centroids = torch.from_numpy(self.centroids_MCS)
        codes = [torch.cdist(rotated[g], centroids[g]).argmin(dim=1)
                 for g in range(self.code_bytes)]
        return torch.stack(codes, dim=1).to(torch.uint8).numpy()

    def decode(self, codes_NM: NDArray[np.uint8]) -> NDArray[np.float16]:
        """(N, D) float16 unit-length descriptors of (N, M) codes.

        Raises:
            ValueError: codes of the wrong shape or dtype, or a code whose centroids add up to
                a zero vector (which no fitted codec produces; a corrupt map can).
        """
        if (codes_NM.dtype != np.uint8 or codes_NM.ndim != 2
                or codes_NM.shape[1] != self.code_bytes):
            raise ValueError(f"codes must be (N, {self.code_bytes}) uint8, got "
                             f"{codes_NM.shape} {codes_NM.dtype}")
        groups_M = np.arange(self.code_bytes)
        rotated_NMS = self.centroids_MCS[groups_M, codes_NM.astype(np.int64)]
        rotated_ND = rotated_NMS.reshape(len(codes_NM), -1)
        decoded_ND = rotated_ND @ self.rotation_DD.T
        norms_N1 = np.linalg.norm(decoded_ND, axis=1, keepdims=True)
        if np.any(norms_N1 < 1e-6):
            raise ValueError("codes decode to zero-length descriptors")
        return (decoded_ND / norms_N1).astype(np.float16)

    def _groups(self, descriptors_ND: torch.Tensor) -> list[torch.Tensor]:
        """The M (N, S) groups of the rotated descriptors."""
        rotated = descriptors_ND @ torch.from_numpy(self.rotation_DD)
        return list(rotated.split(self.dim // self.code_bytes, dim=1))


def fit_product_quantizer(descriptors_ND: NDArray[np.floating], code_bytes: int,
                          seed: int = 0) -> ProductQuantizer:
    """A codec for descriptors like the (N, D) rows given, with ``code_bytes`` codes each.

    Deterministic for equal input and ``seed``. Works for any N >= 1 (with fewer than 256
    descriptors some centroids repeat).

    Raises:
        ValueError: ``code_bytes`` not a divisor of D, or no descriptors.
    """
    descriptors = torch.from_numpy(np.asarray(descriptors_ND, dtype=np.float32))
    count, dim = descriptors.shape
    if count < 1:
        raise ValueError("a product quantizer needs at least one descriptor to fit")
    if code_bytes < 1 or dim % code_bytes:
        raise ValueError(f"code_bytes must divide the descriptor dimension {dim}, got "
                         f"{code_bytes}")
    generator = torch.Generator().manual_seed(seed)
    if count > FIT_SAMPLES:
        descriptors = descriptors[torch.linspace(0, count - 1, FIT_SAMPLES).long()]
    centred = descriptors.double() - descriptors.double().mean(dim=0)
    _, axes_DD = torch.linalg.eigh(centred.T @ centred)  # ascending variance
    axes_DD = axes_DD.flip(1)
    dealt = [axis for group in range(code_bytes) for axis in range(group, dim, code_bytes)]
    rotation_DD = axes_DD[:, dealt].float().contiguous()
    rotated = descriptors @ rotation_DD
    centroids = [_kmeans(group, generator) for group in rotated.split(dim // code_bytes, dim=1)]
    return ProductQuantizer(rotation_DD.numpy(), torch.stack(centroids).numpy())


def _kmeans(points_NS: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(256, S) centroids of the rows of ``points_NS`` (Lloyd's iterations from a random
    draw of the rows; a centroid that loses all its rows stays where it was)."""
    count = len(points_NS)
    start = (torch.randperm(count, generator=generator)[:CENTROIDS] if count >= CENTROIDS
             else torch.randint(count, (CENTROIDS,), generator=generator))
    centroids = points_NS[start].clone()
    for _ in range(KMEANS_ITERATIONS):
        nearest = torch.cdist(points_NS, centroids).argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, nearest, points_NS)
        members = torch.bincount(nearest, minlength=CENTROIDS).unsqueeze(1)
        centroids = torch.where(members > 0, sums / members.clamp(min=1), centroids)
    return centroids


@dataclass(frozen=True)
class QuantizedDescriptors:
    """N descriptors stored as codes of one codec.

    Attributes:
        quantizer: the codec.
        codes_NM: (N, M) uint8 codes.
        fidelity: mean cosine similarity between the descriptors and their decodings, in
            (0, 1], measured when they were encoded. A decoded descriptor's similarity to
            any other descriptor shrinks by about this factor against the original's, so
            thresholds on similarity are scaled by it (keyframe matching does).
    """

    quantizer: ProductQuantizer
    codes_NM: NDArray[np.uint8]
    fidelity: float

    def __post_init__(self) -> None:
        if (self.codes_NM.dtype != np.uint8 or self.codes_NM.ndim != 2
                or self.codes_NM.shape[1] != self.quantizer.code_bytes):
            raise ValueError(f"codes must be (N, {self.quantizer.code_bytes}) uint8, got "
                             f"{self.codes_NM.shape} {self.codes_NM.dtype}")
        if not 0.0 < self.fidelity <= 1.0:
            raise ValueError(f"fidelity must be in (0, 1], got {self.fidelity}")

    @classmethod
    def fit(cls, descriptors_ND: NDArray[np.floating], code_bytes: int,
            seed: int = 0) -> QuantizedDescriptors:
        """The (N, D) unit-length descriptors encoded by a codec fitted to them
        (:func:`fit_product_quantizer`), with the fidelity of their decodings."""
        quantizer = fit_product_quantizer(descriptors_ND, code_bytes, seed)
        codes_NM = quantizer.encode(descriptors_ND)
        cosines_N = np.sum(np.asarray(descriptors_ND, dtype=np.float64)
                           * quantizer.decode(codes_NM).astype(np.float64), axis=1)
        fidelity = np.float32(np.clip(np.mean(cosines_N), 1e-6, 1.0))  # as the map stores it
        return cls(quantizer, codes_NM, float(fidelity))

    def __len__(self) -> int:
        return len(self.codes_NM)

    @property
    def nbytes(self) -> int:
        """Bytes stored: the codes, the codec and the fidelity (one float32)."""
        return self.codes_NM.nbytes + self.quantizer.nbytes + np.dtype(np.float32).itemsize

    def decode(self) -> NDArray[np.float16]:
        """(N, D) float16 unit-length descriptors (see :meth:`ProductQuantizer.decode`),
        decoded once (loading a map and checking its keyframes ask for them more than once);
        the array is shared, not to be modified."""
        return self._decoded

    @cached_property
    def _decoded(self) -> NDArray[np.float16]:
        return self.quantizer.decode(self.codes_NM)

    def same_as(self, other: QuantizedDescriptors) -> bool:
        """Whether both hold equal codes, codecs and fidelities."""
        return self.fidelity == other.fidelity and all(np.array_equal(a, b) for a, b in (
            (self.codes_NM, other.codes_NM),
            (self.quantizer.rotation_DD, other.quantizer.rotation_DD),
            (self.quantizer.centroids_MCS, other.quantizer.centroids_MCS)))
