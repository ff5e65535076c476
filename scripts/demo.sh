#!/usr/bin/env bash
# The main job, end to end, on one machine:
#
#   bash scripts/demo.sh [--real] [--mode single|sequence] [--out DIR] [more: --help]
#
# 1. sets the environment up (scripts/setup.sh: idempotent, seconds when already done);
# 2. renders the synthetic demo room into a map bag and a query bag (reused by later runs;
#    --real: the redkitchen_dev frames 0-499 and 500-699 instead);
# 3. maps the map bag with mapping_node;
# 4. starts relocalization_node and replays the query bag to it as a live camera over DDS,
#    kept on loopback (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a random ROS_DOMAIN_ID unless
#    one is set);
# 5. prints the report (recall 5cm/5deg and 2cm/2deg, median errors, latency, Hz) and the paths
#    of the JSON report and the trajectory plot (default output folder: demo_out/ here).
#
# Exits non-zero with one "seqace demo: error: ..." line on failure. Ctrl-C or SIGTERM stops
# the child nodes before exiting.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${SEQACE_VENV:-$ROOT/.venv}/bin/python"

bash "$ROOT/scripts/setup.sh" >&2 || { echo "seqace demo: error: environment setup failed" >&2; exit 1; }

out_given=0
for arg in "$@"; do
  case "$arg" in --out|--out=*|-h|--help) out_given=1 ;; esac
done
out_args=()
[ "$out_given" = 1 ] || out_args=(--out "$ROOT/demo_out")

# exec: the demo replaces this shell, so Ctrl-C and SIGTERM reach it directly (a backgrounded
# child of a non-interactive shell would ignore SIGINT). It keeps DDS on loopback, draws the
# domain ID, and stops its child nodes on SIGINT and SIGTERM; the nodes also get SIGTERM from
# the kernel if the demo itself dies (seqace_ros.ros.demo.cli and .children).
exec "$PY" -m seqace_ros.ros.demo "${out_args[@]}" "$@"
