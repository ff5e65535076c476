"""``python -m seqace_ros.ros.demo``: see :mod:`seqace_ros.ros.demo.cli`."""

import sys

from seqace_ros.ros.demo.cli import main

sys.exit(main())
