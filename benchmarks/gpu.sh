#!/usr/bin/env bash
# GPU checks for pdec on a machine with an NVIDIA GPU. Run from the repository root:
#
#     bash benchmarks/gpu.sh            # or: OUT=/some/dir bash benchmarks/gpu.sh
#
# Assumes `python3` (or $PYTHON) imports a CUDA build of torch; pip-installs pdec's other
# dependencies only if they are missing. Uses the working tree via PYTHONPATH (no install).
#   (a) nvidia-smi, torch / CUDA versions;
#   (b) tests/test_cuda.py: generated residuals on CUDA equal the CPU's (heat1d, poisson2d and
#       the Taylor-mode kdv spec, float64, rel 1e-10), 3 KFAC steps on CUDA lower the loss, and
#       torch_compile (Triton) gives eager CUDA's loss, trial losses and KFAC steps;
#   (c) 2d Poisson with the 2-256-256-128-128-1 net (D = 116 097, 900/120 fixed points,
#       configs/poisson2d-116097.toml): KFAC, then Adam, 200 steps each (capped at 90 s of
#       optimisation each), time per step and final errors.
# Everything printed also goes to $OUT/gpu.log when $OUT is set (and the timings to
# $OUT/gpu-timing.jsonl). Expected total: about 2-4 minutes on an H100 (hard caps keep it < 8).
# Exit status: 0 if every part passed, 1 otherwise.

LOG=gpu.log
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"

if [[ ! -f pdec/__init__.py || ! -f configs/poisson2d-116097.toml ]]; then
    echo "run this from the pdec repository root (pdec/ and configs/ not found in $PWD)"
    exit 1
fi

# ---------------------------------------------------------------------------- (a) machine
section "(a) machine"
nvidia-smi || echo "nvidia-smi failed"
"$PY" - <<'EOF'
import os, platform
import torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}, CPU cores {os.cpu_count()}")
print(f"torch.cuda.is_available() = {torch.cuda.is_available()}, devices: {torch.cuda.device_count()}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  cuda:{i} {p.name}, {p.total_memory / 2**30:.1f} GiB, compute capability {p.major}.{p.minor}")
EOF
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "no CUDA device visible to torch: stopping (the CUDA tests would only be skipped)"
    exit 1
fi

section "dependencies"
if ! "$PY" -c "import sympy, jinja2, networkx, numpy, tqdm, matplotlib, pytest" 2>/dev/null; then
    echo "installing missing dependencies with pip"
    "$PY" -m pip install -q sympy jinja2 networkx tqdm matplotlib pytest || echo "pip install failed"
fi
if ! "$PY" -c "import pdec, sympy; print('pdec', pdec.__version__, 'from', pdec.__file__, '| sympy', sympy.__version__)"; then
    echo "pdec is not importable: stopping"
    exit 1
fi

# ------------------------------------------------------------------------ (b) CUDA tests
section "(b) pytest tests/test_cuda.py on CUDA"
timeout 240 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py || { echo "CUDA tests FAILED (rc $?)"; status=1; }

# ---------------------------------------------------------------------- (c) timing
section "(c) 2d Poisson, 2-256-256-128-128-1 (D = 116 097): KFAC vs Adam on CUDA"
timeout 240 "$PY" - <<'EOF' || { echo "timing FAILED (rc $?)"; status=1; }
import json, os, time

import torch

import pdec
from pdec.train.config import resolve_config

CONFIG = "configs/poisson2d-116097.toml"
STEPS, CAP, EVAL_EVERY = 200, 90.0, 50
problem = pdec.load_spec("specs/poisson2d.py")
out = os.environ.get("OUT")
rows = []
for optimizer in ("kfac", "adam"):
    settings = dict(optimizer=optimizer, steps=STEPS, time_budget=CAP, seed=0, device="cuda",
                    eval_every=EVAL_EVERY, progress=False)
    cfg, hyper = resolve_config(settings, CONFIG)
    compiled = pdec.compile(problem, hidden=cfg.hidden, write=False, dtype=torch.float64, device="cuda")
    D = sum(p.numel() for p in compiled.model.parameters())
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    run = pdec.train(compiled, config_file=CONFIG, save=False, **settings)
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    at = {int(r["step"]): r["time"] for r in run.history}
    first = min((s for s in at if s >= EVAL_EVERY), default=None)  # steady state: after the first eval point
    steady = (1e3 * (run.elapsed - at[first]) / (run.steps - first)
              if first is not None and run.steps > first else float("nan"))
    row = {"problem": "poisson2d", "D": D, "optimizer": optimizer, "status": run.status, "steps": run.steps,
           "time_s": run.elapsed, "ms_per_step": 1e3 * run.elapsed / max(run.steps, 1),
           "ms_per_step_after_first_eval": steady, "wall_s": wall, "rel_l2": run.final.get("rel_l2"),
           "abs_rms": run.final.get("abs_rms"), "loss": run.final.get("loss"),
           "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "n_interior": cfg.n_interior,
           "n_condition": cfg.n_condition, "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "hyper": hyper, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    rows.append(row)
    print(f"{optimizer:5s} D = {D}: {run.status}, {run.steps} steps in {run.elapsed:.1f} s "
          f"({row['ms_per_step']:.1f} ms/step; {steady:.1f} ms/step after step {first}), "
          f"rel L2 {row['rel_l2']:.3e}, abs RMS {row['abs_rms']:.3e}, peak {row['peak_gib']:.2f} GiB, "
          f"wall {wall:.1f} s", flush=True)
    if out:
        with open(os.path.join(out, "gpu-timing.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
if len(rows) == 2:
    k, a = rows
    print(f"KFAC / Adam time per step: {k['ms_per_step'] / a['ms_per_step']:.1f}x; "
          f"abs RMS after {k['steps']} / {a['steps']} steps: KFAC {k['abs_rms']:.2e}, Adam {a['abs_rms']:.2e}")
EOF

section "done: $([[ $status == 0 ]] && echo 'all parts passed' || echo 'SOME PARTS FAILED')"
exit $status
