"""seqace_ros: visual relocalization by scene coordinate regression (SeqACE / ACE family).

Layers (dependencies point one way, ``ros`` -> pipeline -> core):

- core: :mod:`seqace_ros.core` (geometry and conventions, encoder, head, map file) and
  :mod:`seqace_ros.ransac` (the C++ RANSAC PnP solver's Python face);
- pipeline: :mod:`seqace_ros.pipeline` (mapping, localization, evaluation),
  :mod:`seqace_ros.datasets` (folder layouts, bags, trajectories, synthetic scenes) and
  :mod:`seqace_ros.cli` (the ``seqace`` command);
- ros: :mod:`seqace_ros.ros` (the nodes, message conversions, TF in and out).

Everything outside ``seqace_ros.ros`` imports and runs without ROS installed.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("seqace_ros")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
