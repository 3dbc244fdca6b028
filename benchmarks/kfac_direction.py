"""What KFAC's direction looks like against the exact Gramian's, step by step: why a run stalls.

Trains a spec with KFAC (the 2-64-1 net, the training defaults, --set for hyperparameters) and
at the steps of --at prints, before that step:

    loss       the loss at the step's start
    |d|        the length of the step's direction d (KFAC's Δ plus the momentum term)
    α*         the step size the grid line search then picks along d (0: none)
    α_G        the exact damped Gramian's quadratic model's best step along d,
               −gᵀd / (dᵀ(G + λI)d), and pred. the decrease that model predicts there
    eig        the smallest eigenvalue of each layer's averaged factors A and B (the interior term's)

A line search that picks α* far below α_G while the model predicts a large decrease says that d
leaves the region where the Gauss–Newton model holds: its length comes from directions where the
factors are nearly singular. G is dense (D × D): for small nets only. The inspected steps are
KFAC.step spelled out without adaptive damping and without learned parameters' step, so specs
with learned parameters and --set adaptive_damping=true follow another path than pdec train.

    python benchmarks/kfac_direction.py --spec heat1d_hard --set ema=0.449649 --set init=identity
    python benchmarks/kfac_direction.py --spec heat1d_hard          # KFAC's defaults for one term
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import pdec
from pdec.curvature.gramian import dense_gramian
from pdec.curvature.layout import flatten
from pdec.optim import get_optimizer
from pdec.optim.line_search import grid_line_search
from pdec.train.config import parse_sets
from pdec.train.sampling import PointSampler

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="heat1d_hard", help="shipped spec name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--at", default="0,5,10,20,30,40,60,100", help="steps to inspect (comma-separated)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a KFAC hyperparameter")
    args = parser.parse_args()
    at = sorted(int(s) for s in args.at.split(","))
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / f"{args.spec}.py"), write=False)
    model = compiled.model
    cls = get_optimizer("kfac")
    hyper = {**cls.defaults_for(model), **parse_sets(args.set)}   # as pdec train resolves them
    torch.manual_seed(args.seed)   # as pdec.train initialises and samples
    for layer in model.layers:
        layer.reset_parameters()
    sampler = PointSampler(compiled.problem, 900, 120, args.seed)
    batch = sampler.batch
    opt = cls(model, **hyper)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {args.spec}, seed {args.seed}, KFAC "
          + ", ".join(f"{k} = {opt.hyper[k]}" for k in ("ema", "init", "damping", "momentum")) + "\n")
    print(f"{'step':>5s} {'loss':>9s} {'|d|':>9s} {'α*':>9s} {'α_G':>9s} {'pred.':>9s}  smallest eigenvalues "
          f"of A, B per layer")
    step = 0
    while step <= at[-1]:
        if step not in at:
            opt.step(batch)
            step += 1
            continue
        # KFAC.step's work, spelled out: the direction, the momentum, the line search
        loss, _, grad, delta = opt._direction(batch)
        if opt.previous is not None and opt.hyper["momentum"]:
            delta = [d + opt.hyper["momentum"] * p for d, p in zip(delta, opt.previous)]
        opt.previous = delta
        g, d = flatten(grad), flatten(delta)
        G = dense_gramian(model, batch)
        dGd = float(d @ G @ d) + opt.pre.damping * float(d @ d)
        alpha_model = -float(g @ d) / dGd
        eig = [(torch.linalg.eigvalsh(f.A)[0].item(), torch.linalg.eigvalsh(f.B)[0].item())
               for f in opt.pre.factors["interior"]]
        alpha, _ = grid_line_search(model, batch, delta, current=loss)
        print(f"{step:5d} {loss:9.2e} {d.norm():9.2e} {alpha:9.2e} {alpha_model:9.2e} "
              f"{0.5 * alpha_model * -float(g @ d):9.2e}  " + "  ".join(f"{a:.1e}, {b:.1e}" for a, b in eig),
              flush=True)
        step += 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
