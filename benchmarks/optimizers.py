"""Optimizer benchmark on 2d Poisson (issue 3): steps, time per step and final errors.

Problem: specs/poisson2d.py, net 2-64-1 (D = 257), float64, 900 interior / 120 boundary points
fixed for the run, relative and absolute-RMS L2 error on 9 000 held-out points. Two parts:

1. fixed step budgets: KFAC (median of --seeds seeds), ENGD full and layer-wise, 1 000 steps;
2. equal wall time (--time-budget, default 60 s): KFAC, Adam, SGD, L-BFGS (and more with
   --optimizers), one seed.

Every finished row is appended to --results (JSON lines) at once, so an interrupted benchmark keeps
what it measured. Targets (issue 3) are checked and printed at the end.

    python benchmarks/optimizers.py                     # everything (about 8 minutes on 2 cores)
    python benchmarks/optimizers.py --part steps --seeds 1
    python benchmarks/optimizers.py --part steps --kfac-set adaptive_damping=true   # KFAC's opt-in
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import pdec

ROOT = Path(__file__).resolve().parents[1]
COMMON = dict(n_interior=900, n_condition=120, n_eval=9000, resample_every=0, progress=False)


def run_one(optimizer: str, seed: int, steps: int = 0, time_budget: float = 0.0, hyper: dict | None = None) -> dict:
    problem = pdec.load_spec(ROOT / "specs" / "poisson2d.py")
    compiled = pdec.compile(problem, hidden=(64,), write=False)
    eval_every = steps if steps else 10**9
    run = pdec.train(compiled, optimizer, steps=steps, time_budget=time_budget, seed=seed, save=False,
                     eval_every=max(eval_every, 1), **COMMON, **(hyper or {}))
    return {"optimizer": optimizer, **({"hyper": hyper} if hyper else {}), "seed": seed, "steps": run.steps,
            "time": run.elapsed,
            "ms_per_step": 1e3 * run.elapsed / max(run.steps, 1), "rel_l2": run.final.get("rel_l2"),
            "abs_rms": run.final.get("abs_rms"), "status": run.status,
            "budget": f"{steps} steps" if steps else f"{time_budget:g} s"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "steps", "time"], default="all")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for KFAC's step-budget runs")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--time-budget", type=float, default=60.0)
    parser.add_argument("--optimizers", default="kfac,adam,sgd,lbfgs",
                        help="equal-time part (comma-separated)")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results/optimizers.jsonl"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--kfac-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a hyperparameter of the KFAC runs (repeatable), e.g. adaptive_damping=true; "
                             "recorded in their rows")
    args = parser.parse_args()
    kfac_hyper = {}
    for item in args.kfac_set:
        key, _, value = item.partition("=")
        kfac_hyper[key.strip()] = {"true": True, "false": False}.get(value.strip().lower(), value.strip())
    if args.threads:
        torch.set_num_threads(args.threads)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    rows = []

    def record(row):
        row["date"] = time.strftime("%Y-%m-%d %H:%M")
        rows.append(row)
        with args.results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{row['optimizer']:15s} seed {row['seed']} {row['budget']:>10s}: {row['steps']:6d} steps, "
              f"{row['ms_per_step']:8.1f} ms/step, rel L2 {row['rel_l2']:.2e}, abs RMS {row['abs_rms']:.2e}",
              flush=True)

    if args.part in ("all", "steps"):
        for seed in range(args.seeds):
            record(run_one("kfac", seed, steps=args.steps, hyper=kfac_hyper))
        for name in ("engd", "engd-layerwise"):
            record(run_one(name, 0, steps=args.steps))
    if args.part in ("all", "time"):
        for name in args.optimizers.split(","):
            record(run_one(name.strip(), 0, time_budget=args.time_budget,
                           hyper=kfac_hyper if name.strip() == "kfac" else None))

    print(f"\n{'optimizer':15s} {'budget':>10s} {'seeds':>5s} {'steps':>7s} {'ms/step':>8s} {'rel L2':>9s} {'abs RMS':>9s}")
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["optimizer"], r["budget"]), []).append(r)
    med = {}
    for (name, budget), rs in groups.items():
        m = {k: statistics.median(r[k] for r in rs) for k in ("steps", "ms_per_step", "rel_l2", "abs_rms")}
        med[(name, budget)] = m
        print(f"{name:15s} {budget:>10s} {len(rs):5d} {m['steps']:7.0f} {m['ms_per_step']:8.1f} "
              f"{m['rel_l2']:9.2e} {m['abs_rms']:9.2e}")

    print("\ntargets (issue 3; medians):")
    sb, tb = f"{args.steps} steps", f"{args.time_budget:g} s"

    def check(label, ok):
        print(f"  [{'met' if ok else 'MISSED'}] {label}")

    if ("kfac", sb) in med:
        m = med[("kfac", sb)]
        check(f"KFAC ≤ 25 ms/step: {m['ms_per_step']:.1f}", m["ms_per_step"] <= 25)
        check(f"KFAC RMS ≤ 2.5e-5 after {args.steps} steps: {m['abs_rms']:.2e}", m["abs_rms"] <= 2.5e-5)
    for name in ("engd", "engd-layerwise"):
        if (name, sb) in med:
            m = med[(name, sb)]
            check(f"{name} ≤ 60 ms/step: {m['ms_per_step']:.1f}", m["ms_per_step"] <= 60)
    if ("engd-layerwise", sb) in med:
        m = med[("engd-layerwise", sb)]
        check(f"layer-wise ENGD RMS ≤ 1e-6 within {args.steps} steps: {m['abs_rms']:.2e}", m["abs_rms"] <= 1e-6)
    if ("kfac", tb) in med:
        k = med[("kfac", tb)]["abs_rms"]
        for name, factor in (("adam", 30), ("sgd", 5), ("lbfgs", 5)):
            if (name, tb) in med:
                o = med[(name, tb)]["abs_rms"]
                check(f"KFAC ≥ {factor}× below {name} at {tb}: {o / k:.1f}×", o / k >= factor)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
