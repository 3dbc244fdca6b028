"""What a periodic condition does: specs/advection1d.py trained with and without it.

The exact solution e^{−νt} sin(x − ct) leaves the box at x = 2π and comes back in at x = 0, so only
the pairing of the two faces (``Condition([u, u.diff(x)], on=Periodic(x))``) holds the solution
there. For each optimizer the script trains the spec as shipped and the same problem without its
periodic condition (the initial condition alone), with the spec's defaults (2-64-1 net, float64,
seed 0), and prints per run: steps, seconds, relative L2 and absolute RMS error on the held-out
points, and the largest |u(t, 0) − u(t, 2π)| of the trained net on 101 times in [0, 1]. Each row is
appended to --results (JSON lines) when it finishes.

    python benchmarks/periodic.py                               # about 2 minutes on 2 cores
    python benchmarks/periodic.py --optimizers kfac --steps 300
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

import pdec
from pdec.runtime import GeneratedPINN

ROOT = Path(__file__).resolve().parents[1]


def variants() -> dict[str, pdec.Problem]:
    """'periodic': the spec as shipped; 'initial only': without its periodic condition."""
    problem = pdec.load_spec(ROOT / "specs" / "advection1d.py")
    alone = dataclasses.replace(problem, conditions={"initial": problem.conditions["initial"]},
                                name="advection1d_initial_only", source=None)
    return {"periodic": problem, "initial only": alone}


def face_gap(model: GeneratedPINN, problem: pdec.Problem) -> float:
    """max over 101 times t of |u(t, 0) − u(t, 2π)| (the x bounds of the spec's box)."""
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    lo, hi = problem.domain.interval(problem.variables[1])
    with torch.no_grad():
        left = model(torch.stack([t, torch.full_like(t, lo)], 1))
        right = model(torch.stack([t, torch.full_like(t, hi)], 1))
    return float((left - right).abs().max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizers", default="engd,kfac,kfac-star,adam", help="comma-separated")
    parser.add_argument("--steps", type=int, default=1000, help="steps per run")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "periodic.jsonl"),
                        help="JSON-lines file the rows are appended to")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"specs/advection1d.py, {args.steps} steps, seed 0\n")
    print(f"{'optimizer':12s} {'conditions':>13s} {'steps':>6s} {'s':>7s} {'rel L2':>9s} {'abs RMS':>9s} "
          f"{'max|u(t,0)-u(t,2π)|':>20s}")
    problems = variants()
    for optimizer in args.optimizers.split(","):
        for label, problem in problems.items():
            compiled = pdec.compile(problem, write=False)
            run = pdec.train(compiled, optimizer, steps=args.steps, save=False, progress=False)
            row = {"optimizer": optimizer, "conditions": label, "steps": run.steps, "time": run.elapsed,
                   "rel_l2": run.final["rel_l2"], "abs_rms": run.final["abs_rms"],
                   "face_gap": face_gap(compiled.model, problem), "date": time.strftime("%Y-%m-%d %H:%M")}
            with open(args.results, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{optimizer:12s} {label:>13s} {run.steps:6d} {run.elapsed:7.1f} {row['rel_l2']:9.2e} "
                  f"{row['abs_rms']:9.2e} {row['face_gap']:20.2e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
