"""An inverse problem: specs/heat1d_inverse.py's unknown diffusivity κ, fitted by each optimizer.

Every optimizer that trains learned parameters runs the shipped spec (2-64-1 net, the training
defaults, training from κ = 1) for --steps steps on each seed; the script prints the final κ,
its error |κ − 1/4|, the relative L2 error of u against u* and the wall time, then the median
over the seeds per optimizer. Each row is appended to --results (JSON lines) when it finishes.

    python benchmarks/inverse.py                  # the README's runs of it took about 9 minutes in all
    python benchmarks/inverse.py --optimizers hessian-free --steps 300   # about 8 minutes (2 cores)
    python benchmarks/inverse.py --optimizers kfac+adaptive_damping=true --seeds 0 --steps 300
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import pdec
from pdec.train.config import parse_sets

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizers",
                        default="kfac,kfac+adaptive_damping=true,kfac-star,engd,engd+damping=1e-6,"
                                "engd-layerwise,lbfgs,adam",
                        help="comma-separated; NAME+KEY=VALUE runs NAME with that setting (e.g. "
                             "kfac+adaptive_damping=true)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--steps", type=int, default=1000, help="steps per run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting or hyperparameter for every run (repeatable)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "inverse.jsonl"),
                        help="JSON-lines file the rows are appended to")
    args = parser.parse_args()
    sets = parse_sets(args.set)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"specs/heat1d_inverse.py (κ* = 1/4, from κ = 1), {args.steps} steps\n")
    print(f"{'optimizer':24s} {'seed':>4s} {'s':>6s} {'κ':>9s} {'|κ − κ*|':>9s} {'rel L2':>9s}")
    problem = pdec.load_spec(ROOT / "specs" / "heat1d_inverse.py")
    summary = {}
    for name in args.optimizers.split(","):
        optimizer, _, variant = name.partition("+")
        extra = {**sets, **parse_sets([variant] if variant else [])}
        for seed in (int(s) for s in args.seeds.split(",")):
            compiled = pdec.compile(problem, write=False)
            run = pdec.train(compiled, optimizer, steps=args.steps, seed=seed, save=False, progress=False, **extra)
            f = run.final
            row = {"optimizer": name, "seed": seed, "steps": run.steps, "time": run.elapsed,
                   "kappa": f["learned_kappa"], "kappa_error": f["learned_err_kappa"], "rel_l2": f["rel_l2"],
                   "settings": extra, "date": time.strftime("%Y-%m-%d %H:%M")}
            with open(args.results, "a") as out:
                out.write(json.dumps(row) + "\n")
            summary.setdefault(name, []).append(row)
            print(f"{name:24s} {seed:4d} {run.elapsed:6.1f} {row['kappa']:9.6f} {row['kappa_error']:9.2e} "
                  f"{row['rel_l2']:9.2e}", flush=True)
    print(f"\nmedian over seeds {args.seeds}:")
    print(f"{'optimizer':24s} {'s':>6s} {'|κ − κ*|':>9s} {'rel L2':>9s}")
    for name, rows in summary.items():
        med = {k: statistics.median(r[k] for r in rows) for k in ("time", "kappa_error", "rel_l2")}
        print(f"{name:24s} {med['time']:6.1f} {med['kappa_error']:9.2e} {med['rel_l2']:9.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
