# Shared set-up of the GPU scripts (sourced by benchmarks/gpu.sh and gpu_distributed.sh; set
# LOG to the log file name first). Tees everything to $OUT/$LOG when $OUT is set, picks the
# Python ($PYTHON or python3), puts the working tree on PYTHONPATH, and defines `section`.
set -uo pipefail
if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT"
    exec > >(tee -a "$OUT/$LOG") 2>&1
fi
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
status=0
start=$SECONDS
section() { printf '\n=== %s (%s, +%ds) ===\n' "$*" "$(date '+%H:%M:%S')" "$((SECONDS - start))"; }
