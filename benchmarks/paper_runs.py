"""Rerun the paper's published KFAC and KFAC* runs with pdec, next to their logs.

Same data, initial weights, float32 targets, re-sampling and hyperparameters as the logged runs
(see tests/paper_runs.py; logs in tests/data/). Prints, at every logged step, the loss and the
absolute-RMS L2 error of pdec and of the paper's run, and the first step where the losses differ
by more than 1e-9 (relative). The two runs agree to round-off at first; the grid line search and
the tiny damping then amplify round-off, so after a few hundred steps they are two different
samples of the same process (tests/test_paper_runs.py checks the first steps).

With --time-budget the run stops after that many seconds of optimisation (evaluations excluded,
as in pdec.train) and the last line compares pdec's error with the paper's logged error at the
same time: the paper's table at 120 s, on this machine, from the paper's own start.

    python benchmarks/paper_runs.py                  # 2d Poisson, 1 000 steps each, about 1 minute
    python benchmarks/paper_runs.py --runs poisson2d-kfac --steps 2049
    python benchmarks/paper_runs.py --runs poisson5d-kfac-star --time-budget 120
    python benchmarks/paper_runs.py --runs poisson5d-kfac-star --steps 1000 --set first_lr=0
    python benchmarks/paper_runs.py --runs poisson2d-kfac --perturb 1e-15 --repeats 8
    python benchmarks/paper_runs.py --runs poisson2d-kfac --model-seeds 10

--model-seeds K reruns with the training script's model_seed 0 … K−1 instead of the logged 1: the
same procedure (its float32 initialisation, then its points from the same global stream), other
starts; it prints only the ends.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from paper_runs import RUNS, paper_log, paper_setup  # noqa: E402

from pdec.optim import get_optimizer  # noqa: E402
from pdec.train.allocator import keep_freed_memory  # noqa: E402


def rms_error(model, X: torch.Tensor) -> float:
    """Absolute RMS error sqrt(mean (u_θ − u*)²) at the points X (N, d)."""
    with torch.no_grad():
        return float((model(X) - model.exact_solution(X)).pow(2).mean().sqrt())


def rerun(name: str, steps: int, time_budget: float, overrides: dict | None = None,
          perturb: float = 0.0, perturb_seed: int = 0, verbose: bool = True, model_seed: int = 1
          ) -> tuple[int, float]:
    """Run the published run ``name`` for ``steps`` steps or ``time_budget`` seconds, printing
    pdec's loss and error next to the log's at every logged step (``verbose``); return the steps
    made and the final absolute-RMS error. ``overrides`` replace some of the run's
    hyperparameters (then the losses part at once; the start stays the paper's). ``perturb``
    multiplies every initial weight by 1 + perturb·u, u uniform on [−1, 1] (seeded by
    ``perturb_seed``): a round-off-sized change of the start, to see how far it moves the end.
    ``model_seed``: the training script's seed (the logs used 1; others draw other starts)."""
    run = RUNS[name]
    setup = paper_setup(run.problem, seed=model_seed, mode=run.mode)
    if perturb:
        g = torch.Generator().manual_seed(perturb_seed)
        with torch.no_grad():
            for p in setup.model.parameters():
                p.mul_(1 + perturb * (2 * torch.rand(p.shape, generator=g, dtype=p.dtype) - 1))
    hyper = {**run.hyper, **(overrides or {})}
    opt = get_optimizer(run.optimizer)(setup.model, **hyper)
    log = paper_log(name)
    logged = {step: (loss, l2) for step, loss, l2, _ in log}
    if verbose:
        print(f"\n{name}: {run.log.name}, {hyper}")
        print(f"{'step':>6s} {'loss pdec':>12s} {'loss paper':>12s} {'L2 pdec':>10s} {'L2 paper':>10s}")
    first, elapsed, step = None, 0.0, 0
    while (step < steps) if not time_budget else (elapsed < time_budget):
        t0 = time.perf_counter()
        loss = opt.step(setup.batch(step)).loss
        elapsed += time.perf_counter() - t0
        if step in logged and verbose:
            ref_loss, ref_l2 = logged[step]
            if first is None and abs(loss / ref_loss - 1) > 1e-9:
                first = step
            print(f"{step:6d} {loss:12.4e} {ref_loss:12.4e} {rms_error(setup.model, setup.X_eval):10.3e} "
                  f"{ref_l2:10.3e}", flush=True)
        step += 1
    final = rms_error(setup.model, setup.X_eval)
    if not verbose:
        return step, final
    print(f"{step} steps in {elapsed:.1f} s ({1e3 * elapsed / step:.1f} ms per step); losses first differ "
          f"by more than 1e-9 at step {first}")
    if time_budget:
        t_start = log[0][3]   # the log's clock starts before the first step; count from there
        ref_step, _, ref_l2, ref_t = min(log, key=lambda r: abs(r[3] - t_start - time_budget))
        print(f"at {time_budget:g} s: pdec step {step}, abs RMS {final:.3e}; "
              f"paper (logged at {ref_t - t_start:.1f} s) step {ref_step}, abs RMS {ref_l2:.3e}")
    return step, final


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="poisson2d-kfac,poisson2d-kfac-star",
                        help=f"comma-separated, of: {', '.join(RUNS)}")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--time-budget", type=float, default=0.0,
                        help="seconds of optimisation instead of --steps")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="replace one of the runs' hyperparameters (a number), e.g. first_lr=0")
    parser.add_argument("--perturb", type=float, default=0.0,
                        help="with --repeats: scale each initial weight by 1 + EPS·U(−1, 1)")
    parser.add_argument("--repeats", type=int, default=0,
                        help="rerun K times with perturbed starts (seeds 0..K-1); print only the ends")
    parser.add_argument("--model-seeds", type=int, default=0,
                        help="rerun from the script's model_seed 0..K-1 (other starts drawn its way); print the ends")
    args = parser.parse_args()
    if args.model_seeds and args.repeats:
        parser.error("--model-seeds and --repeats are separate studies; give one")
    if args.repeats and not args.perturb:
        parser.error("--repeats needs --perturb EPS (unperturbed reruns are identical)")
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        try:
            overrides[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=NUMBER")
    names = [n.strip() for n in args.runs.split(",")]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        parser.error(f"unknown run(s) {unknown}; choose from {', '.join(RUNS)}")
    keep_freed_memory()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.model_seeds:     # (label, rerun's arguments) of each start of the study, or none
        study = [(f"model_seed {k}", {"model_seed": k}) for k in range(args.model_seeds)]
        title = f"model_seed 0 … {args.model_seeds - 1}"
    else:
        study = [(f"perturbation seed {k}", {"perturb": args.perturb, "perturb_seed": k})
                 for k in range(args.repeats)]
        title = f"{args.repeats} starts perturbed by {args.perturb:g} (relative)"
    for name in names:
        if not study:
            rerun(name, args.steps, args.time_budget, overrides)
            continue
        print(f"\n{name}: {title}, {args.time_budget or args.steps:g} {'s' if args.time_budget else 'steps'} each")
        ends = []
        for label, start in study:
            steps, final = rerun(name, args.steps, args.time_budget, overrides, verbose=False, **start)
            ends.append(final)
            print(f"  {label}: {steps} steps, abs RMS {final:.3e}", flush=True)
        print(f"  median {statistics.median(ends):.3e}, range {min(ends):.3e} … {max(ends):.3e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
