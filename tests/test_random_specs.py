"""A randomized differential test of the whole compiler: random PDEs written as a user might
(any mix of linear second-order operators with constant or x-dependent coefficients, first-order
terms, nonlinear terms, unevaluated third-order Derivatives with their variables in any order,
systems, Neumann conditions), compiled in every mode that accepts them, against the autograd
reference of tests/reference.py, which reads the SymPy residual itself.

The seeds are fixed, so a failure reproduces: ``pytest tests/test_random_specs.py -k 'seed7'``.
A longer run of the same kind (about 3 000 problems) found the bugs that tests/test_names.py pins.
"""

from __future__ import annotations

import random

import pytest
import sympy as sp

import pdec
from pdec import Boundary, Box, Condition, Face, Problem
from reference import randomize_weights, random_points, residual_errors

SEEDS = range(40)
MODES = ("auto", "laplacian", "collapsed", "taylor")


def random_problem(seed: int) -> Problem:
    """A random, valid problem on a box of 1–3 variables with 1 or 2 unknowns."""
    rng = random.Random(seed)
    names = rng.sample(["x", "y", "t", "r", "s1"], rng.randint(1, 3))
    variables = [sp.Symbol(n, real=True) for n in names]
    unknowns = [sp.Function(n)(*variables) for n in ["u", "v"][:rng.randint(1, 2)]]

    def coefficient() -> sp.Expr:
        v = rng.choice(variables)
        return rng.choice([sp.Integer(1), sp.Integer(-2), sp.Rational(1, 3), v, 1 + v**2, sp.exp(-v)])

    def term(w) -> sp.Expr:
        a, b, c = (rng.choice(variables) for _ in range(3))
        kind = rng.choice(["second", "second", "laplacian", "first", "nonlinear", "third"])
        if kind == "second":
            return coefficient() * w.diff(a, b)
        if kind == "laplacian":
            return sum(w.diff(v, 2) for v in variables)
        if kind == "first":
            return coefficient() * w.diff(a)
        if kind == "third":   # unevaluated, variables in the order drawn (SymPy keeps it)
            return sp.Derivative(w, a, b, c)
        other = rng.choice(unknowns)
        return rng.choice([w * other.diff(a), w.diff(a) ** 2, sp.sin(w), w**3,
                           other * sum(w.diff(v, 2) for v in variables), w.diff(a) * other.diff(b, c)])

    interior = [sum(term(w) for _ in range(rng.randint(1, 3))) + sp.sin(sum(variables))
                for w in unknowns]
    conditions = {f"b_{w.func.__name__}": Condition(w - sp.cos(variables[0]), on=Boundary())
                  for w in unknowns}
    if rng.random() < 0.5:
        v = rng.choice(variables)
        conditions["flux"] = Condition(unknowns[0].diff(v) + unknowns[-1], on=Face(v, "max"))
    return Problem(name=f"random{seed}", domain=Box({v: (0, 1) for v in variables}),
                   unknowns=unknowns, interior=interior if len(interior) > 1 else interior[0],
                   conditions=conditions)


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_random_problem_matches_autograd(seed):
    problem = random_problem(seed)
    compiled_modes = []
    for mode in MODES:
        try:
            compiled = pdec.compile(problem, hidden=(5, 4), mode=mode, write=False)
        except pdec.ModeError:
            assert mode in ("laplacian", "collapsed"), f"{mode} must accept every valid problem"
            continue
        compiled_modes.append(mode)
        model = compiled.model
        randomize_weights(model, seed=seed)
        X = random_points(problem, 5, seed=seed)
        for term, err in residual_errors(problem, model, X).items():
            assert err < 1e-10, f"{problem.interior} [{mode}] {term}: relative error {err:.2e}"
    assert "auto" in compiled_modes and "taylor" in compiled_modes
