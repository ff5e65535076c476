"""A conventional relocalization peer: image retrieval + XFeat sparse matching + depth + PnP.

Not part of the product: the benchmarks run it in the same process as seqace's localizers,
on the same frames, to compare against. Building blocks, one job each:

- :mod:`bench.peer.matching`: XFeat sparse keypoints and descriptors, mutual nearest
  neighbour matching;
- :mod:`bench.peer.retrieval`: a VLAD global descriptor over those local descriptors and
  top-k nearest mapping frames;
- :mod:`bench.peer.lifting`: 7-Scenes depth -> colour-camera depth -> 3D world points;
- :mod:`bench.peer.database`: the mapping frames' keypoints, descriptors, 3D points and
  global descriptors, built once and cached as ``.npz`` (no pickle);
- :mod:`bench.peer.pipeline`: query image -> retrieval -> matching -> poselib RANSAC PnP ->
  pose and timings, with the same ``localize`` interface as seqace's localizers.
"""
