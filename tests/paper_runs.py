"""The paper's own runs, rebuilt exactly: its data, initial weights, targets and re-sampling.

The paper's training script (kfac_pinns_exp/train.py of its experiment code, run with
data_seed 0 and model_seed 1) draws everything from torch's global generator in float32:
``manual_seed(1)``, then the 5→64→1 network's ``nn.Linear`` initialisation, then (lazily, at the
first step) the interior points ``rand(N_Ω, d)``, the boundary points (``rand``, then a random
coordinate set to a random side), at the first log the evaluation points ``rand(N_eval, d)``, and
with ``--batch_frequency=K`` a new interior and boundary batch (in that order) at every step that
is a multiple of K. Its right-hand sides and boundary targets are computed in float32 and then
cast to float64 (so they differ from pdec's float64 values by ~1e-7): to follow its trajectory to
round-off, :func:`paper_setup` replaces the generated residuals by ones that use those float32
targets. Used by tests/test_paper_runs.py and benchmarks/paper_runs.py.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

import pdec

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class PaperRun:
    """One published run: the problem, pdec's optimizer name, its exact hyperparameters (its
    command line), its log file, and the compile mode whose stack is the paper's code's ("laplacian"
    on heat: ∂_t h and the unweighted Δ_x h as columns of their own, S = d + 2)."""

    problem: str
    optimizer: str
    hyper: dict
    log: Path
    mode: str = "auto"


#: The published runs rebuilt here, by name.
RUNS = {
    "poisson2d-kfac": PaperRun("poisson2d", "kfac",
                               {"damping": 1.5440986717145857e-12, "ema": 0.4496490467123582,
                                "momentum": 0.5117574706015794, "init": "identity"},
                               DATA / "paper-poisson2d-kfac-euc27yi9.csv"),
    "poisson2d-kfac-star": PaperRun("poisson2d", "kfac-star",
                                    {"damping": 1.2156399458704562e-10, "ema": 0.9263313896660544,
                                     "init": "identity", "first_lr": 1e-6, "trust": False},
                                    DATA / "paper-poisson2d-kfac-star-i1txqj6g.csv"),
    "heat4d-kfac": PaperRun("heat4d", "kfac",
                            {"damping": 1.000287566353374e-09, "ema": 0.7783518966915723,
                             "momentum": 0.9474107762856828, "init": "identity"},
                            DATA / "paper-heat4d-kfac-141vvkln.csv", mode="laplacian"),
    "poisson5d-kfac-star": PaperRun("poisson5d", "kfac-star",
                                    {"damping": 9.835853222127416e-13, "ema": 0.7714287060708382,
                                     "init": "identity", "first_lr": 1e-6, "trust": False},
                                    DATA / "paper-poisson5d-kfac-star-sbclpehz.csv"),
}

#: problem -> (input dimension, N_Ω, N_∂Ω, N_eval, batch_frequency; 0: one batch for the run)
SETUPS = {"poisson2d": (2, 900, 120, 9000, 0), "heat1d": (2, 900, 120, 9000, 0),
          "poisson5d": (5, 3000, 500, 30000, 100), "heat4d": (5, 3000, 500, 30000, 100)}
HEAT = ("heat1d", "heat4d")   # time first; one condition term: spatial boundary, then initial slice


def _square_boundary(n: int, dim: int, g: torch.Generator | None = None) -> torch.Tensor:
    """The paper's boundary sampler (float32): uniform points, one random coordinate set to 0 or 1."""
    X = torch.rand(n, dim, generator=g)
    dims = torch.randint(0, dim, (n,), generator=g)
    sides = torch.randint(0, 2, (n,), generator=g)
    X[torch.arange(n), dims] = sides.float()
    return X


def _heat_condition_points(n: int, dim: int, g: torch.Generator | None = None) -> torch.Tensor:
    """The paper's heat condition points (float32, time first): n/2 on the spatial boundary at
    random times, then n/2 on the initial slice t = 0."""
    times = torch.rand(n // 2, 1, generator=g)
    lateral = torch.cat([times, _square_boundary(n // 2, dim - 1, g)], dim=1)
    initial = torch.cat([torch.zeros(n // 2, 1), torch.rand(n // 2, dim - 1, generator=g)], dim=1)
    return torch.cat([lateral, initial])


def _targets(problem: str) -> tuple[Callable | None, Callable]:
    """The paper's float32 right-hand side f (None: zero) and boundary data g, as functions of
    float64 points (which hold float32 values exactly), returned in float64."""
    if problem == "heat4d":      # sin_sum: u* = e^{−t} Σ sin 2x_i, f = 0
        return None, (lambda X: (torch.exp(-X[..., 0].float())
                                 * torch.sin(2.0 * X[..., 1:].float()).sum(dim=-1)).double())
    if problem == "heat1d":      # sin_product: u* = e^{−π² t / 4} sin πx, f = 0
        return None, (lambda X: (torch.exp(-math.pi**2 / 4 * X[..., 0].float())
                                 * torch.sin(math.pi * X[..., 1].float())).double())
    if problem == "poisson2d":   # sin_product: u* = Π sin πx_i, f = d π² u*
        return ((lambda X: (2 * math.pi**2 * torch.prod(torch.sin(math.pi * X.float()), dim=-1)).double()),
                (lambda X: torch.prod(torch.sin(math.pi * X.float()), dim=-1).double()))
    # cos_sum: u* = Σ cos πx_i, f = π² Σ cos πx_i
    return ((lambda X: (math.pi**2 * torch.cos(math.pi * X.float()).sum(dim=-1)).double()),
            (lambda X: torch.cos(math.pi * X.float()).sum(dim=-1).double()))


def _per_batch(fn: Callable) -> Callable:
    """``fn`` computed once per points tensor: the residuals ask for the targets of the same batch
    at every step, and the batch stays the same tensor until it is re-drawn."""
    last: dict = {}

    def cached(X: torch.Tensor) -> torch.Tensor:
        if last.get("X") is not X:
            last["X"], last["value"] = X, fn(X)
        return last["value"]
    return cached


@dataclass
class PaperSetup:
    """The pdec model with the paper's initial weights and float32 targets, the training batches
    ({term: (N, d) float64}, ``batch(step)``) and the evaluation points (N_eval, d)."""

    model: torch.nn.Module
    batch: Callable[[int], dict]
    X_eval: torch.Tensor


def paper_setup(problem: str, resample_every: int | None = None, model: torch.nn.Module | None = None,
                seed: int = 1, mode: str = "auto") -> PaperSetup:
    """Rebuild the start of the paper's runs of ``problem`` (a key of SETUPS): the 2d problems
    keep one batch, the 5d ones draw a new one every 100 steps unless ``resample_every`` says
    otherwise (0: never; the paper's optimizers other than KFAC(*) draw one every step). ``model``:
    a compiled pdec model of the problem with one hidden layer of 64 (default: compile one, with
    ``mode``).
    ``seed``: the script's model_seed (its logged runs used 1); another seed draws another start
    the paper's way."""
    dim, n_interior, n_boundary, n_eval, frequency = SETUPS[problem]
    if resample_every is not None:
        frequency = resample_every
    if model is None:
        spec = pdec.load_spec(ROOT / "specs" / f"{problem}.py")
        model = pdec.compile(spec, hidden=(64,), mode=mode, write=False).model
    torch.manual_seed(seed)
    init = [torch.nn.Linear(dim, 64), torch.nn.Linear(64, 1)]   # float32, as the paper's script
    with torch.no_grad():
        for layer, ref in zip(model.layers, init):
            layer.weight.copy_(ref.weight.double())
            layer.bias.copy_(ref.bias.double())

    condition = "initial_boundary" if problem in HEAT else "boundary"
    condition_points = _heat_condition_points if problem in HEAT else _square_boundary

    def draw(g=None):
        return {"interior": torch.rand(n_interior, dim, generator=g).double(),
                condition: condition_points(n_boundary, dim, g).double()}

    first = draw()
    X_eval = torch.rand(n_eval, dim).double()
    stream = torch.Generator().manual_seed(0)
    stream.set_state(torch.get_rng_state())   # the global stream from here on, kept private
    current = {"step": 0, "batch": first}

    def batch(step: int) -> dict:
        """The batch of step ``step``; steps are asked for in increasing order."""
        if frequency and step > current["step"] and step // frequency > current["step"] // frequency:
            current["batch"] = draw(stream)
        current["step"] = step
        return current["batch"]

    f, g = _targets(problem)
    f, g = (_per_batch(f) if f is not None else None), _per_batch(g)
    # −Δu − f and u − g with the paper's float32 f and g (out: the output stack (..., S, 1));
    # the heat equation's right-hand side is zero, so its generated interior residual stays
    if f is not None:
        (laplacian,) = model.residual_columns["interior"]   # the stack column of Δu, the one it reads
        model.residual_interior = lambda X, out: (-out[..., laplacian, 0] - f(X))[..., None]
    setattr(model, f"residual_{condition}", lambda X, out: (out[..., 0, 0] - g(X))[..., None])
    return PaperSetup(model, batch, X_eval)


def paper_log(run: str) -> list[tuple[int, float, float, float]]:
    """The published run's log rows (step, loss before the step, L2 error after it, seconds)."""
    with RUNS[run].log.open() as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return [(int(r["step"]), float(r["loss"]), float(r["l2_error"]), float(r["time"])) for r in rows]
