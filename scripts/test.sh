#!/usr/bin/env bash
# The test command: sets the environment up (idempotent), then runs the whole test suite.
# Extra arguments go to pytest (for example: bash scripts/test.sh -m "not slow" -x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
# DDS stays on this machine in every test run; conftest.py picks a per-run ROS_DOMAIN_ID.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
