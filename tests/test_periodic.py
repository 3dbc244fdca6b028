"""Periodic conditions: ``Condition(q, on=Periodic(x))`` pairs each point on x = lo with its image on
x = hi, and its residual is q(X) − q(X'). The curvature of such terms (a sample reads the network at
two points) is checked against jacrev in tests/test_curvature.py (case "periodic"), its residuals
against autograd in tests/test_generated_reference.py, its line search in tests/test_optimizers.py.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import sympy as sp
import torch

import pdec
from pdec import Box, Condition, Initial, Periodic, Problem, SpatialBoundary
from pdec.train.sampling import PointSampler, on_region
from conftest import ROOT

t, x, y = sp.symbols("t x y", real=True)
u = sp.Function("u")(t, x)


def _advection() -> Problem:
    return pdec.load_spec(ROOT / "specs" / "advection1d.py")


def test_points_lie_on_the_lower_face_and_pair_with_the_upper():
    problem = _advection()
    batch = PointSampler(problem, 50, 40, seed=3).batch
    X = batch["periodic"]
    assert X.shape == (20, 2)   # the condition points split evenly over the two conditions
    assert torch.all(X[:, 1] == 0.0)
    assert torch.all((X[:, 0] >= 0) & (X[:, 0] <= 1)) and X[:, 0].std() > 0.1
    assert bool(on_region(problem, problem.condition_items["periodic"].on, X).all())
    model = pdec.compile(problem, hidden=(4,), write=False, seed=0).model
    pairs = model.term_points("periodic", X)
    assert torch.equal(pairs[:20], X)
    assert torch.equal(pairs[20:, 0], X[:, 0]) and torch.all(pairs[20:, 1] == 2 * math.pi)


def test_residual_is_the_difference_of_the_network_at_the_two_faces():
    """q = [u, ∂_x u]: the residual equals u and ∂_x u (autograd) at x = 0 minus those at x = 2π."""
    model = pdec.compile(_advection(), hidden=(6, 5), write=False, seed=0).model
    T = torch.linspace(0, 1, 7, dtype=torch.float64)
    X = torch.stack([T, torch.zeros_like(T)], 1)
    image = torch.stack([T, torch.full_like(T, 2 * math.pi)], 1)

    def q(P):
        P = P.clone().requires_grad_(True)
        value = model(P)[:, 0]
        (grad,) = torch.autograd.grad(value.sum(), P)
        return torch.stack([value, grad[:, 1]], 1).detach()

    r = model.residual("periodic", X).detach()
    torch.testing.assert_close(r, q(X) - q(image), rtol=1e-12, atol=1e-14)


def test_check_tests_the_pair_not_the_face():
    """An exact solution that is not periodic fails the check; a periodic one passes."""
    def problem(exact):
        return Problem(name="p", domain=Box({t: (0, 1), x: (0, 1)}, time=t), unknowns=[u],
                       interior=u.diff(t) - u.diff(x, 2),
                       conditions={"periodic": Condition(u, on=Periodic(x))}, exact={u: exact})
    good = pdec.check_problem(problem(sp.exp(-4 * sp.pi**2 * t) * sp.cos(2 * sp.pi * x)))
    assert good.passed, str(good)
    bad = pdec.check_problem(problem(sp.exp(-sp.pi**2 * t) * sp.cos(sp.pi * x)))   # u(0) = −u(1) ≠ u(1)
    assert not bad.passed
    assert "FAIL periodic" in str(bad)


def test_generated_module_declares_the_pairing():
    """The module names the periodic term's column and faces; the term propagates q's columns."""
    model = pdec.compile(_advection(), hidden=(4,), write=False, seed=0).model
    assert model.periodic == {"periodic": (1, 0.0, 2 * math.pi)}
    assert model.S["periodic"] == 2 and model.modes["periodic"] == "collapsed"


def test_training_learns_a_periodic_solution():
    """ENGD (layer-wise) on the shipped advection1d spec: the wave leaves at x = 2π and comes back
    at x = 0, so without the pairing no condition holds the solution at the faces."""
    compiled = pdec.compile(_advection(), write=False)
    run = pdec.train(compiled, "engd-layerwise", steps=150, n_interior=400, n_condition=100, n_eval=500,
                     save=False, progress=False)
    assert run.final["rel_l2"] < 1e-3, run.final
    T = torch.linspace(0, 1, 11, dtype=torch.float64)
    with torch.no_grad():
        left = compiled.model(torch.stack([T, torch.zeros_like(T)], 1))
        right = compiled.model(torch.stack([T, torch.full_like(T, 2 * math.pi)], 1))
    assert (left - right).abs().max() < 1e-3
    assert left.abs().max() > 0.3   # the solution is not zero on the faces


@pytest.mark.parametrize("optimizer", ["kfac", "kfac-star", "hessian-free"])
def test_curvature_optimizers_lower_the_loss(optimizer):
    compiled = pdec.compile(_advection(), write=False)
    run = pdec.train(compiled, optimizer, steps=40, n_interior=300, n_condition=100, n_eval=200,
                     save=False, progress=False)
    first, last = run.history[0]["loss"], run.history[-1]["loss"]
    assert last < 0.1 * first, (first, last)
    assert run.history[-1]["loss_periodic"] < run.history[0]["loss_periodic"]


def test_check_passes_with_float_bounds():
    """x in [0, 2 * math.pi] (a float): the pair is compared at the float bound, within float64."""
    floated = dataclasses.replace(_advection(), domain=Box({t: (0, 1), x: (0, 2 * math.pi)}, time=t), source=None)
    report = pdec.check_problem(floated)
    assert report.passed, str(report)


def test_given_points_on_the_upper_face_are_refused_with_the_pairing_named():
    compiled = pdec.compile(_advection(), hidden=(4,), write=False)
    points = PointSampler(compiled.problem, 20, 20, seed=0).batch
    upper = points["periodic"].clone()
    upper[:, 1] = 2 * math.pi
    with pytest.raises(pdec.PdecError, match=r"not on the face x = 0: give each pair by that point, the "
                                             r"condition pairs it with its image on x = 6\.28319"):
        pdec.train(compiled, "adam", steps=1, save=False, progress=False, points={**points, "periodic": upper})


def test_a_face_condition_on_paired_faces_is_doubted():
    problem = Problem(name="p", domain=Box({t: (0, 1), x: (0, 1)}, time=t), unknowns=[u],
                      interior=u.diff(t) - u.diff(x, 2),
                      conditions={"rest": Condition(u - sp.sin(2 * sp.pi * x), on=Initial() | SpatialBoundary()),
                                  "periodic": Condition(u, on=Periodic(x))})
    assert any("condition 'rest' also holds values on the faces of x that condition 'periodic' pairs" in d
               for d in problem.doubts())
    fine = dataclasses.replace(problem, conditions={"rest": Condition(u - sp.sin(2 * sp.pi * x), on=Initial()),
                                                    "periodic": Condition(u, on=Periodic(x))})
    assert not fine.doubts()


def test_the_class_instead_of_a_region_gets_the_call_to_write():
    problem = Problem(name="p", domain=Box({t: (0, 1), x: (0, 1)}, time=t), unknowns=[u],
                      interior=u.diff(t) - u.diff(x, 2), conditions={"periodic": Condition(u, on=Periodic)})
    with pytest.raises(pdec.SpecError, match=r"on=Periodic is the class; write on=Periodic\(x\)"):
        problem.validate()
