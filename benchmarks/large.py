"""The paper's large Poisson problems on this CPU at small batches: KFAC's cost per step next to Adam's.

    10d Poisson,  10-256-256-128-128-1  (D =   118 145), configs/poisson10d-118145.toml
    100d Poisson, 100-768-768-512-512-1 (D = 1 325 057), configs/poisson100d-1325057.toml

The configs hold the paper's hyperparameters; here the batches are made small (--n-interior,
--n-condition per problem, fixed points) so that a step takes seconds on 2 cores. Each
(problem, optimizer) runs in its own process, so its peak resident memory (ru_maxrss) is its
own; pdec's memory estimate for the run is printed beside it. Printed per problem: ms per step of
KFAC and of Adam, their ratio (same invocation, same machine), loss before and after, peak memory.
Rows are appended to --results.

    python benchmarks/large.py                       # about 4 minutes on 2 cores
    python benchmarks/large.py --problem poisson10d --kfac-steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = {  # name -> (spec, config, interior points, condition points)
    "poisson10d": ("specs/poisson10d.py", "configs/poisson10d-118145.toml", 256, 64),
    "poisson100d": ("specs/poisson100d.py", "configs/poisson100d-1325057.toml", 32, 32),
}


def one(problem: str, optimizer: str, steps: int, n_interior: int, n_condition: int) -> dict:
    """Train one (problem, optimizer) for ``steps`` steps in this process; return its row."""
    import torch

    import pdec
    from pdec.train.config import resolve_config

    spec, config, _, _ = PROBLEMS[problem]
    settings = dict(optimizer=optimizer, steps=steps, seed=0, n_interior=n_interior, n_condition=n_condition,
                    resample_every=0, n_eval=2000, eval_every=steps, progress=False)
    cfg, hyper = resolve_config(settings, ROOT / config)
    compiled = pdec.compile(pdec.load_spec(ROOT / spec), hidden=cfg.hidden, write=False)
    run = pdec.train(compiled, config_file=ROOT / config, save=False, **settings)
    return {"problem": problem, "optimizer": optimizer, "D": sum(p.numel() for p in compiled.model.parameters()),
            "S": compiled.plan.S, "steps": run.steps, "ms_per_step": 1e3 * run.elapsed / max(run.steps, 1),
            "loss_start": run.history[0]["loss"], "loss_end": run.final["loss"], "rel_l2": run.final.get("rel_l2"),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "estimate_gib": run.memory.total / 2**30, "n_interior": n_interior, "n_condition": n_condition,
            "hidden": list(cfg.hidden), "threads": torch.get_num_threads(), "status": run.status}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="poisson10d,poisson100d",
                        help="comma-separated problems (default: %(default)s)")
    parser.add_argument("--kfac-steps", type=int, default=5, help="KFAC steps per problem (default: %(default)s)")
    parser.add_argument("--adam-steps", type=int, default=50, help="Adam steps per problem (default: %(default)s)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "large.jsonl",
                        help="JSON lines file each finished row is appended to")
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)  # problem optimizer steps n_int n_cond
    args = parser.parse_args()
    if args.one:
        p, o, s, ni, nc = args.one
        print(json.dumps(one(p, o, int(s), int(ni), int(nc))))
        return 0

    stamp = time.strftime("%Y-%m-%d %H:%M")
    rows = {}
    for problem in [p.strip() for p in args.problem.split(",") if p.strip()]:
        _, _, ni, nc = PROBLEMS[problem]
        for optimizer, steps in (("kfac", args.kfac_steps), ("adam", args.adam_steps)):
            print(f"{problem} {optimizer}: {steps} steps, {ni} + {nc} points ...", flush=True)
            r = subprocess.run([sys.executable, __file__, "--one", problem, optimizer, str(steps), str(ni), str(nc)],
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if r.returncode != 0:
                print(r.stderr[-3000:])
                return 1
            row = json.loads(r.stdout.strip().splitlines()[-1])
            row.update(date=stamp, machine=f"{platform.machine()}, {os.cpu_count()} cores",
                       command=" ".join(sys.argv))
            rows[problem, optimizer] = row
            with args.results.open("a") as f:
                f.write(json.dumps(row) + "\n")

    print(f"\nKFAC and Adam per step on CPU ({stamp}, {os.cpu_count()} cores, float64, fixed small batches)\n")
    print(f"{'problem':12s} {'D':>9s} {'S':>4s} {'points':>9s} {'optimizer':9s} {'steps':>5s} {'ms/step':>9s} "
          f"{'loss start -> end':>22s} {'peak RSS':>9s} {'estimate':>9s}")
    for (problem, optimizer), row in rows.items():
        print(f"{problem:12s} {row['D']:9d} {row['S']:4d} {row['n_interior']:4d}+{row['n_condition']:<4d} "
              f"{optimizer:9s} {row['steps']:5d} {row['ms_per_step']:9.1f} "
              f"{row['loss_start']:10.3e} -> {row['loss_end']:9.3e} {row['peak_rss_gib']:7.2f} G "
              f"{row['estimate_gib']:7.2f} G")
    for problem in dict.fromkeys(p for p, _ in rows):
        if (problem, "kfac") in rows and (problem, "adam") in rows:
            k, a = rows[problem, "kfac"], rows[problem, "adam"]
            print(f"{problem}: one KFAC step costs {k['ms_per_step'] / a['ms_per_step']:.1f} Adam steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
