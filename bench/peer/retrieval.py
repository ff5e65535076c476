"""Global image descriptors for retrieval: VLAD over XFeat local descriptors.

VLAD (Jégou et al. 2010; the aggregation NetVLAD learns) on the same sparse XFeat
descriptors the matcher uses, so retrieval adds no network pass: a spherical k-means
codebook is fitted on the mapping frames' descriptors; an image's descriptor sums, per
visual word, the residuals of the local descriptors assigned to it, then is
intra-normalised (per word), power-normalised (signed square root) and L2-normalised.
Frames are ranked by the cosine similarity of their VLADs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def fit_codebook(
    descriptors_ND: NDArray[np.floating], num_words: int, iterations: int = 20, seed: int = 0,
) -> NDArray[np.float32]:
    """Spherical k-means centroids of L2-normalised descriptors.

    Args:
        descriptors_ND: (N, D) training descriptors, N >= ``num_words``.
        num_words: codebook size K.
        iterations: Lloyd iterations.
        seed: seed of the initial centroids (a random subset of the descriptors).

    Returns:
        (K, D) float32 unit-norm centroids.

    Raises:
        ValueError: with fewer descriptors than words.
    """
    data = np.asarray(descriptors_ND, np.float32)
    if num_words < 1 or len(data) < num_words:
        raise ValueError(f"need at least num_words={num_words} >= 1 descriptors, got {len(data)}")
    rng = np.random.default_rng(seed)
    centroids_KD = data[rng.choice(len(data), num_words, replace=False)].copy()
    for _ in range(iterations):
        assignment_N = (data @ centroids_KD.T).argmax(axis=1)
        sums_KD = np.zeros_like(centroids_KD)
        np.add.at(sums_KD, assignment_N, data)
        norms_K = np.linalg.norm(sums_KD, axis=1)
        filled = norms_K > 0
        centroids_KD[filled] = sums_KD[filled] / norms_K[filled, None]
    return centroids_KD


def vlad(descriptors_ND: NDArray[np.floating], centroids_KD: NDArray[np.float32]
         ) -> NDArray[np.float32]:
    """The (K * D,) float32 unit-norm VLAD of one image's local descriptors (zeros if none)."""
    num_words, dim = centroids_KD.shape
    aggregate_KD = np.zeros((num_words, dim), np.float32)
    if len(descriptors_ND):
        data = np.asarray(descriptors_ND, np.float32)
        assignment_N = (data @ centroids_KD.T).argmax(axis=1)
        np.add.at(aggregate_KD, assignment_N, data - centroids_KD[assignment_N])
    aggregate_KD /= np.maximum(np.linalg.norm(aggregate_KD, axis=1, keepdims=True), 1e-12)
    flat = aggregate_KD.reshape(-1)
    flat = np.sign(flat) * np.sqrt(np.abs(flat))
    return (flat / max(float(np.linalg.norm(flat)), 1e-12)).astype(np.float32)


def nearest_frames(query_G: NDArray[np.float32], database_MG: NDArray[np.float32], k: int
                   ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Rows of ``database_MG`` (M, G) most similar to ``query_G`` (G,), best first.

    Returns:
        (min(k, M),) row indices and their cosine similarities.
    """
    similarity_M = database_MG @ query_G
    k = min(k, len(similarity_M))
    best = np.argpartition(-similarity_M, k - 1)[:k]
    best = best[np.argsort(-similarity_M[best])]
    return best.astype(np.int64), similarity_M[best]
