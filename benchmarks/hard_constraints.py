"""Hard against soft conditions: specs/poisson2d_hard.py against specs/poisson2d.py (or --specs).

The same 2d Poisson problem, once with u = 0 on the boundary as a loss term (poisson2d: 900
interior and 120 boundary points) and once built into the network by the ansatz
u = x(1 − x)y(1 − y)·v (poisson2d_hard: the 900 interior points alone); with --specs
heat1d,heat1d_hard the 1+1d heat equation, its initial and boundary values a loss term or the
ansatz u = sin(πx) + t·x(1 − x)·v. Every optimizer runs each spec
with the 2-64-1 net and the training defaults for --steps steps on each seed; the script prints
the relative L2 and absolute RMS errors of u on the held-out points and the wall time, then the
medians over the seeds. Each row is appended to --results (JSON lines) when it finishes.

    python benchmarks/hard_constraints.py                       # about 10 minutes on 2 cores
    python benchmarks/hard_constraints.py --optimizers engd+ema=0 --seeds 0
    python benchmarks/hard_constraints.py --specs heat1d,heat1d_hard   # the same for 1+1d heat
    python benchmarks/hard_constraints.py --specs poisson2d_hard --mode laplacian --optimizers kfac,kfac-star
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
SPECS = ("poisson2d", "poisson2d_hard")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizers", default="kfac,kfac-star,engd,engd+ema=0,adam",
                        help="comma-separated; NAME+KEY=VALUE runs NAME with that setting (e.g. engd+ema=0)")
    parser.add_argument("--specs", default=",".join(SPECS), help="comma-separated shipped spec names")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--steps", type=int, default=1000, help="steps per run")
    parser.add_argument("--mode", default="auto", help="compile mode of every spec (auto, laplacian, collapsed, taylor)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting or hyperparameter for every run (repeatable)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "hard_constraints.jsonl"),
                        help="JSON-lines file the rows are appended to")
    args = parser.parse_args()
    sets = parse_sets(args.set)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.steps} steps, mode {args.mode}\n")
    print(f"{'spec':15s} {'optimizer':18s} {'seed':>4s} {'s':>6s} {'loss':>9s} {'rel L2':>9s} {'abs RMS':>9s}")
    problems = {name: pdec.load_spec(ROOT / "specs" / f"{name}.py") for name in args.specs.split(",")}
    summary = {}
    for name in args.optimizers.split(","):
        optimizer, _, variant = name.partition("+")
        extra = {**sets, **parse_sets([variant] if variant else [])}
        for spec, problem in problems.items():
            for seed in (int(s) for s in args.seeds.split(",")):
                compiled = pdec.compile(problem, write=False, mode=args.mode)
                run = pdec.train(compiled, optimizer, steps=args.steps, seed=seed, save=False, progress=False,
                                 **extra)
                f = run.final
                row = {"spec": spec, "optimizer": name, "seed": seed, "steps": run.steps, "time": run.elapsed,
                       "loss": f["loss"], "rel_l2": f["rel_l2"], "abs_rms": f["abs_rms"], "settings": extra,
                       "mode": compiled.plan.mode,
                       "date": time.strftime("%Y-%m-%d %H:%M")}
                with open(args.results, "a") as out:
                    out.write(json.dumps(row) + "\n")
                summary.setdefault((name, spec), []).append(row)
                print(f"{spec:15s} {name:18s} {seed:4d} {run.elapsed:6.1f} {row['loss']:9.2e} {row['rel_l2']:9.2e} "
                      f"{row['abs_rms']:9.2e}", flush=True)
    print(f"\nmedian over seeds {args.seeds}:")
    print(f"{'optimizer':18s} {'spec':15s} {'s':>6s} {'rel L2':>9s} {'abs RMS':>9s}")
    for (name, spec), rows in summary.items():
        med = {k: statistics.median(r[k] for r in rows) for k in ("time", "rel_l2", "abs_rms")}
        print(f"{name:18s} {spec:15s} {med['time']:6.1f} {med['rel_l2']:9.2e} {med['abs_rms']:9.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
