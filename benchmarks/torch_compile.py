"""Eager against ``torch_compile = true``: time per step, the compile's cost, and agreement.

For each problem (the paper's nets and point counts, float64) and optimizer, two copies of the same
start take the same steps on the same points, one eager and one with the generated element-wise
functions compiled (:mod:`pdec.torch_compile`). Printed per row:

    compile s    the compiled copy's first --warmup steps minus the eager copy's (the compile's cost)
    eager, compiled  ms per step: median over --rounds interleaved rounds of --steps steps each
                 (eager, then compiled, in every round, so drifts in machine speed hit both alike)
    ratio        eager / compiled
    break-even   steps after which the compiled run is ahead: compile s / (eager − compiled)
    loss rel.    |L_eager − L_compiled| / L_eager after all steps (round-off, grown by the steps)

By default TorchInductor's on-disk cache starts empty (a temporary directory), as on a user's first
run; --warm-cache keeps the usual cache, as on later runs. Each row is appended to
benchmarks/results/torch_compile.jsonl.

    python benchmarks/torch_compile.py                     # about 3 minutes on 2 cores
    python benchmarks/torch_compile.py --problems heat4d --optimizers adam,kfac
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "torch_compile.jsonl"
#: problem -> (interior points, condition points): the paper's sizes (issue 4)
PROBLEMS = {"poisson2d": (900, 120), "heat1d": (900, 120), "poisson5d": (3000, 500), "heat4d": (3000, 500)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="poisson2d,poisson5d,heat4d")
    parser.add_argument("--optimizers", default="adam,kfac,kfac-star,engd-layerwise")
    parser.add_argument("--warmup", type=int, default=3, help="steps that include the compile")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm-cache", action="store_true", help="keep TorchInductor's on-disk cache")
    args = parser.parse_args()
    if not args.warm_cache:   # before torch is imported: TorchInductor reads it once
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="pdec-inductor-")

    import torch

    import pdec
    from pdec.optim import get_optimizer
    from pdec.torch_compile import use_torch_compile
    from pdec.train.allocator import keep_freed_memory
    from pdec.train.sampling import PointSampler

    keep_freed_memory()
    stamp = time.strftime("%Y-%m-%d %H:%M")
    print(f"{stamp}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"inductor cache {'warm' if args.warm_cache else 'empty at the start'}\n")
    print(f"{'problem':10s} {'optimizer':15s} {'compile s':>9s} {'eager':>8s} {'compiled':>9s} {'ratio':>6s} "
          f"{'break-even':>10s} {'loss rel.':>9s}")
    for problem in args.problems.split(","):
        torch.compiler.reset()   # each problem compiles afresh, as in its own run (pdec.train does too)
        n_interior, n_condition = PROBLEMS[problem]
        compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / f"{problem}.py"), hidden=(64,), write=False,
                                seed=0)
        batch = PointSampler(compiled.problem, n_interior, n_condition, seed=0).batch
        for name in args.optimizers.split(","):
            models = {"eager": copy.deepcopy(compiled.model),
                      "compiled": use_torch_compile(copy.deepcopy(compiled.model))}
            opts = {k: get_optimizer(name)(m) for k, m in models.items()}
            first = {}
            for k, opt in opts.items():
                t0 = time.perf_counter()
                for _ in range(args.warmup):
                    opt.step(batch)
                first[k] = time.perf_counter() - t0
            per_step, loss = {k: [] for k in opts}, {}
            for _ in range(args.rounds):
                for k, opt in opts.items():
                    t0 = time.perf_counter()
                    for _ in range(args.steps):
                        info = opt.step(batch)
                    per_step[k].append((time.perf_counter() - t0) / args.steps)
                    loss[k] = info.loss
            ms = {k: 1e3 * statistics.median(v) for k, v in per_step.items()}
            compile_s = first["compiled"] - first["eager"]
            gain = (ms["eager"] - ms["compiled"]) / 1e3
            break_even = compile_s / gain if gain > 0 else float("inf")
            rel = abs(loss["eager"] - loss["compiled"]) / abs(loss["eager"])
            print(f"{problem:10s} {name:15s} {compile_s:9.1f} {ms['eager']:8.1f} {ms['compiled']:9.1f} "
                  f"{ms['eager'] / ms['compiled']:6.2f} {break_even:10.0f} {rel:9.1e}", flush=True)
            row = {"problem": problem, "optimizer": name, "points": [n_interior, n_condition], "hidden": [64],
                   "compile_s": compile_s, "ms_eager": ms["eager"], "ms_compiled": ms["compiled"],
                   "ratio": ms["eager"] / ms["compiled"], "break_even_steps": break_even, "loss_rel_diff": rel,
                   "warmup": args.warmup, "steps": args.steps, "rounds": args.rounds,
                   "cache": "warm" if args.warm_cache else "empty", "date": stamp,
                   "cores": os.cpu_count(), "torch": torch.__version__, "command": " ".join(sys.argv)}
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            with RESULTS.open("a") as f:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
