#!/usr/bin/env bash
# Run every benchmark, write bench/results/*.json, then render bench/results/summary.md.
#
#   bash bench/run_all.sh [--quick] [--threads N] [--results DIR] [--skip-node]
#
# Full run (default): maps the dev split (frames 0-499) with `seqace map --preset cpu` once
# (bench/mapping_bench.py: time, size, peak RSS; minutes) unless SEQACE_BENCH_MAP names a map
# to reuse; RANSAC PnP against poselib and OpenCV; relocalization of queries 500-699 by seqace
# single, seqace sequence and the retrieval + XFeat matching + PnP peer in one process;
# the relocalization node over DDS (latency, rate, peak RSS); sequence vs single on a
# synthetic repetitive scene.
# --quick: needs SEQACE_BENCH_MAP (a map of frames 0:500) and maps nothing; fewer RANSAC
# trials, every 4th query, a shorter node run, no synthetic scene; writes to
# bench/results/quick unless --results is given, so it never overwrites a full run's files.
#
# Environment: SEQACE_BENCH_MAP (map to reuse), SEQACE_DATA_DIR (folder holding
# redkitchen_dev; default ../shared/data), SEQACE_BENCH_CACHE (peer database and fresh map;
# default $TMPDIR/seqace_bench_cache).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
QUICK=0
THREADS=1
RESULTS=""
SKIP_NODE=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --threads) THREADS="$2"; shift ;;
        --results) RESULTS="$2"; shift ;;
        --skip-node) SKIP_NODE=1 ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
        *) echo "run_all.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [[ -z "$RESULTS" ]]; then
    RESULTS="$ROOT/bench/results"
    [[ $QUICK == 1 ]] && RESULTS="$ROOT/bench/results/quick"
fi
DATA="${SEQACE_DATA_DIR:-$ROOT/../shared/data}/redkitchen_dev"
CACHE="${SEQACE_BENCH_CACHE:-${TMPDIR:-/tmp}/seqace_bench_cache}"
MAP="${SEQACE_BENCH_MAP:-}"
if [[ $QUICK == 1 && -z "$MAP" ]]; then
    echo "run_all.sh: --quick needs SEQACE_BENCH_MAP=<map of frames 0:500>" >&2; exit 2
fi
if [[ -n "$MAP" && ! -f "$MAP" ]]; then
    echo "run_all.sh: SEQACE_BENCH_MAP=$MAP: no such file" >&2; exit 2
fi
mkdir -p "$RESULTS" "$CACHE"
export OMP_NUM_THREADS="$THREADS"
cd "$ROOT"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
step() { echo "== $* ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))" >&2; }

step "mapping"
if [[ -n "$MAP" ]]; then
    "$PY" bench/mapping_bench.py --reuse "$MAP" --json "$RESULTS/mapping.json" > /dev/null
else
    MAP="$CACHE/seqace_cpu_0-500.map"
    "$PY" bench/mapping_bench.py --out "$MAP" --data "$DATA" --frames 0:500 --preset cpu \
        --threads "$THREADS" --json "$RESULTS/mapping.json" > /dev/null
fi

step "RANSAC PnP vs poselib and OpenCV"
RANSAC_ARGS=()
[[ $QUICK == 1 ]] && RANSAC_ARGS=(--quick)
"$PY" bench/ransac_bench.py --json "$RESULTS/ransac_bench.json" "${RANSAC_ARGS[@]}" > /dev/null

step "relocalization: seqace single, sequence and the peer"
QUERY_STEP=1
[[ $QUICK == 1 ]] && QUERY_STEP=4
"$PY" bench/relocalization_bench.py --map "$MAP" --data "$DATA" --map-frames 0:500 \
    --queries 500:700 --step "$QUERY_STEP" --threads "$THREADS" --cache-dir "$CACHE" \
    --json "$RESULTS/relocalization.json" > /dev/null

if [[ $SKIP_NODE == 1 ]]; then
    step "relocalization node: skipped (--skip-node)"
elif ! "$PY" -c "import rclpy" 2> /dev/null; then
    step "relocalization node: skipped (rclpy not importable; run scripts/setup.sh)"
else
    step "relocalization node over DDS"
    NODE_ARGS=(--frames 500:600 --rate 5 --flood-rate 30 --flood-seconds 20)
    [[ $QUICK == 1 ]] && NODE_ARGS=(--frames 500:540 --rate 5 --flood-rate 30 --flood-seconds 8)
    "$PY" bench/node_latency.py --map "$MAP" --data "$DATA" --device cpu "${NODE_ARGS[@]}" \
        --json "$RESULTS/node_latency.json" > /dev/null
fi

if [[ $QUICK == 0 ]]; then
    step "sequence vs single on a synthetic repetitive scene"
    "$PY" bench/sequence_bench.py --json "$RESULTS/sequence_bench.json" --threads "$THREADS" \
        > /dev/null
fi

step "summary"
CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
MODE="full"
[[ $QUICK == 1 ]] && MODE="quick"
"$PY" bench/make_table.py --results "$RESULTS" \
    --command "bash bench/run_all.sh $([[ $QUICK == 1 ]] && echo --quick) --threads $THREADS ($MODE; map: $MAP)" \
    --machine "$(getconf _NPROCESSORS_ONLN) CPUs ($CPU), no GPU used; load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%d)"
