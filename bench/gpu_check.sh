#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU, set up a CUDA torch, map the dev split with the
# gpu preset, evaluate single and sequence mode, benchmark the node; one JSON.
#
#   bash bench/gpu_check.sh [--python PY | --no-setup] [--allow-cpu] [options of gpu_check.py]
#
# Interpreter (first that applies):
#   --python PY   use PY as it is, nothing set up: it must import a CUDA torch and this
#                 project's dependencies (for a machine without network that has them).
#   --no-setup    use .venv/bin/python (or $SEQACE_VENV/bin/python) as it is.
#   (default)     SEQACE_TORCH=cuda bash scripts/setup.sh, then .venv/bin/python: keeps a CUDA
#                 torch the venv already has; else takes the torch of the first of $PYTHON,
#                 python3, /usr/bin/python3, /usr/local/bin/python3, /opt/conda/bin/python that
#                 has a CUDA build (named in the venv by a .pth file; the ROS 2 wheels that
#                 setup.sh installs need that Python to be 3.11); else installs
#                 PyPI's CUDA build of torch (needs network; several GB). With --allow-cpu,
#                 setup runs with SEQACE_TORCH=auto and installs no CUDA torch.
# Then bench/gpu_check.py runs the steps (torch, preflight, map, eval, node, report) with this
# tree first on PYTHONPATH, says which torch and GPU it uses, and writes the JSON at the end,
# atomically: bench/results/gpu_check.json (bench/results/gpu_check_cpu.json for a run without
# CUDA) unless --out is given. Without a CUDA device it stops at the torch step unless
# --allow-cpu, which runs every step on the CPU and marks the JSON "gpu_run": false; e.g. a
# quick dry run:
#   bash bench/gpu_check.sh --no-setup --allow-cpu --preset test --iterations 150 \
#     --map-frames 0:30 --queries 30:36 --warmup 1 --node-frames 30:36 --node-rate 2 \
#     --flood-rate 10 --flood-seconds 2 --threads 1
# A failed step ends with one line "gpu_check: step NAME failed: ..." and exit status 1
# (2 for a bad option of this script); nothing is written then.
# The options of gpu_check.py follow (they need .venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SEQACE_VENV:-$ROOT/.venv}"
COMMAND="bash bench/gpu_check.sh"
if [[ $# -gt 0 ]]; then
    printf -v quoted ' %q' "$@"
    COMMAND+="$quoted"
fi
PY=""
SETUP=1
ALLOW_CPU=0
ARGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --python)
            [[ $# -ge 2 ]] || { echo "gpu_check.sh: --python needs an interpreter" >&2; exit 2; }
            PY="$2"; SETUP=0; shift ;;
        --no-setup) SETUP=0 ;;
        --allow-cpu) ALLOW_CPU=1; ARGS+=("$1") ;;
        -h|--help)
            sed -n '2,/^set -euo/{/^#/p}' "$0"
            if [[ -x $VENV/bin/python ]]; then
                echo
                PYTHONPATH="$ROOT" "$VENV/bin/python" "$ROOT/bench/gpu_check.py" --help
            fi
            exit 0 ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
fail() {
    local name="$1"
    shift
    echo "gpu_check: step $name failed: $*" >&2
    exit 1
}

# exit status 0 when the interpreter $1 imports a torch built with CUDA
cuda_torch() {
    "$1" -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)" >/dev/null 2>&1
}

if [[ -z $PY ]]; then
    if [[ $SETUP == 1 ]]; then
        echo "== gpu_check: setup ($(date -u +%H:%M:%S) UTC)" >&2
        torch_build=cuda
        [[ $ALLOW_CPU == 1 ]] && torch_build=auto
        base="${PYTHON:-python3}"
        if [[ $torch_build == cuda ]]; then
            for candidate in "${PYTHON:-}" python3 /usr/bin/python3 /usr/local/bin/python3 \
                /opt/conda/bin/python; do
                if [[ -n $candidate ]] && command -v "$candidate" >/dev/null \
                    && cuda_torch "$candidate"; then
                    base="$candidate"
                    break
                fi
            done
        fi
        status=0
        PYTHON="$base" SEQACE_TORCH="$torch_build" SEQACE_VENV="$VENV" \
            bash "$ROOT/scripts/setup.sh" >&2 || status=$?
        if [[ $status != 0 ]]; then
            fail setup "SEQACE_TORCH=$torch_build scripts/setup.sh exited with status $status" \
                "(no network? then pass --python PY, an interpreter with a CUDA torch and this" \
                "project's dependencies)"
        fi
    fi
    PY="$VENV/bin/python"
fi
if ! command -v "$PY" >/dev/null; then
    fail torch "no interpreter $PY (run without --no-setup, or pass --python PY)"
fi

cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
exec "$PY" "$ROOT/bench/gpu_check.py" --command "$COMMAND" "${ARGS[@]}"
