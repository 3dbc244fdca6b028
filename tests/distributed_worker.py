"""One rank of the data-parallel equality test (tests/test_distributed.py), launched by torchrun.

Trains tests/specs/neumann.py (an interior and three conditions, so KFAC merges the condition
pairs) for 5 steps with every optimizer case of CASES on this rank's shard and, on rank 0,
saves the parameters to OUT/<case>.pt:

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_worker.py OUT [cuda]

(gloo on CPU; with ``cuda``, NCCL with one GPU per rank, as benchmarks/gpu_distributed.sh runs it.)
"""

import sys
from pathlib import Path

import torch

import pdec
from pdec.parallel import from_environment

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "specs" / "neumann.py"
# uneven shards on purpose: 101 interior points, 11 + 10 + 10 condition points, split over 2 ranks
SETTINGS = dict(n_interior=101, n_condition=31, n_eval=50, steps=5, seed=1, progress=False,
                eval_every=5, memory_check=True)
CASES = {
    "kfac": ("kfac", {}),
    "kfac-replicated": ("kfac", {"inverse_placement": "replicated"}),
    "kfac-resample": ("kfac", {"resample_every": 2, "approximation": "reduce"}),
    # points given from Python, a new batch every 2 steps: each rank shards the same draw(k)
    "kfac-given-points": ("kfac", {"resample_every": 2, "points": "draw(k)"}),
    "kfac-star": ("kfac-star", {}),
    "engd": ("engd", {}),
    "engd-layerwise": ("engd-layerwise", {}),
    "hessian-free": ("hessian-free", {"cg_iterations": 20}),
    "adam": ("adam", {"lr": 1e-2}),
    "sgd": ("sgd", {"lr": 1e-3}),
    "lbfgs": ("lbfgs", {"max_iter": 3}),
}


def run_case(case: str, comm=None, device: str = "cpu") -> list[torch.Tensor]:
    """Train one case; return the final parameters (on the CPU)."""
    optimizer, extra = CASES[case]
    compiled = pdec.compile(pdec.load_spec(SPEC), hidden=(8, 6), write=False,
                            device=device)
    if extra.get("points") == "draw(k)":
        from pdec.train.sampling import PointSampler

        def draw(k):
            return PointSampler(compiled.problem, 101, 31, seed=100 + k).batch
        extra = {**extra, "points": draw}
    run = pdec.train(compiled, optimizer, save=False, comm=comm, **SETTINGS, **extra)
    return [p.detach().cpu().clone() for p in run.model.parameters()]


if __name__ == "__main__":
    out = Path(sys.argv[1])
    device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    comm = from_environment(device)
    assert comm.world_size == 2, comm
    if device.startswith("cuda"):
        device = f"cuda:{comm.local_rank}"
    for case in CASES:
        params = run_case(case, comm, device)
        if comm.is_main:
            torch.save(params, out / f"{case}.pt")
    comm.close()
