"""CUDA checks (skipped without a GPU): generated modules give the CPU's residuals on the GPU, KFAC
trains there, and torch_compile gives eager CUDA's numbers. Run by benchmarks/gpu.sh on a machine
with an NVIDIA GPU."""

from __future__ import annotations

import math

import pytest
import torch

import pdec
from pdec.loss import pinn_loss
from pdec.train.sampling import PointSampler
from conftest import ROOT

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SPECS = {  # name -> (path, hidden); kdv needs Taylor mode (third order); advection1d a periodic pair;
    # heat1d_data a data condition (rows of coordinates, then observed values); poisson2d_hard an ansatz
    "advection1d": (ROOT / "specs" / "advection1d.py", (16, 12)),
    "heat1d_data": (ROOT / "specs" / "heat1d_data.py", (16, 12)),
    "heat1d_inverse": (ROOT / "specs" / "heat1d_inverse.py", (16, 12)),
    "heat1d": (ROOT / "specs" / "heat1d.py", (16, 12)),
    "poisson2d": (ROOT / "specs" / "poisson2d.py", (16, 12)),
    "poisson2d_hard": (ROOT / "specs" / "poisson2d_hard.py", (16, 12)),   # forward through the ansatz
    "kdv": (ROOT / "tests" / "specs" / "kdv.py", (16, 12)),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_residuals_on_cuda_equal_cpu(name):
    path, hidden = SPECS[name]
    problem = pdec.load_spec(path)
    cpu = pdec.compile(problem, hidden=hidden, write=False, seed=0, dtype=torch.float64, device="cpu")
    gpu = pdec.compile(problem, hidden=hidden, write=False, seed=0, dtype=torch.float64, device="cuda")
    gpu.model.load_state_dict(cpu.model.state_dict())
    assert next(gpu.model.parameters()).device.type == "cuda"
    batch = PointSampler(problem, 64, 24, seed=1).batch  # CPU points, moved below
    assert set(batch) == set(cpu.model.term_names)
    for term, X in batch.items():
        want = cpu.model.residual(term, X).detach()
        got = gpu.model.residual(term, X.to("cuda")).detach()
        assert got.device.type == "cuda" and got.dtype == torch.float64
        scale = max(1.0, float(want.abs().max()))
        torch.testing.assert_close(got.cpu(), want, rtol=1e-10, atol=1e-10 * scale,
                                   msg=lambda m: f"{name}/{term}: {m}")
        P = cpu.model.term_points(term, X)   # the network's inputs (a data term's coordinates)
        torch.testing.assert_close(gpu.model(P.to("cuda")).detach().cpu(), cpu.model(P).detach(),
                                   rtol=1e-10, atol=1e-10)


def test_kfac_trains_on_cuda():
    problem = pdec.load_spec(ROOT / "specs" / "poisson2d.py")
    compiled = pdec.compile(problem, hidden=(16,), write=False, device="cuda")
    run = pdec.train(compiled, "kfac", device="cuda", save=False, steps=3, n_interior=64, n_condition=16,
                     n_eval=100, eval_every=1, progress=False)
    assert run.status == "completed" and run.steps == 3
    assert next(run.model.parameters()).device.type == "cuda"
    losses = [row["loss"] for row in run.history]
    assert all(math.isfinite(x) for x in losses)
    # row k's loss is L at the parameters step k started from; also evaluate after the last step
    sampler = PointSampler(problem, 64, 16, seed=run.config.seed, dtype=torch.float64, device="cuda")
    with torch.no_grad():
        final = float(pinn_loss(run.model, sampler.batch)[0])
    assert math.isfinite(final)
    assert final < losses[0], f"loss did not decrease: {losses[0]:.3e} -> {final:.3e}"
    assert math.isfinite(run.final["rel_l2"]) and math.isfinite(run.final["abs_rms"])


def test_kfac_moves_a_learned_parameter_on_cuda():
    """heat1d_inverse on CUDA: κ's block, its forward-mode Jacobian and its line search run on the
    device, and 5 KFAC steps move κ from its start with the loss falling."""
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / "heat1d_inverse.py"), hidden=(16,), write=False,
                            device="cuda")
    run = pdec.train(compiled, "kfac", device="cuda", save=False, steps=5, n_interior=64, n_condition=16,
                     n_eval=100, eval_every=1, progress=False)
    assert run.model.learned["kappa"].device.type == "cuda"
    assert run.final["learned_kappa"] != 1.0 and math.isfinite(run.final["learned_kappa"])
    assert run.final["loss"] < run.history[0]["loss"]


def test_torch_compile_on_cuda_gives_the_eager_loss():
    """torch_compile on CUDA (Triton): the compiled loss and trial pass equal eager CUDA's (1e-12),
    and 3 KFAC steps with it follow the eager run's losses (1e-9)."""
    import copy

    from pdec.curvature import layer_matrices
    from pdec.optim.line_search import GRID, trial_losses
    from pdec.torch_compile import check_torch_compile, compiled, use_torch_compile

    check_torch_compile("cuda")
    problem = pdec.load_spec(ROOT / "specs" / "heat1d.py")
    spec = pdec.compile(problem, hidden=(16,), write=False, seed=0, device="cuda")
    batch = PointSampler(problem, 64, 16, seed=0, dtype=torch.float64, device="cuda").batch
    fast = use_torch_compile(copy.deepcopy(spec.model))
    with torch.no_grad():
        torch.testing.assert_close(pinn_loss(fast, batch)[0], pinn_loss(spec.model, batch)[0],
                                   rtol=1e-12, atol=0)
        base = [M.detach() for M in layer_matrices(spec.model)]
        direction = [0.1 * torch.randn_like(M) for M in base]
        alphas = torch.tensor(GRID, dtype=torch.float64, device="cuda")
        torch.testing.assert_close(compiled(trial_losses)(fast, batch, base, direction, alphas),
                                   trial_losses(spec.model, batch, base, direction, alphas),
                                   rtol=1e-12, atol=1e-300)
    losses = {}
    for flag in (False, True):
        c = pdec.compile(problem, hidden=(16,), write=False, seed=0, device="cuda")
        run = pdec.train(c, "kfac", device="cuda", save=False, steps=3, n_interior=64, n_condition=16,
                         n_eval=100, eval_every=1, progress=False, torch_compile=flag)
        losses[flag] = [row["loss"] for row in run.history]
    assert losses[True] == pytest.approx(losses[False], rel=1e-9)
