"""Put ``bench/`` on ``sys.path``: the benchmark helpers (``peer``) are not part of the
installed package, and the benchmark scripts import them the same way (their own folder first
on ``sys.path``)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))
