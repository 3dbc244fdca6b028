"""The paper's own 2d Poisson runs, rebuilt exactly: its data, initial weights and targets.

The paper's training script (kfac_pinns_exp/train.py of its experiment code, run with
data_seed 0 and model_seed 1) draws everything from torch's global generator in float32:
``manual_seed(1)``, then the 2-64-1 network's ``nn.Linear`` initialisation, then (lazily, at the
first step) 900 interior points ``rand(900, 2)``, 120 boundary points (``rand``, then a random
coordinate set to a random side), and at the first log 9 000 evaluation points ``rand(9000, 2)``.
Its right-hand side f = 2π² sin πx sin πy and boundary targets sin πx sin πy are computed in
float32 and then cast to float64 (so they differ from pdec's float64 values by ~1e-7): to follow
its trajectory to round-off, :func:`paper_poisson2d` replaces the generated residuals by ones that
use those float32 targets. Used by tests/test_paper_runs.py and benchmarks/paper_runs.py.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

import pdec

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"

#: The published runs' exact hyperparameters (their command lines) and log files.
RUNS = {
    "kfac": ({"damping": 1.5440986717145857e-12, "ema": 0.4496490467123582,
              "momentum": 0.5117574706015794, "init": "identity"},
             DATA / "paper-poisson2d-kfac-euc27yi9.csv"),
    "kfac-star": ({"damping": 1.2156399458704562e-10, "ema": 0.9263313896660544, "init": "identity",
                   "first_lr": 1e-6},
                  DATA / "paper-poisson2d-kfac-star-i1txqj6g.csv"),
}


def _square_boundary(n: int, dim: int) -> torch.Tensor:
    """The paper's boundary sampler (float32): uniform points, one random coordinate set to 0 or 1."""
    X = torch.rand(n, dim)
    dims = torch.randint(0, dim, (n,))
    sides = torch.randint(0, 2, (n,))
    X[torch.arange(n), dims] = sides.float()
    return X


def paper_poisson2d():
    """(model, batch, X_eval): the 2-64-1 pdec model with the paper's initial weights and float32
    targets, its training batch {term: (N, 2) float64} and its 9 000 evaluation points."""
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / "poisson2d.py"), hidden=(64,), write=False)
    model = compiled.model
    torch.manual_seed(1)
    init = [torch.nn.Linear(2, 64), torch.nn.Linear(64, 1)]   # float32, as the paper's script
    X_interior = torch.rand(900, 2)
    X_boundary = _square_boundary(120, 2)
    X_eval = torch.rand(9000, 2)
    with torch.no_grad():
        for layer, ref in zip(model.layers, init):
            layer.weight.copy_(ref.weight.double())
            layer.bias.copy_(ref.bias.double())
    f = (2 * math.pi**2 * torch.prod(torch.sin(math.pi * X_interior), dim=1)).double()
    g = torch.prod(torch.sin(math.pi * X_boundary), dim=1).double()
    # −Δu − f and u − g with the paper's float32 f and g (out: the output stack (..., S, 1))
    model.residual_interior = lambda X, out: (-out[..., 3, 0] - f)[..., None]
    model.residual_boundary = lambda X, out: (out[..., 0, 0] - g)[..., None]
    batch = {"interior": X_interior.double(), "boundary": X_boundary.double()}
    return model, batch, X_eval.double()


def paper_log(optimizer: str) -> list[tuple[int, float, float, float]]:
    """The published run's log rows (step, loss before the step, L2 error after it, seconds)."""
    with RUNS[optimizer][1].open() as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return [(int(r["step"]), float(r["loss"]), float(r["l2_error"]), float(r["time"])) for r in rows]
