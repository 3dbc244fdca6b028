"""How much data a data condition needs: specs/heat1d_data.py with N measurements and noise σ.

The spec's problem (1+1d heat, zero boundary values, initial state unknown) is trained with its
measurements replaced by N points drawn uniformly (torch generator seeded with 0) and values
u*(t, x) + σ·ε, ε standard normal; a fifth of them are held out (``Data(..., holdout=0.2)``). For
each (N, σ) and optimizer the script prints the relative L2 error against u* on the held-out
evaluation points and the RMS misfit on the held-out observations, which cannot fall below σ when
the fit is exact. Each row is appended to --results (JSON lines) when it finishes.

    python benchmarks/data.py                                    # about 4 minutes on 2 cores
    python benchmarks/data.py --counts 100 --noises 0.001 --optimizers kfac --steps 300
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

import pdec
from pdec import Condition, Data

ROOT = Path(__file__).resolve().parents[1]


def variant(problem: pdec.Problem, n: int, sigma: float) -> pdec.Problem:
    """The spec's problem with n measurements of noise σ (a fifth held out) in place of its own."""
    g = torch.Generator().manual_seed(0)
    t, x = torch.rand(2, n, generator=g, dtype=torch.float64)
    values = torch.exp(-torch.pi**2 * t / 4) * torch.sin(torch.pi * x) + sigma * torch.randn(n, generator=g,
                                                                                           dtype=torch.float64)
    u = problem.unknowns[0]
    data = Data({v: c for v, c in zip(problem.variables, (t, x))}, values, f"N = {n}, σ = {sigma:g}",
                holdout=0.2)
    return dataclasses.replace(problem, conditions={**problem.conditions, "measured": Condition(u, on=data)},
                               name=f"heat1d_data_{n}", source=None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="25,100,400", help="numbers of measurements N, comma-separated")
    parser.add_argument("--noises", default="0,0.001,0.01", help="noise levels σ, comma-separated")
    parser.add_argument("--optimizers", default="engd,kfac", help="comma-separated (ENGD runs with ema=0)")
    parser.add_argument("--steps", type=int, default=500, help="steps per run")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "data.jsonl"),
                        help="JSON-lines file the rows are appended to")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"specs/heat1d_data.py with N measurements of noise σ (a fifth held out), {args.steps} steps, seed 0\n")
    print(f"{'optimizer':10s} {'N':>5s} {'σ':>7s} {'s':>6s} {'rel L2':>9s} {'held-out RMS':>13s}")
    problem = pdec.load_spec(ROOT / "specs" / "heat1d_data.py")
    for optimizer in args.optimizers.split(","):
        extra = {"ema": 0.0} if optimizer in ("engd", "engd-layerwise") else {}
        for n in (int(c) for c in args.counts.split(",")):
            for sigma in (float(s) for s in args.noises.split(",")):
                compiled = pdec.compile(variant(problem, n, sigma), write=False)
                run = pdec.train(compiled, optimizer, steps=args.steps, save=False, progress=False, **extra)
                row = {"optimizer": optimizer, **extra, "N": n, "sigma": sigma, "steps": run.steps,
                       "time": run.elapsed, "rel_l2": run.final["rel_l2"],
                       "heldout_rms": run.final["heldout_rms_measured"], "date": time.strftime("%Y-%m-%d %H:%M")}
                with open(args.results, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{optimizer:10s} {n:5d} {sigma:7g} {run.elapsed:6.1f} {row['rel_l2']:9.2e} "
                      f"{row['heldout_rms']:13.2e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
