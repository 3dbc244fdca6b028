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
    # KFAC's defaults for a loss of one term against the paper's, over widths and point counts
    python benchmarks/hard_constraints.py --specs poisson2d_hard,heat1d_hard --steps 300 --seeds 0,1 \
        --optimizers kfac+ema=0.449649+init=identity,kfac --hidden 16,32,64 --n-interior 200,900
"""

from __future__ import annotations

import argparse
import json
import re
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
                        help="comma-separated; NAME+KEY=VALUE[+KEY=VALUE…] runs NAME with those settings "
                             "(e.g. engd+ema=0)")
    parser.add_argument("--specs", default=",".join(SPECS), help="comma-separated shipped spec names")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--steps", type=int, default=1000, help="steps per run")
    parser.add_argument("--hidden", default="64", help="comma-separated widths of the one hidden layer, each a run")
    parser.add_argument("--n-interior", default="900", help="comma-separated interior point counts, each a run")
    parser.add_argument("--mode", default="auto", help="compile mode of every spec (auto, laplacian, collapsed, taylor)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting or hyperparameter for every run (repeatable)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "hard_constraints.jsonl"),
                        help="JSON-lines file the rows are appended to")
    args = parser.parse_args()
    sets = parse_sets(args.set)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.steps} steps, mode {args.mode}\n")
    widths = [int(w) for w in args.hidden.split(",")]
    counts = [int(n) for n in args.n_interior.split(",")]
    print(f"{'spec':15s} {'optimizer':34s} {'h':>3s} {'N':>5s} {'seed':>4s} {'s':>6s} {'loss':>9s} {'rel L2':>9s} "
          f"{'abs RMS':>9s}")
    problems = {name: pdec.load_spec(ROOT / "specs" / f"{name}.py") for name in args.specs.split(",")}
    summary = {}
    for name in args.optimizers.split(","):
        optimizer, *variant = re.split(r"\+(?=\w+=)", name)   # kfac+damping=1e+6: one setting
        extra = {**sets, **parse_sets(variant)}
        for spec, problem in problems.items():
            for width in widths:
                compiled = pdec.compile(problem, write=False, mode=args.mode, hidden=(width,))
                for n in counts:
                    for seed in (int(s) for s in args.seeds.split(",")):
                        run = pdec.train(compiled, optimizer, steps=args.steps, seed=seed, save=False,
                                         progress=False, **{"n_interior": n, **extra})
                        f = run.final
                        row = {"spec": spec, "optimizer": name, "seed": seed, "steps": run.steps, "time": run.elapsed,
                               "loss": f["loss"], "rel_l2": f["rel_l2"], "abs_rms": f["abs_rms"], "settings": extra,
                               "hyperparameters": run.hyper, "hidden": width, "n_interior": n,
                               "mode": compiled.plan.mode, "date": time.strftime("%Y-%m-%d %H:%M")}
                        with open(args.results, "a") as out:
                            out.write(json.dumps(row) + "\n")
                        summary.setdefault((name, spec, width, n), []).append(row)
                        print(f"{spec:15s} {name:34s} {width:3d} {n:5d} {seed:4d} {run.elapsed:6.1f} {row['loss']:9.2e} "
                              f"{row['rel_l2']:9.2e} {row['abs_rms']:9.2e}", flush=True)
    print(f"\nmedian over seeds {args.seeds}:")
    print(f"{'optimizer':34s} {'spec':15s} {'h':>3s} {'N':>5s} {'s':>6s} {'rel L2':>9s} {'abs RMS':>9s}")
    for (name, spec, width, n), rows in summary.items():
        med = {k: statistics.median(r[k] for r in rows) for k in ("time", "rel_l2", "abs_rms")}
        print(f"{name:34s} {spec:15s} {width:3d} {n:5d} {med['time']:6.1f} {med['rel_l2']:9.2e} {med['abs_rms']:9.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
