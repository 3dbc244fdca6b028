"""Random hyperparameter search for one optimizer at a fixed step budget, on tuning seeds.

Draws --trials settings from the paper's search space of the optimizer (appendix A: damping
log-uniform on [1e-13, 1e-7], momentum and EMA uniform on [0, 0.99], identity or zero
initialisation), trains each for --steps steps on every tuning seed (--seeds), and appends one row
per trial to --results at once (an interrupted sweep keeps its trials; a rerun skips them). The
score of a trial is the median absolute-RMS error over the tuning seeds. At the end it prints the
best trials and, with --evaluate, reruns the best one on held-out seeds, so the figure it reports
does not come from the seeds it was chosen on. Trial -1 is the config's own setting (the
paper's best run), the baseline on the same seeds.

    python benchmarks/sweep.py                                  # KFAC, 2d Poisson, 1 000 steps
    python benchmarks/sweep.py --trials 40 --seeds 10,11,12 --evaluate 0,1,2
    python benchmarks/sweep.py --report                         # the table of a finished sweep
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from pathlib import Path

import torch

import pdec
from pdec.train.config import resolve_config

ROOT = Path(__file__).resolve().parents[1]

#: The paper's search spaces (appendix A.2): name -> (kind, low, high) or (choice, values).
SPACES = {
    "kfac": {"damping": ("log", 1e-13, 1e-7), "momentum": ("uniform", 0.0, 0.99),
             "ema": ("uniform", 0.0, 0.99), "init": ("choice", ["identity", "zero"])},
    "kfac-star": {"damping": ("log", 1e-13, 1e-7), "ema": ("uniform", 0.0, 0.99),
                  "init": ("choice", ["identity", "zero"])},
}


def draw(space: dict, rng: random.Random) -> dict:
    """One setting from ``space`` (the draws depend only on ``rng``'s state)."""
    out = {}
    for key, (kind, *args) in space.items():
        if kind == "log":
            out[key] = math.exp(rng.uniform(math.log(args[0]), math.log(args[1])))
        elif kind == "uniform":
            out[key] = rng.uniform(args[0], args[1])
        else:
            out[key] = rng.choice(args[0])
    return out


def run_seeds(compiled, args, hyper: dict, seeds: list[int]) -> list[float]:
    """Absolute-RMS error after args.steps steps for each seed (inf if the run diverged)."""
    sets = [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in hyper.items()]
    errors = []
    for seed in seeds:
        try:
            run = pdec.train(compiled, args.optimizer, config_file=args.config, steps=args.steps,
                             time_budget=0, seed=seed, save=False, progress=False, eval_every=args.steps,
                             sets=sets)
            errors.append(float(run.final["abs_rms"]))
        except pdec.TrainingDiverged:
            errors.append(math.inf)
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "poisson2d.py", help="spec file to tune on")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "poisson2d-257.toml",
                        help="settings of the runs (points, net); the trial's values override its table")
    parser.add_argument("--optimizer", choices=sorted(SPACES), default="kfac",
                        help="optimizer whose search space is drawn from")
    parser.add_argument("--steps", type=int, default=1000, help="steps of each run (default: %(default)s)")
    parser.add_argument("--trials", type=int, default=24, help="random settings to try (default: %(default)s)")
    parser.add_argument("--seeds", default="10,11,12", help="tuning seeds (comma-separated)")
    parser.add_argument("--sweep-seed", type=int, default=0, help="seed of the trial draws")
    parser.add_argument("--evaluate", default="", help="held-out seeds for the best trial, e.g. 0,1,2")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "sweep.jsonl",
                        help="JSON lines file each finished trial is appended to")
    parser.add_argument("--report", action="store_true", help="only print the table of --results")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    key = {"spec": args.spec.name, "config": args.config.name, "optimizer": args.optimizer,
           "steps": args.steps, "seeds": seeds, "sweep_seed": args.sweep_seed}

    def rows() -> list[dict]:
        if not args.results.exists():
            return []
        out = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
        return [r for r in out if all(r.get(k) == v for k, v in key.items())]

    cfg, _ = resolve_config({"optimizer": args.optimizer}, args.config)
    compiled = pdec.compile(pdec.load_spec(args.spec), hidden=cfg.hidden, activation=cfg.activation,
                            mode=cfg.mode, write=False)
    rng = random.Random(args.sweep_seed)
    done = {r["trial"] for r in rows() if r.get("kind") == "trial"}
    if not args.report:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        for trial in range(-1, args.trials):
            # trial -1: the config's own settings (the paper's best run), the baseline to beat
            hyper = {} if trial < 0 else draw(SPACES[args.optimizer], rng)  # trial i is fixed by i
            if trial in done:
                continue
            t0 = time.perf_counter()
            errors = run_seeds(compiled, args, hyper, seeds)
            row = {**key, "kind": "trial", "trial": trial, "hyper": hyper, "abs_rms": errors,
                   "median": statistics.median(errors), "seconds": time.perf_counter() - t0,
                   "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__}
            with args.results.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"trial {trial:3d}: median {row['median']:.2e}  {_fmt(hyper)}  ({row['seconds']:.0f} s)",
                  flush=True)

    trials = sorted((r for r in rows() if r.get("kind") == "trial"), key=lambda r: r["median"])
    if not trials:
        print("no trials in", args.results)
        return 1
    print(f"\n{len(trials)} trials of {args.optimizer}, {args.steps} steps, tuning seeds {seeds}; best 5:")
    for r in trials[:5]:
        errs = ", ".join(f"{e:.2e}" for e in r["abs_rms"])
        print(f"  trial {r['trial']:3d}: median {r['median']:.2e} ({errs})  {_fmt(r['hyper'])}")
    if args.evaluate:
        best = trials[0]
        held_out = [int(s) for s in args.evaluate.split(",")]
        errors = run_seeds(compiled, args, best["hyper"], held_out)
        row = {**key, "kind": "evaluation", "trial": best["trial"], "hyper": best["hyper"],
               "held_out": held_out, "abs_rms": errors, "median": statistics.median(errors),
               "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__}
        with args.results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        errs = ", ".join(f"{e:.2e}" for e in errors)
        print(f"\nbest trial {best['trial']} on held-out seeds {held_out}: median {row['median']:.2e} ({errs})")
    return 0


def _fmt(hyper: dict) -> str:
    if not hyper:
        return "(the config's settings)"
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in hyper.items())


if __name__ == "__main__":
    raise SystemExit(main())
