"""A condition's weight w: its term's loss is w · 1/(2N) Σ_n ‖r_n‖², everywhere the loss is used."""

from __future__ import annotations

import sympy as sp
import torch

import pdec
from pdec.curvature import compute_factors
from pdec.loss import pinn_loss
from reference import randomize_weights

x, y = sp.symbols("x y")
u = sp.Function("u")(x, y)
W = 6.25


def _problem(weight=None, interior_weight=None) -> pdec.Problem:
    extra = {} if weight is None else {"weight": weight}
    inner = {} if interior_weight is None else {"interior_weight": interior_weight}
    exact = sp.sin(sp.pi * x) * sp.cosh(y)
    return pdec.Problem(
        name="weighted", domain=pdec.Box({x: (0, 1), y: (0, 1)}), unknowns=[u],
        interior=u.diff(x, 2) + u.diff(y, 2) + (sp.pi**2 - 1) * exact, **inner,
        conditions={"wall": pdec.Condition(u - exact, on=pdec.Boundary(), **extra)},
        exact={u: exact})


def _pair(**weights):
    """The same net, weights and points for the problem without and with the given weights."""
    plain = pdec.compile(_problem(), hidden=(5,), write=False)
    weighted = pdec.compile(_problem(**weights), hidden=(5,), write=False)
    randomize_weights(plain.model)
    weighted.model.load_state_dict(plain.model.state_dict())
    g = torch.Generator().manual_seed(3)
    batch = {"interior": torch.rand(11, 2, generator=g, dtype=torch.float64),
             "wall": torch.rand(7, 2, generator=g, dtype=torch.float64).round()}
    return plain, weighted, batch


def test_the_weight_scales_the_residual_the_loss_and_the_curvature():
    plain, weighted, batch = _pair(weight=W)
    X = batch["wall"]
    torch.testing.assert_close(weighted.model.residual("wall", X), W**0.5 * plain.model.residual("wall", X),
                               rtol=1e-14, atol=0)
    _, plain_losses = pinn_loss(plain.model, batch)
    _, losses = pinn_loss(weighted.model, batch)
    torch.testing.assert_close(losses["wall"], W * plain_losses["wall"], rtol=1e-13, atol=0)
    torch.testing.assert_close(losses["interior"], plain_losses["interior"], rtol=0, atol=0)
    # A ⊗ B of the weighted term is W times the plain one's (B carries the scale)
    for f, f0 in zip(compute_factors(weighted.model, batch)["wall"], compute_factors(plain.model, batch)["wall"]):
        torch.testing.assert_close(f.A, f0.A, rtol=1e-14, atol=0)
        torch.testing.assert_close(f.B, W * f0.B, rtol=1e-13, atol=0)


def test_a_weighted_condition_trains_checks_and_shows_its_weight(tmp_path):
    weighted = pdec.compile(_problem(W), hidden=(6,), write=False)
    assert "weight 6.25" in weighted.source and "return 2.5 * torch.stack(" in weighted.source
    assert "term 'wall' on the whole boundary: mode value, S = 1, M = 1, weight 6.25" in weighted.plan.describe()
    assert pdec.check_problem(_problem(W)).passed   # the unscaled residual vanishes at the solution
    run = pdec.train(weighted, "kfac", steps=40, seed=0, run_root=tmp_path, n_interior=60, n_condition=40,
                     n_eval=200, eval_every=10, progress=False)
    assert run.final["rel_l2"] < 0.3 * run.history[0]["rel_l2"]   # 1.16 -> 0.21 when written


def test_the_interior_weight_scales_the_interior_term():
    plain, weighted, batch = _pair(interior_weight=0.04)
    X = batch["interior"]
    torch.testing.assert_close(weighted.model.residual("interior", X), 0.2 * plain.model.residual("interior", X),
                               rtol=1e-14, atol=0)
    _, plain_losses = pinn_loss(plain.model, batch)
    _, losses = pinn_loss(weighted.model, batch)
    torch.testing.assert_close(losses["interior"], 0.04 * plain_losses["interior"], rtol=1e-13, atol=0)
    torch.testing.assert_close(losses["wall"], plain_losses["wall"], rtol=0, atol=0)
    assert "interior (interior): mode laplacian, S = 4, M = 1, weight 0.04" in weighted.source
