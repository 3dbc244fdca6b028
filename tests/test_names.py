"""Specs that name or write things in unusual ways: the generated residual still equals the
independent autograd reference (tests/reference.py reads the SymPy residual itself, not pdec's
analysis), or the spec is refused with a SpecError that says why.

Found by a randomized differential test of the compiler (about 3 000 random problems in every
mode); each case below gave a wrong residual or a crash before it was fixed.
"""

from __future__ import annotations

import pytest
import sympy as sp

import pdec
from pdec import Boundary, Box, Condition, Face, Initial, Problem, SpatialBoundary
from reference import randomize_weights, random_points, residual_errors

x, y, t = sp.symbols("x y t")


def _problem(interior, variables=(x, y), unknowns=None, conditions=None, **kw) -> Problem:
    unknowns = unknowns or [sp.Function("u")(*variables)]
    time = kw.pop("time", None)
    region = Initial() | SpatialBoundary() if time is not None else Boundary()
    return Problem(name="named", domain=Box({v: (0, 1) for v in variables}, time=time),
                   unknowns=unknowns, interior=interior,
                   conditions=conditions or {"b": Condition(unknowns[0], on=region)}, **kw)


def _assert_matches_reference(problem: Problem, modes=("auto", "taylor")) -> None:
    for mode in modes:
        compiled = pdec.compile(problem, hidden=(5, 4), mode=mode, write=False)
        model = compiled.model
        randomize_weights(model)
        X = random_points(problem, 6)
        for term, err in residual_errors(problem, model, X).items():
            assert err < 1e-10, f"[{mode}] {term}: relative error {err:.2e}"


def test_a_variable_repeated_out_of_order_counts_every_time():
    # SymPy keeps Derivative(u, x, y, x) unsorted: variable_count ((x, 1), (y, 1), (x, 1)) is ∂_xxy
    u = sp.Function("u")(x, y)
    for d in (sp.Derivative(u, x, y, x), sp.Derivative(sp.Derivative(u, x, y), x)):
        problem = _problem(d + u.diff(x, 2))
        plan = pdec.compile(problem, hidden=(3,), write=False).plan.interior
        assert {a.alpha for a in plan.needed if a.order} == {(2, 0), (2, 1)}
        _assert_matches_reference(problem)
    # in a condition too
    problem = _problem(u.diff(x, 2) + u.diff(y, 2),
                       conditions={"n": Condition(sp.Derivative(u, y, x, y), on=Face(x, "max"))})
    _assert_matches_reference(problem, ("auto",))


def test_names_that_pdec_uses_for_its_own_symbols():
    # an unknown u_t next to ∂_t u (a wave equation as a first-order system)
    u, v = sp.Function("u")(t, x), sp.Function("u_t")(t, x)
    _assert_matches_reference(_problem([u.diff(t) - v, v.diff(t) - u.diff(x, 2)], (t, x), [u, v],
                                       time=t), ("auto", "laplacian", "collapsed", "taylor"))
    # variables x, y and x_y: ∂_x ∂_y u and ∂_{x_y} u must stay two atoms
    xy = sp.Symbol("x_y")
    u = sp.Function("u")(x, y, xy)
    _assert_matches_reference(_problem(u.diff(x, y) + u.diff(xy), (x, y, xy)), ("auto", "taylor"))
    # a variable named like a collapsed channel's symbol
    L0u = sp.Symbol("L0_u")
    u = sp.Function("u")(x, L0u)
    _assert_matches_reference(_problem(u.diff(x, 2) + u.diff(L0u, 2) + L0u, (x, L0u)),
                              ("auto", "collapsed"))


@pytest.mark.parametrize("name", ["Zc", "sigma_2", "columns", "L0h", "Q0", "s1", "lambda"])
def test_variables_named_like_locals_of_the_generated_code(name):
    # x-dependent second-order coefficients put the variables into the activate functions
    v = sp.Symbol(name)
    u = sp.Function("u")(x, v)
    problem = _problem((1 + v**2) * u.diff(x, 2) + u.diff(v, 2) + x * u.diff(x, v) + v * u.diff(x), (x, v))
    _assert_matches_reference(problem, ("auto", "taylor"))


def test_a_variable_named_like_a_temporary_of_another_block():
    # channel 0's x-dependent coefficients share exp(x): a temporary named b0; channel 1's
    # coefficient is the variable b0, read after that temporary was assigned
    b0 = sp.Symbol("b0")
    u, v = sp.Function("u")(x, b0), sp.Function("v")(x, b0)
    interior = [u.diff(x, 2) + x * sp.exp(x) * u.diff(x) + sp.exp(x) * u.diff(b0)
                + v.diff(b0, 2) + b0 * v.diff(x) + u * v, v.diff(x, 2)]
    _assert_matches_reference(_problem(interior, (x, b0), [u, v]), ("auto", "collapsed"))


@pytest.mark.parametrize("make,message", [
    (lambda: _problem(sp.Function("u")(sp.Symbol("x_{1}"), y).diff(sp.Symbol("x_{1}"), 3),
                      (sp.Symbol("x_{1}"), y)), r"variable name 'x_\{1\}' must be a plain Python identifier"),
    (lambda: _problem(sp.Function(r"\phi")(x, y).diff(x, 2), unknowns=[sp.Function(r"\phi")(x, y)]),
     r"unknown name '\\\\phi' must be a plain Python identifier"),
    (lambda: _problem(sp.Function("w")(x, sp.Symbol("w")).diff(x, 2), (x, sp.Symbol("w")),
                      [sp.Function("w")(x, sp.Symbol("w"))]), "has the name of a variable"),
    (lambda: _problem(sp.Function("u")(x, y).diff(x, 2) - sp.Max(x, y)), "unsupported Max in Max\\(x, y\\): write it with Abs"),
    (lambda: _problem(sp.Function("u")(x, y).diff(x, 2) + sp.Min(sp.Function("u")(x, y), 0)),
     "unsupported Min"),
    (lambda: _problem(sp.Function("u")(x, y).diff(x, 2) + sp.I * x), "complex constant I"),
    (lambda: _problem(sp.Function("u")(x, y).diff(x, 2) + sp.Integral(x, (x, 0, 1))), "unsupported Integral"),
    (lambda: _problem(sp.Function("u")(x, y).diff(x, 2) + sp.Subs(sp.Function("u")(x, y).diff(x), x, 0)),
     "unsupported Subs"),
])
def test_specs_pdec_cannot_compile_faithfully_are_refused(make, message):
    with pytest.raises(pdec.SpecError, match=message):
        pdec.compile(make(), hidden=(3,), write=False)


def test_multi_index_labels_read_one_way_and_stay_readable():
    from itertools import product

    from pdec.analysis import multi_index_label

    for names in ("x_1 x_2 t", "x y x_y", "a_b c a b_c", "x1 x2 x3"):
        variables = sp.symbols(names)
        alphas = [a for a in product(range(3), repeat=len(variables)) if sum(a) <= 3]
        labels = [multi_index_label(a, variables) for a in alphas]
        assert len(set(labels)) == len(labels), names          # one-to-one: they name locals
        assert all(lab.isidentifier() for lab in labels if lab)
    x1, x2, t_ = sp.symbols("x_1 x_2 t")
    assert multi_index_label((2, 0, 1), (x1, x2, t_)) == "x_1_x_1_t"   # prefix-free: joined names
    u = sp.Function("u")(x1, x2)
    _assert_matches_reference(_problem(u.diff(x1, x2, x1) + u.diff(x2, 2) * u, (x1, x2)), ("auto", "taylor"))
