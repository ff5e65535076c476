"""A conventional relocalization peer: image retrieval + XFeat sparse matching + depth + PnP.

Not part of the product: the benchmarks run it in the same process as seqace's localizers,
on the same frames, to compare against. The scripts in ``bench/`` import it as ``peer`` (their
folder is first on ``sys.path``). Building blocks, one job each:

- :mod:`peer.matching`: XFeat sparse keypoints and descriptors, mutual nearest
  neighbour matching;
- :mod:`peer.retrieval`: a VLAD global descriptor over those local descriptors and
  top-k nearest mapping frames;
- :mod:`peer.lifting`: 7-Scenes depth -> colour-camera depth -> 3D world points;
- :mod:`peer.database`: the mapping frames' keypoints, descriptors, 3D points and
  global descriptors, built once and cached as ``.npz`` (no pickle);
- :mod:`peer.pipeline`: query image -> retrieval -> matching -> poselib RANSAC PnP ->
  pose and timings, with the same ``localize`` interface as seqace's localizers.

Depth registration was checked on mapping frame pairs (0-460 every 40 frames, against the
frames 10 and 30 later): lifting colour keypoints with the registered depth and projecting
them into the other frame under the ground-truth poses lands a median 3.7 px from their XFeat
match (53 % within 4 px); using the depth pixel at the same (u, v) as if registered: 4.2 px
(48 %); with a generic Kinect depth-to-colour calibration instead of the identity: 3.7 px.
At these baselines the registration matters little; ground-truth and keypoint noise dominate.
"""
