"""Data-parallel scaling of KFAC (issue 5): 1 rank × 2 threads against 2 ranks × 1 thread.

Problem: 5d Poisson (specs/poisson5d.py), net 5-256-256-128-128-1 (D = 116 865), float64,
3 000 interior and 500 boundary points, KFAC with its default settings. Every configuration runs
in its own torchrun job on this machine's cores, all in this one invocation:

    1 rank  × 2 threads                     (the baseline)
    2 ranks × 1 thread, inverses replicated (every rank inverts every layer's factors)
    2 ranks × 1 thread, inverses spread     (each rank some layers, then broadcast)

Each rank times --steps KFAC steps after --warmup steps; rank 0 also times the collectives (and
counts the bytes they move) and the factor inversions. Printed: steps per second, the ratio
against the baseline (target: 2 ranks ≥ 0.8×), and a modelled speed-up for 8 GPUs built from the
measured parts (see ``model_speedup``). Rows are appended to --results.

    python benchmarks/scaling.py                # about 4 minutes on 2 cores
    python benchmarks/scaling.py --steps 3 --n-interior 600   # quick look
    python benchmarks/scaling.py --steps 12 --reverse          # spread before replicated
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = (256, 256, 128, 128)
CONFIGS = [  # (label, ranks, threads per rank, inverse placement)
    ("1 rank x 2 threads", 1, 2, "replicated"),
    ("2 ranks x 1 thread, replicated inverses", 2, 1, "replicated"),
    ("2 ranks x 1 thread, spread inverses", 2, 1, "spread"),
]
# Modelled 8-GPU all-reduce: ring all-reduce moves 2 (p-1)/p of the bytes per rank at the bus
# bandwidth, plus a fixed latency per collective. Assumed NVLink-class figures (NCCL on one
# 8-GPU node): 100 GB/s bus bandwidth, 30 µs per collective.
GPU_BUS_BANDWIDTH = 100e9
GPU_COLLECTIVE_LATENCY = 30e-6


# ------------------------------------------------------------------------------------ worker
def worker(args) -> None:
    """One rank: build the shard and the optimizer, time KFAC steps, rank 0 writes a JSON row."""
    import torch

    import pdec
    from pdec.parallel import LOCAL, from_environment
    from pdec.parallel.comm import TorchDistributed
    from pdec.optim import get_optimizer
    from pdec.train.allocator import keep_freed_memory
    from pdec.train.sampling import PointSampler

    keep_freed_memory()
    torch.set_num_threads(args.threads)
    comm = from_environment("cpu")
    stats = {"collectives": 0, "bytes": 0, "comm_s": 0.0}
    if comm is not LOCAL:
        comm = _timed(TorchDistributed, stats)("cpu")
    problem = pdec.load_spec(ROOT / "specs" / "poisson5d.py")
    compiled = pdec.compile(problem, hidden=HIDDEN, write=False, seed=0)
    model = compiled.model
    sampler = PointSampler(problem, args.n_interior, args.n_condition, seed=0,
                           rank=comm.rank, world_size=comm.world_size)
    opt = get_optimizer("kfac")(model, comm=comm, inverse_placement=args.placement)
    inverse_time = [0.0]
    original = opt.pre.inverses

    def timed_inverses():
        fresh = opt.pre._inverses is None
        t0 = time.perf_counter()
        out = original()
        if fresh:
            inverse_time[0] += time.perf_counter() - t0
        return out

    opt.pre.inverses = timed_inverses
    for _ in range(args.warmup):
        opt.step(sampler.batch)
    stats.update(collectives=0, bytes=0, comm_s=0.0)
    inverse_time[0] = 0.0
    comm.barrier()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        info = opt.step(sampler.batch)
    comm.barrier()
    elapsed = time.perf_counter() - t0
    if comm.is_main:
        D = sum(p.numel() for p in model.parameters())
        row = {"label": args.label, "ranks": comm.world_size, "threads": args.threads, "placement": args.placement,
               "steps": args.steps, "s_per_step": elapsed / args.steps, "steps_per_s": args.steps / elapsed,
               "inverse_s_per_step": inverse_time[0] / args.steps,
               "comm_s_per_step": stats["comm_s"] / args.steps,
               "collectives_per_step": stats["collectives"] / args.steps,
               "allreduce_bytes_per_step": stats["bytes"] / args.steps, "D": D,
               "n_interior": args.n_interior, "n_condition": args.n_condition, "loss": info.loss}
        Path(args.out).write_text(json.dumps(row))
    comm.close()


def _timed(base, stats):
    """A communicator class that counts collectives and bytes and times them (rank-local)."""

    class Timed(base):
        def _count(self, fn, tensors, *a, **k):
            t0 = time.perf_counter()
            out = fn(tensors, *a, **k)
            stats["comm_s"] += time.perf_counter() - t0
            stats["collectives"] += 1
            stats["bytes"] += sum(t.numel() * t.element_size() for t in tensors)
            return out

        def all_reduce_(self, tensors):
            return self._count(super().all_reduce_, list(tensors))

        def broadcast_(self, tensors, src):
            return self._count(super().broadcast_, list(tensors), src)

    return Timed


# ------------------------------------------------------------------------------------ driver
def model_speedup(base: dict, p: int = 8) -> dict:
    """Modelled speed-up on p GPUs from the single-rank measurement.

    The step's time splits into the factor inversion (replicated on every rank; under "spread"
    divided over min(p, layers) ranks) and the rest, which is work over the batch's points and
    divides by p. Communication: the bytes one step all-reduces (measured with 2 ranks; they do
    not depend on p) through a ring all-reduce, 2 (p−1)/p · bytes / bandwidth, plus the latency of
    each collective. Compute times are this machine's: on GPUs both compute parts shrink, so the
    communication term weighs more than it does here.
    """
    t1 = base["s_per_step"]
    t_inv = base["inverse_s_per_step"]
    t_batch = t1 - t_inv
    bytes_, n_coll = base["allreduce_bytes_per_step"], base["collectives_per_step"]
    t_comm = 2 * (p - 1) / p * bytes_ / GPU_BUS_BANDWIDTH + n_coll * GPU_COLLECTIVE_LATENCY
    layers = len(HIDDEN) + 1
    replicated = t1 / (t_batch / p + t_inv + t_comm)
    spread = t1 / (t_batch / p + t_inv / min(p, layers) + t_comm)
    parts = {"the per-point work": t_batch / p, "the replicated factor inversion": t_inv, "communication": t_comm}
    return {"p": p, "replicated": replicated, "spread": spread, "t_comm": t_comm, "t_batch": t_batch,
            "t_inv": t_inv, "largest": max(parts, key=parts.get),
            "limit_replicated": t1 / (t_inv + t_comm), "limit_spread": t1 / (t_inv / layers + t_comm)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed KFAC steps per configuration")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--n-interior", type=int, default=3000)
    parser.add_argument("--n-condition", type=int, default=500)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "scaling.jsonl")
    parser.add_argument("--reverse", action="store_true",
                        help="run the two 2-rank configurations in the opposite order (order effects)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--placement", default="replicated", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0

    rows = []
    stamp = time.strftime("%Y-%m-%d %H:%M")
    configs = [CONFIGS[0], *reversed(CONFIGS[1:])] if args.reverse else CONFIGS
    for label, ranks, threads, placement in configs:
        out = Path(f"/tmp/pdec-scaling-{os.getpid()}-{len(rows)}.json")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
               __file__, "--worker", f"--threads={threads}", f"--placement={placement}", f"--label={label}",
               f"--out={out}", f"--steps={args.steps}", f"--warmup={args.warmup}",
               f"--n-interior={args.n_interior}", f"--n-condition={args.n_condition}"]
        print(f"{label} ...", flush=True)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr[-3000:])
            return 1
        row = json.loads(out.read_text())
        out.unlink()
        row.update(date=stamp, machine=f"{platform.machine()}, {os.cpu_count()} cores",
                   command=" ".join(sys.argv))
        rows.append(row)
        with args.results.open("a") as f:
            f.write(json.dumps(row) + "\n")

    base = rows[0]
    print(f"\nKFAC, 5d Poisson, 5-{'-'.join(map(str, HIDDEN))}-1 (D = {base['D']}), {args.n_interior} + "
          f"{args.n_condition} points, {args.steps} steps after {args.warmup} warm-up; {stamp}, "
          f"{os.cpu_count()} cores\n")
    print(f"{'configuration':42s} {'s/step':>8s} {'steps/s':>8s} {'vs 1 rank':>9s} {'inverse s':>9s} "
          f"{'comm s':>8s} {'MB reduced':>10s}")
    for row in rows:
        print(f"{row['label']:42s} {row['s_per_step']:8.3f} {row['steps_per_s']:8.3f} "
              f"{row['steps_per_s'] / base['steps_per_s']:8.2f}x {row['inverse_s_per_step']:9.3f} "
              f"{row['comm_s_per_step']:8.3f} {row['allreduce_bytes_per_step'] / 1e6:10.2f}")
    best = max(rows[1:], key=lambda r: r["steps_per_s"])
    ratio = best["steps_per_s"] / base["steps_per_s"]
    print(f"\ntarget: 2 ranks ≥ 0.8x the single rank's throughput: {ratio:.2f}x "
          f"({best['label']}) -> {'met' if ratio >= 0.8 else 'MISSED'}")
    replicated = next(r for r in rows if r["placement"] == "replicated" and r["ranks"] > 1)
    model = model_speedup({**base, "allreduce_bytes_per_step": replicated["allreduce_bytes_per_step"],
                           "collectives_per_step": replicated["collectives_per_step"]})
    print(f"modelled speed-up on 8 GPUs (this machine's compute split: {model['t_batch']:.3f} s per-point work, "
          f"{model['t_inv']:.3f} s inversion; all-reduce {replicated['allreduce_bytes_per_step'] / 1e6:.1f} MB in "
          f"{replicated['collectives_per_step']:.0f} collectives per step at {GPU_BUS_BANDWIDTH / 1e9:.0f} GB/s, "
          f"{GPU_COLLECTIVE_LATENCY * 1e6:.0f} µs each -> {model['t_comm'] * 1e3:.2f} ms): "
          f"{model['replicated']:.1f}x with replicated inverses, {model['spread']:.1f}x spread; the largest part at "
          f"8 GPUs is {model['largest']}. As the GPU count grows the speed-up is capped by the inversion every rank "
          f"repeats plus the collectives: {model['limit_replicated']:.0f}x replicated, "
          f"{model['limit_spread']:.0f}x spread over the {len(HIDDEN) + 1} layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
