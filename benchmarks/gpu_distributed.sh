#!/usr/bin/env bash
# Data parallel on NVIDIA GPUs (NCCL). Run from the repository root:
#
#     bash benchmarks/gpu_distributed.sh        # or: OUT=/some/dir bash benchmarks/gpu_distributed.sh
#
# Assumes `python3` (or $PYTHON) imports a CUDA build of torch and pdec's dependencies (see
# benchmarks/gpu.sh, which installs missing ones). Uses the working tree via PYTHONPATH.
# With two or more GPUs:
#   (a) tests/distributed_worker.py on 2 ranks with NCCL (one GPU each): 5 steps of KFAC, KFAC*,
#       ENGD, Hessian-free, Adam, SGD, L-BFGS on heat1d, parameters compared with one GPU on the
#       union batch (relative 1e-10);
#   (b) 5d Poisson, 5-256-256-128-128-1 (D = 116 865), 3 000 + 500 points: KFAC steps per second
#       on 1 GPU and on 2 GPUs (`pdec train --nproc 2 --device cuda`), and their ratio.
# With one GPU: (b) on 1 GPU only (the single-rank path of the same command).
# DEVICE=cpu runs the same steps with gloo on this machine's CPU as 2 ranks (a dry run of the
# script's logic; 5d Poisson with fewer points and steps).
# Expected total: 2-4 minutes. Exit status 0 if every part passed.

LOG=gpu_distributed.log
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"

DEVICE="${DEVICE:-cuda}"
if [[ "$DEVICE" == cpu ]]; then
    GPUS=2; ONE=cpu; POINTS=(--set n_interior=600 --set n_condition=100); STEPS=6; EVERY=2
    section "dry run on the CPU: 2 gloo ranks stand in for 2 GPUs"
else
    GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
    ONE=cuda:0; POINTS=(--set n_interior=3000 --set n_condition=500); STEPS=60; EVERY=20
    section "machine: $GPUS GPU(s)"
    nvidia-smi -L || true
    if [[ "$GPUS" -lt 1 ]]; then
        echo "no CUDA device visible to torch: nothing to do"
        exit 1
    fi
fi

if [[ "$GPUS" -ge 2 ]]; then
    section "(a) 2 ranks ($DEVICE): parameters equal one device's after 5 steps"
    WORK=$(mktemp -d)
    if timeout 300 "$PY" -m torch.distributed.run --standalone --nproc-per-node=2 \
            tests/distributed_worker.py "$WORK" "$DEVICE"; then
        timeout 200 "$PY" - "$WORK" "$ONE" <<'EOF' || { echo "(a) FAILED"; status=1; }
import sys
from pathlib import Path

import torch

sys.path.insert(0, "tests")
from distributed_worker import CASES, run_case

out, device, worst = Path(sys.argv[1]), sys.argv[2], 0.0
for case in CASES:
    one = run_case(case, device=device)
    two = torch.load(out / f"{case}.pt")
    rel = max(float((p - q).norm() / p.norm()) for p, q in zip(one, two))
    worst = max(worst, rel)
    print(f"{case:16s} max relative difference 1 device vs 2 ranks: {rel:.2e}")
print(f"worst {worst:.2e}: {'PASS' if worst < 1e-10 else 'FAIL'} (tolerance 1e-10)")
sys.exit(0 if worst < 1e-10 else 1)
EOF
    else
        echo "(a) FAILED: the 2-rank NCCL run did not complete"; status=1
    fi
fi

section "(b) 5d Poisson, D = 116 865: KFAC steps per second ($DEVICE)"
RUNS=$(mktemp -d)
ROOT=$PWD
run_kfac() {  # $1 = number of ranks; runs in $RUNS so that generated/ there, not the repository's, is rewritten
    local args=(train "$ROOT/specs/poisson5d.py" --optimizer kfac --device "$DEVICE" --steps "$STEPS" --no-progress
                --runs runs --set hidden=256,256,128,128 "${POINTS[@]}" --set n_eval=2000
                --set eval_every="$EVERY")
    [[ "$1" -gt 1 ]] && args+=(--nproc "$1")
    (cd "$RUNS" && timeout 240 "$PY" -m pdec "${args[@]}")
}
for ranks in 1 $([[ "$GPUS" -ge 2 ]] && echo 2); do
    echo "--- $ranks rank(s)"
    run_kfac "$ranks" || { echo "(b) FAILED with $ranks rank(s)"; status=1; }
done
"$PY" - "$RUNS" <<'EOF'
import csv, json, sys
from pathlib import Path

for run in sorted(Path(sys.argv[1]).glob("runs/*/*")):
    cfg = json.loads((run / "config.json").read_text())
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    (a, b) = rows[1], rows[-1]  # after the first evaluation point: steady state
    rate = (int(b["step"]) - int(a["step"])) / (float(b["time"]) - float(a["time"]))
    print(f"{cfg['ranks']} rank(s): {rate:.2f} KFAC steps/s (steps {a['step']}-{b['step']}), "
          f"rel L2 {float(b['rel_l2']):.3e}")
EOF
section "done: $([[ $status == 0 ]] && echo 'all parts passed' || echo 'SOME PARTS FAILED')"
exit $status
