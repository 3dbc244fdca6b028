"""Where a KFAC step's time goes: the curvature pass, the factor inversion, the 31-point line search.

2d Poisson (2-64-1, 900 + 120 points) and 5d Poisson (5-64-1, 3 000 + 500 points), float64,
KFAC's default settings, after 3 warm-up steps (--problems adds 4+1d heat, 5-64-1, 3 000 + 500,
and poisson2d_hard, 2d Poisson with its boundary in an ansatz, 2-64-1, 900 points; --modes times
each problem with several compile modes, one after the other in one process). Each part is timed
on its own (median of --repeats), next to whole steps:

    step          KFAC.step: curvature pass, EMA, inversion, preconditioning, momentum, line search
    curvature     curvature_pass: forward with stacks, backward of Σ_n r_n, factors, gradient
    inversion     the factored inverse of every layer's damped Kronecker sum (eigendecompositions)
    line search   the 31 trial losses, in the chunked batched passes grid_line_search makes

    python benchmarks/kfac_step.py            # about 1 minute on 2 cores
    python benchmarks/kfac_step.py --chunk-mb 16,64,256,1024   # line search per chunk bound
    python benchmarks/kfac_step.py --compare-tanh   # runtime.tanh against torch.tanh
    python benchmarks/kfac_step.py --problems heat4d --modes auto,laplacian   # the two heat stacks

With --chunk-mb, the line search alone is timed at each ``max_chunk_mb`` (the fastest of
--repeats rounds, the bounds interleaved within each round so that drifts in machine speed hit
every bound alike); the default bound is ``pdec.optim.line_search.CHUNK_MB``. With
--compare-tanh, the same for the ``tanh`` the generated module calls (pdec.runtime.tanh, 2σ(2z) − 1
without autograd on a CPU in float64) against torch.tanh.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import pdec
from pdec.curvature import curvature_pass, layer_matrices
from pdec.optim import get_optimizer
from pdec.optim.line_search import GRID, grid_line_search
from pdec.runtime import tanh as runtime_tanh
from pdec.train.allocator import keep_freed_memory
from pdec.train.sampling import PointSampler

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = {"poisson2d": (900, 120), "poisson5d": (3000, 500), "heat4d": (3000, 500),
            "poisson2d_hard": (900, 0)}   # no condition: its boundary is in the ansatz


def timed(fn, repeats: int) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` calls after one untimed call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed repetitions per part; medians are printed")
    parser.add_argument("--chunk-mb", default="", help="comma-separated max_chunk_mb values to compare")
    parser.add_argument("--compare-tanh", action="store_true",
                        help="line search with pdec.runtime.tanh against torch.tanh")
    parser.add_argument("--problems", default="poisson2d,poisson5d",
                        help=f"comma-separated, of {', '.join(PROBLEMS)} (main table only)")
    parser.add_argument("--modes", default="auto", help="comma-separated compile modes (main table only)")
    args = parser.parse_args()
    problems = args.problems.split(",")
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        parser.error(f"unknown problem(s) {', '.join(unknown)}; choose from {', '.join(PROBLEMS)}")
    if args.chunk_mb:
        variants = {f"{float(b):g} MiB": {"max_chunk_mb": float(b), "tanh": runtime_tanh}
                    for b in args.chunk_mb.split(",")}
        return compare_line_search(variants, args.repeats, "per chunk bound")
    if args.compare_tanh:
        variants = {"runtime.tanh": {"max_chunk_mb": None, "tanh": runtime_tanh},
                    "torch.tanh": {"max_chunk_mb": None, "tanh": torch.tanh}}
        return compare_line_search(variants, args.repeats, "tanh as the generated code calls it "
                                   "(2σ(2z) − 1 without autograd) against torch.tanh")
    keep_freed_memory()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.repeats} (ms)\n")
    print(f"{'problem':14s} {'mode':>10s} {'S':>3s} {'points':>10s} {'step':>8s} {'curvature':>10s} "
          f"{'inversion':>10s} {'line search':>12s}")
    for name, mode in ((p, m) for p in problems for m in args.modes.split(",")):
        ni, nc = PROBLEMS[name]
        compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / f"{name}.py"), hidden=(64,), mode=mode,
                                write=False, seed=0)
        model = compiled.model
        batch = PointSampler(compiled.problem, ni, nc, seed=0).batch
        kfac = get_optimizer("kfac")
        opt = kfac(model, **kfac.defaults_for(model))   # as pdec train: its defaults for a loss of one term
        for _ in range(3):
            opt.step(batch)
        direction = [1e-3 * torch.randn_like(M) for M in layer_matrices(model)]
        base = [M.detach().clone() for M in layer_matrices(model)]

        def restore():
            with torch.no_grad():
                for layer, W in zip(model.layers, base):
                    layer.weight.copy_(W[:, :-1])
                    layer.bias.copy_(W[:, -1])

        def line_search():
            grid_line_search(model, batch, direction)
            restore()

        def inversion():
            opt.pre._inverses = None
            opt.pre.inverses()

        t_curv = timed(lambda: curvature_pass(model, batch), args.repeats)
        t_inv = timed(inversion, args.repeats)
        t_ls = timed(line_search, args.repeats)
        t_step = timed(lambda: opt.step(batch), args.repeats)
        print(f"{name:14s} {compiled.plan.mode:>10s} {compiled.plan.S:3d} {ni:5d}+{nc:<4d} {t_step:8.1f} "
              f"{t_curv:10.1f} {t_inv:10.1f} {t_ls:12.1f}", flush=True)
    print(f"\n(line search: {len(GRID)} trial losses, forward only)")
    return 0


def compare_line_search(variants: dict[str, dict], repeats: int, title: str) -> int:
    """Line-search time per variant: min over ``repeats`` interleaved rounds (ms).

    A variant is ``{"max_chunk_mb": bound, "tanh": function}``: the chunk bound of the batched
    passes, and the ``tanh`` the generated module calls (pdec.runtime.tanh or torch.tanh).
    """
    keep_freed_memory()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"line search, {title}, fastest of {repeats} interleaved rounds (ms)\n")
    print(f"{'problem':10s} " + " ".join(f"{label:>12s}" for label in variants))
    for name, (ni, nc) in PROBLEMS.items():
        compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / f"{name}.py"), hidden=(64,), write=False, seed=0)
        model = compiled.model
        module = sys.modules[type(model).__module__]
        batch = PointSampler(compiled.problem, ni, nc, seed=0).batch
        direction = [1e-3 * torch.randn_like(M) for M in layer_matrices(model)]
        base = [M.detach().clone() for M in layer_matrices(model)]

        def once(variant: dict) -> float:
            module.tanh = variant["tanh"]
            t0 = time.perf_counter()
            grid_line_search(model, batch, direction, max_chunk_mb=variant["max_chunk_mb"])
            elapsed = time.perf_counter() - t0
            with torch.no_grad():
                for layer, W in zip(model.layers, base):
                    layer.weight.copy_(W[:, :-1])
                    layer.bias.copy_(W[:, -1])
            return elapsed

        for v in variants.values():
            once(v)
        best = {k: once(v) for k, v in variants.items()}
        for _ in range(repeats - 1):
            for k, v in variants.items():
                best[k] = min(best[k], once(v))
        module.tanh = runtime_tanh
        print(f"{name:10s} " + " ".join(f"{1e3 * best[k]:12.1f}" for k in variants))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
