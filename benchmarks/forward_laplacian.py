"""Operator benchmark: pdec's generated forward-Laplacian module vs. the torch.func Hessian trace.

What it measures
    For the Poisson problem -Δu = f on [0, 1]^D_in, pdec plans the interior residual in
    "laplacian" mode: one forward pass propagates the stack (value, D_in gradient directions,
    Laplacian), S = D_in + 2 columns. This script times that pass
    (``model.propagate("interior", X, keep=False).outputs[-1][:, S-1, 0]`` under
    ``torch.no_grad()``) against
    the standard automatic-differentiation baseline: the trace of the Hessian from
    ``torch.func.vmap(torch.func.hessian(f))`` on the single-sample function
    ``f(x) = model.forward(x)``, for the same weights and points.

    Network: MLP D_in -> 768-768-512-512 -> 1 with tanh, float64 (the paper's setting); only
    the Laplacian is computed (no parameter gradients). For every D_in, both methods are
    first checked to agree to relative 1e-8 (max-norm) on a subset of the points; the
    full-batch results of the timed runs are compared again afterwards.

    ``keep=False`` frees each layer's stacks once the next is computed (what evaluating an
    operator needs). ``--pdec-pass keep`` instead keeps every layer's input and output stack,
    as training does for the Kronecker factors, so its peak memory grows with depth.

How it measures
    Every (method, D_in) measurement runs in a fresh Python subprocess (this script
    re-invoked with a hidden worker flag) that loads the generated module, builds the model
    and the inputs, evaluates the method once on 2 points (so that lazily loaded library code
    and thread pools count as setup), then records its current RSS. Peak memory is the increase of
    ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` over that RSS, so import and setup costs
    cancel. Time is the median of at least ``--repeats`` runs (``time.perf_counter``) after
    one warm-up run; runs much shorter than ``--min-time`` are repeated more (at most 50).
    Both methods use ``torch.set_num_threads(<usable cores>)``.

Targets (from the issue; the paper's implementation reached 2.0x and 0.52x at N = 1024):
    at D_in = 100, pdec is >= 2x faster and uses <= 0.6x the peak memory of torch.func.

Run it (from the repository root; about 3 minutes on 2 CPU cores with the defaults,
N = 512; timings are noisy when other processes share the cores):
    .venv/bin/python benchmarks/forward_laplacian.py
    .venv/bin/python benchmarks/forward_laplacian.py --pdec-pass keep
    .venv/bin/python benchmarks/forward_laplacian.py --dims 1,10,100 --batch 1024 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HIDDEN = (768, 768, 512, 512)
SPEED_TARGET = 2.0  # torch.func time / pdec time, at least
MEMORY_TARGET = 0.6  # pdec peak / torch.func peak, at most
TARGET_DIM = 100
RTOL = 1e-8
MAX_REPEATS = 50
CHECK_POINTS = 64  # points of the agreement check that precedes the timing
WORKER_FLAG = "--_worker"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- problem and model

def poisson_problem(d: int):
    """-Δu = f on [0, 1]^d (u = 0 on the boundary): the interior plan is a forward Laplacian."""
    import sympy as sp

    from pdec import Box, Boundary, Condition, Problem

    xs = sp.symbols(f"x1:{d + 1}")
    u = sp.Function("u")(*xs)
    return Problem(name=f"poisson{d}", domain=Box({x: (0, 1) for x in xs}), unknowns=[u],
                   interior=-sum(u.diff(x, 2) for x in xs),
                   conditions={"boundary": Condition(u, on=Boundary())})


def write_module(d: int, hidden, directory: Path) -> Path:
    """Generate the module for dimension d into ``directory``; check the plan's last column."""
    from pdec.compiler import generate_source

    plan, source = generate_source(poisson_problem(d), hidden=hidden, mode="auto")
    columns = plan.interior.columns
    if plan.interior.mode != "laplacian" or len(columns) != d + 2 or columns[-1].kind != "channel":
        raise RuntimeError(f"unexpected interior plan for d={d}: mode {plan.interior.mode}, "
                           f"columns {[c.label for c in columns]}")
    path = directory / f"poisson{d}.py"
    path.write_text(source)
    return path


def build(module_path: str, d: int, n: int, hidden, seed: int):
    """Same weights and points in every process: seeded init, seeded uniform points."""
    import torch

    from pdec.compiler import load_generated

    cls = load_generated(module_path)
    torch.manual_seed(seed)
    model = cls(hidden=tuple(hidden), dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed + 1)
    X = torch.rand(n, d, generator=gen, dtype=torch.float64)
    return model, X


def laplacian_fn(method: str, model):
    """X (N, d) -> Laplacian of the network output (N,), no parameter gradients."""
    import torch

    if method in ("pdec", "pdec-keep"):
        keep = method == "pdec-keep"

        def lap(X):
            with torch.no_grad():
                out = model.propagate("interior", X, keep=keep).outputs[-1]  # (N, S, 1)
                return out[:, -1, 0]  # column S-1: L0 h = Σ_i ∂_ii h
        return lap

    if method == "torch.func":
        def single(x):  # x (d,) -> scalar
            return model.forward(x[None])[0, 0]

        batched_hessian = torch.func.vmap(torch.func.hessian(single))

        def lap(X):
            with torch.no_grad():
                return batched_hessian(X).diagonal(dim1=-2, dim2=-1).sum(-1)
        return lap

    raise ValueError(method)


def relative_error(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


# --------------------------------------------------------------------------- workers
#
# The parent process never imports torch, SymPy or pdec: a child's ru_maxrss starts at the RSS
# its parent had when it forked, so a heavy parent would mask the children's peaks.

def current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def prepare(spec: dict) -> dict:
    """Generate the module for D_in and check both methods agree on a subset of the points."""
    import torch

    torch.set_num_threads(spec["threads"])
    module = write_module(spec["d"], spec["hidden"], Path(spec["dir"]))
    model, X = build(str(module), spec["d"], spec["batch"], spec["hidden"], spec["seed"])
    Xc = X[:CHECK_POINTS]
    err = relative_error(laplacian_fn("pdec", model)(Xc), laplacian_fn("torch.func", model)(Xc))
    assert err <= RTOL, f"d={spec['d']}: pdec and torch.func Laplacians differ (relative {err:.2e})"
    return {"module": str(module), "err": err}


def measure(spec: dict) -> dict:
    """One (method, D_in) measurement; this process is fresh."""
    import gc
    import resource

    import torch
    import torch.func  # noqa: F401  (import cost belongs to setup, for both methods)

    torch.set_num_threads(spec["threads"])
    model, X = build(spec["module"], spec["d"], spec["batch"], spec["hidden"], spec["seed"])
    lap = laplacian_fn(spec["method"], model)
    lap(X[:2])  # touch the code paths (lazily paged-in library code, thread pools) before rss0
    gc.collect()
    rss0 = current_rss_bytes()
    maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    t0 = time.perf_counter()
    result = lap(X)  # warm-up
    warmup = time.perf_counter() - t0
    del result
    # at least --repeats runs; cheap ones are repeated until about --min-time seconds (at most
    # MAX_REPEATS runs) so that the median resists other processes' bursts on shared cores
    repeats = max(spec["repeats"], min(MAX_REPEATS, math.ceil(spec["min_time"] / max(warmup, 1e-6))))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = lap(X)
        times.append(time.perf_counter() - t0)
        if len(times) < repeats:
            del result
    maxrss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {"time": statistics.median(times), "times": times, "warmup": warmup, "rss0": rss0,
           "maxrss0": maxrss0, "maxrss1": maxrss1, "peak": max(maxrss1 - rss0, 0)}
    if spec.get("save"):
        torch.save(result, spec["save"])
    if spec.get("compare"):  # after the measurement: full-batch agreement with the other method
        err = relative_error(result, torch.load(spec["compare"]))
        assert err <= RTOL, f"d={spec['d']}: full-batch results differ (relative {err:.2e})"
        out["err"] = err
    return out


def worker(spec: dict) -> None:
    out = prepare(spec) if spec["job"] == "prepare" else measure(spec)
    print(json.dumps(out), flush=True)


def run_worker(spec: dict) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), WORKER_FLAG, json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{spec['job']} worker ({spec.get('method', '')} d={spec['d']}) failed "
                           f"(exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- driver

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time and peak memory of pdec's generated forward-Laplacian module vs. the "
                    "torch.func Hessian-trace Laplacian (MLP D_in -> 768-768-512-512 -> 1, tanh, "
                    "float64). Each measurement runs in a fresh subprocess.")
    parser.add_argument("--dims", default="1,10,100",
                        help="comma-separated input dimensions D_in (default: 1,10,100)")
    parser.add_argument("--batch", type=int, default=512,
                        help="number of points N (default: 512; the paper used 1024)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs after one warm-up; the median is reported (default: 3)")
    parser.add_argument("--min-time", type=float, default=2.0,
                        help="cheap measurements are repeated beyond --repeats until about this "
                             f"many seconds (at most {MAX_REPEATS} runs; default: 2.0)")
    parser.add_argument("--threads", type=int, default=usable_cores(),
                        help="torch.set_num_threads for both methods (default: usable cores)")
    parser.add_argument("--seed", type=int, default=0, help="weights and points seed (default: 0)")
    parser.add_argument("--pdec-pass", choices=("operator", "keep"), default="operator",
                        help="'operator' = propagate(..., keep=False), the Laplacian only (default); "
                             "'keep' = keep every layer's stacks, as training does for curvature")
    parser.add_argument(WORKER_FLAG, dest="worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is None:
        try:
            args.dims = [int(s) for s in args.dims.split(",") if s.strip()]
        except ValueError:
            parser.error(f"--dims must be comma-separated integers, got {args.dims!r}")
        if not args.dims or min(args.dims) < 1:
            parser.error("--dims must list positive integers")
        if args.batch < 1 or args.repeats < 1 or args.threads < 1 or args.min_time < 0:
            parser.error("--batch, --repeats and --threads must be positive, --min-time >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        worker(json.loads(args.worker))
        return 0

    start = time.perf_counter()
    print(f"MLP D_in -> {'-'.join(map(str, HIDDEN))} -> 1, tanh, float64; N = {args.batch}; "
          f"median of >= {args.repeats} runs after 1 warm-up; {args.threads} thread(s); "
          f"pdec pass: {args.pdec_pass}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pdec_operator_") as tmp:
        for d in args.dims:
            common = {"d": d, "batch": args.batch, "repeats": args.repeats, "threads": args.threads,
                      "seed": args.seed, "hidden": list(HIDDEN), "min_time": args.min_time}
            prep = run_worker({**common, "job": "prepare", "dir": tmp})  # asserts agreement
            first = os.path.join(tmp, f"pdec_{d}.pt")
            pdec_method = "pdec" if args.pdec_pass == "operator" else "pdec-keep"
            p = run_worker({**common, "job": "measure", "method": pdec_method,
                            "module": prep["module"], "save": first})
            f = run_worker({**common, "job": "measure", "method": "torch.func",
                            "module": prep["module"], "compare": first})
            for r in (p, f):
                if r["maxrss0"] > 1.25 * r["rss0"] + 2**24:
                    print(f"  warning: d={d}: ru_maxrss before the runs ({r['maxrss0'] / 2**20:.0f} MiB) "
                          f"exceeds the RSS after setup ({r['rss0'] / 2**20:.0f} MiB); the peak may "
                          "be underestimated", flush=True)
            rows.append({"d": d, "n": args.batch, "t_pdec": p["time"], "t_func": f["time"],
                         "speed": f["time"] / p["time"], "m_pdec": p["peak"] / 2**20,
                         "m_func": f["peak"] / 2**20,
                         "mem": p["peak"] / f["peak"] if f["peak"] > 0 else float("nan"),
                         "err": max(prep["err"], f["err"])})
            print(f"  D_in = {d}: done ({time.perf_counter() - start:.0f} s elapsed; "
                  f"max relative difference {rows[-1]['err']:.1e})", flush=True)

    header = (f"{'D_in':>5} {'N':>6} {'t pdec (s)':>11} {'t torch.func (s)':>17} {'speed x':>8} "
              f"{'mem pdec (MiB)':>15} {'mem torch.func (MiB)':>21} {'mem ratio':>10}")
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['d']:>5} {r['n']:>6} {r['t_pdec']:>11.4f} {r['t_func']:>17.4f} {r['speed']:>8.2f} "
              f"{r['m_pdec']:>15.1f} {r['m_func']:>21.1f} {r['mem']:>10.2f}")
    print("speed x = time torch.func / time pdec; mem ratio = peak pdec / peak torch.func "
          "(peak = ru_maxrss increase over the RSS after setup)")
    print()
    target = next((r for r in rows if r["d"] == TARGET_DIM), None)
    if target is None:
        print(f"Targets (D_in = {TARGET_DIM}): not measured (add {TARGET_DIM} to --dims)")
    else:
        speed_ok = target["speed"] >= SPEED_TARGET
        mem_ok = target["mem"] <= MEMORY_TARGET
        print(f"Targets at D_in = {TARGET_DIM} (paper: 2.0x, 0.52x):")
        print(f"  speed-up >= {SPEED_TARGET:.1f}x : {target['speed']:.2f}x  "
              f"{'met' if speed_ok else 'NOT met'}")
        print(f"  memory  <= {MEMORY_TARGET:.2f}x: {target['mem']:.2f}x  "
              f"{'met' if mem_ok else 'NOT met'}")
        print(f"  overall: {'targets met' if speed_ok and mem_ok else 'targets NOT met'}")
    print(f"\nTotal wall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
