"""Rerun the paper's published 2d Poisson KFAC and KFAC* runs with pdec, next to their logs.

Same data, initial weights, float32 targets and hyperparameters as the logged runs (see
tests/paper_runs.py; logs in tests/data/). Prints, at every logged step up to --steps, the loss
and the absolute-RMS L2 error of pdec and of the paper's run, and the first step where the losses
differ by more than 1e-9 (relative). The two runs agree to round-off at first; the grid line
search and the tiny damping then amplify round-off, so after a few hundred steps they are two
different samples of the same process (tests/test_paper_runs.py checks the first steps).

    python benchmarks/paper_runs.py                  # 1 000 steps each, about 1 minute on 2 cores
    python benchmarks/paper_runs.py --steps 2049 --optimizers kfac
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from paper_runs import RUNS, paper_log, paper_poisson2d  # noqa: E402

from pdec.optim import get_optimizer  # noqa: E402
from pdec.train.allocator import keep_freed_memory  # noqa: E402


def rms_error(model, X: torch.Tensor) -> float:
    """Absolute RMS error sqrt(mean (u_θ − u*)²) at the points X (N, 2)."""
    with torch.no_grad():
        return float((model(X) - model.exact_solution(X)).pow(2).mean().sqrt())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--optimizers", default="kfac,kfac-star")
    args = parser.parse_args()
    keep_freed_memory()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in args.optimizers.split(","):
        model, batch, X_eval = paper_poisson2d()
        hyper, log_path = RUNS[name]
        opt = get_optimizer(name)(model, **hyper)
        logged = {step: (loss, l2) for step, loss, l2, _ in paper_log(name)}
        print(f"\n{name}: {log_path.name}, {hyper}")
        print(f"{'step':>6s} {'loss pdec':>12s} {'loss paper':>12s} {'L2 pdec':>10s} {'L2 paper':>10s}")
        first = None
        t0 = time.perf_counter()
        for step in range(args.steps):
            loss = opt.step(batch).loss
            if step in logged:
                ref_loss, ref_l2 = logged[step]
                if first is None and abs(loss / ref_loss - 1) > 1e-9:
                    first = step
                print(f"{step:6d} {loss:12.4e} {ref_loss:12.4e} {rms_error(model, X_eval):10.3e} {ref_l2:10.3e}",
                      flush=True)
        print(f"{args.steps} steps in {time.perf_counter() - t0:.1f} s; losses first differ by more than "
              f"1e-9 at step {first}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
