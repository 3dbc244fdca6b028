"""pdec.check: every shipped exact solution satisfies its PDE; wrong solutions are caught."""

from __future__ import annotations

import pytest
import sympy as sp
import torch
from conftest import ROOT, SHIPPED_SPECS

import pdec
import pdec.check as check
from pdec import Box, Condition, Face, Initial, PdecError, Problem, Sampler
from pdec.check import CheckReport, check_problem


def _poisson2d(exact_u, conditions=None) -> Problem:
    x, y = sp.symbols("x y", real=True)
    u = sp.Function("u")(x, y)
    return Problem(
        name="poisson2d_test",
        domain=Box({x: (0, 1), y: (0, 1)}),
        unknowns=[u],
        interior=-(u.diff(x, 2) + u.diff(y, 2))
        - 2 * sp.pi**2 * sp.sin(sp.pi * x) * sp.sin(sp.pi * y),
        conditions=conditions(x, y, u) if conditions else
        {"boundary": Condition(u, on=pdec.Boundary())},
        exact={u: exact_u(x, y)},
    ).validate()


def _logfp(d: int, s_of_t) -> Problem:
    t = sp.Symbol("t", real=True)
    xs = sp.symbols(f"x1:{d + 1}", real=True)
    q = sp.Function("q")(t, *xs)
    s = s_of_t(t)
    q_exact = -sp.Add(*[xi**2 for xi in xs]) / (2 * s) - sp.Rational(d, 2) * sp.log(2 * sp.pi * s)
    return Problem(
        name="logfp_test",
        domain=Box({t: (0, 1), **{xi: (-5, 5) for xi in xs}}, time=t),
        unknowns=[q],
        interior=q.diff(t) - sp.Rational(d, 2) - sp.Add(*[q.diff(xi) * xi for xi in xs]) / 2
        - sp.Add(*[q.diff(xi) ** 2 for xi in xs]) - sp.Add(*[q.diff(xi, 2) for xi in xs]),
        conditions={"initial": Condition(q - q_exact.subs(t, 0), on=Initial())},
        exact={q: q_exact},
    ).validate()


def _by_term(report: CheckReport) -> dict:
    return {r.term: r for r in report.results}


# --------------------------------------------------------------------------- shipped specs


@pytest.mark.parametrize("path", SHIPPED_SPECS, ids=lambda p: p.stem)
def test_shipped_spec_exact_solution_passes(path):
    problem = pdec.load_spec(path)
    report = check_problem(problem)
    assert report.passed, f"{path.name}:\n{report}"
    # one result per residual component: each interior residual, each condition's entries, and
    # for an ansatz one per face of the box where it fixes its unknown
    residuals = [r for r in report.results if not r.term.startswith("ansatz ")]
    assert len(residuals) == (len(problem.interior_residuals)
                              + sum(len(c.residuals) for c in problem.condition_items.values()))
    # a condition on Data holds measurements: skipped, with the exact solution's misfit
    data = {name for name, c in problem.condition_items.items() if isinstance(c.on, pdec.Data)}
    assert all(line.startswith("SKIP" if line.split()[1].rstrip(":").split("[")[0] in data else "PASS")
               for line in str(report).splitlines())


@pytest.mark.parametrize("path", SHIPPED_SPECS, ids=lambda p: p.stem)
def test_shipped_spec_passes_numerically_too(path, monkeypatch):
    """With the symbolic path disabled, the high-precision numeric fallback agrees."""
    monkeypatch.setattr(check, "_is_zero", lambda expr: None)
    problem = pdec.load_spec(path)
    report = check_problem(problem, n_points=3)
    assert report.passed, f"{path.name}:\n{report}"
    data = set(problem.data_conditions)
    assert all(r.method == "numeric" and r.max_abs < 1e-15 for r in report.results if r.term not in data)


def test_shipped_specs_are_all_there():
    names = {p.stem for p in SHIPPED_SPECS}
    assert {"heat1d", "heat4d", "poisson2d", "poisson5d", "poisson10d", "poisson100d",
            "logfp9d"} <= names


# --------------------------------------------------------------------------- log Fokker–Planck


def test_logfp_shipped_9d_passes_symbolically():
    report = check_problem(pdec.load_spec(ROOT / "specs" / "logfp9d.py"))
    assert report.passed, str(report)
    assert _by_term(report)["interior"].method == "symbolic"


@pytest.mark.parametrize("d", [1, 2])
def test_logfp_correct_variance_passes(d):
    report = check_problem(_logfp(d, lambda t: 2 - sp.exp(-t)))
    assert report.passed, str(report)


@pytest.mark.parametrize("d", [1, 2])
def test_logfp_papers_printed_variance_fails(d):
    report = check_problem(_logfp(d, lambda t: sp.exp(-t) + (1 - sp.exp(-t)) ** 2))
    assert not report.passed
    terms = _by_term(report)
    assert not terms["interior"].passed
    assert terms["interior"].method == "numeric"
    assert terms["interior"].max_abs > 1e-3
    # s(0) = 1 for both variances: the initial condition itself is right
    assert terms["initial"].passed
    assert "FAIL interior" in str(report)


# --------------------------------------------------------------------------- Poisson / Neumann


def test_poisson_correct_passes():
    report = check_problem(_poisson2d(lambda x, y: sp.sin(sp.pi * x) * sp.sin(sp.pi * y)))
    assert report.passed, str(report)


@pytest.mark.parametrize("wrong", [
    lambda x, y: sp.sin(sp.pi * x) * sp.sin(2 * sp.pi * y),
    lambda x, y: 1.0001 * sp.sin(sp.pi * x) * sp.sin(sp.pi * y),
    lambda x, y: sp.sin(sp.pi * x) * sp.sin(sp.pi * y) + x * (1 - x),
], ids=["wrong_frequency", "scaled", "bubble"])
def test_poisson_wrong_solution_fails(wrong):
    report = check_problem(_poisson2d(wrong))
    assert not report.passed
    interior = _by_term(report)["interior"]
    assert not interior.passed
    assert "FAIL interior: numeric" in str(report)
    # the point the message names is the one of the largest |r| (the max it reports)
    assert f"|r| = {interior.max_abs:.3e} at " in interior.message and "above the tolerance there" in interior.message


def test_boundary_condition_violated_fails():
    # harmonic, so the interior of Laplace holds, but u != 0 on the boundary
    x, y = sp.symbols("x y", real=True)
    u = sp.Function("u")(x, y)
    problem = Problem(name="laplace", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u],
                      interior=u.diff(x, 2) + u.diff(y, 2),
                      conditions={"boundary": Condition(u, on=pdec.Boundary())},
                      exact={u: x * y}).validate()
    terms = _by_term(check_problem(problem))
    assert terms["interior"].passed and terms["interior"].method == "symbolic"
    assert not terms["boundary"].passed and terms["boundary"].method == "numeric"


def _neumann(sign: int):
    def conditions(x, y, u):
        return {
            "left": Condition(u.diff(x) - sign * sp.pi * sp.sin(sp.pi * y), on=Face(x, "min")),
            "right": Condition(u.diff(x) + sign * sp.pi * sp.sin(sp.pi * y), on=Face(x, "max")),
            "bottom": Condition(u, on=Face(y, "min")),
            "top": Condition(u.diff(y, 2) + sp.pi**2 * u, on=Face(y, "max")),
        }
    return conditions


def test_neumann_condition_passes_when_correct():
    report = check_problem(_poisson2d(lambda x, y: sp.sin(sp.pi * x) * sp.sin(sp.pi * y),
                                      _neumann(+1)))
    assert report.passed, str(report)
    terms = _by_term(report)
    # u_x = π cos(πx) sin(πy) is not zero off the face: only the face restriction closes it
    assert terms["left"].method == "symbolic" and "face" in terms["left"].message


def test_neumann_condition_fails_when_wrong():
    report = check_problem(_poisson2d(lambda x, y: sp.sin(sp.pi * x) * sp.sin(sp.pi * y),
                                      _neumann(-1)))
    terms = _by_term(report)
    assert not terms["left"].passed and not terms["right"].passed
    assert terms["bottom"].passed and terms["top"].passed and terms["interior"].passed


# --------------------------------------------------------------------------- samplers, errors


def _on_right_face(n, gen):
    y = torch.rand(n, 1, generator=gen, dtype=torch.float64)
    return torch.cat([torch.ones(n, 1, dtype=torch.float64), y], dim=1)


@pytest.mark.parametrize("shift, ok", [(0, True), (1, False)])
def test_sampler_region_is_checked_numerically(shift, ok):
    def conditions(x, y, u):
        return {"right": Condition(u.diff(x) + sp.pi * sp.sin(sp.pi * y) + shift,
                                   on=Sampler(_on_right_face, "x = 1"))}
    report = check_problem(_poisson2d(lambda x, y: sp.sin(sp.pi * x) * sp.sin(sp.pi * y),
                                      conditions))
    term = _by_term(report)["right"]
    assert term.method == "numeric"
    assert term.passed is ok
    assert report.passed is ok


def test_system_with_pdec_functions():
    x = sp.Symbol("x", real=True)
    u, v = sp.Function("u")(x), sp.Function("v")(x)
    problem = Problem(
        name="system", domain=Box({x: (-2, 2)}), unknowns=[u, v],
        interior=[u.diff(x) - v, v - pdec.functions.sigmoid(x)],
        conditions={"left": Condition(u - sp.log(1 + sp.exp(-2)), on=Face(x, "min"))},
        exact={u: pdec.functions.softplus(x), v: pdec.functions.sigmoid(x)},
    ).validate()
    report = check_problem(problem)
    assert report.passed, str(report)
    assert [r.term for r in report.results] == ["interior[0]", "interior[1]", "left"]


def _poisson2d_with_floats(scale: float) -> Problem:
    """2d Poisson written with math.pi (float64 constants) and the exact solution scale·sin sin."""
    import math

    x, y = sp.symbols("x y", real=True)
    u = sp.Function("u")(x, y)
    return Problem(
        name="floats", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u],
        interior=-(u.diff(x, 2) + u.diff(y, 2)) - 2 * math.pi**2 * sp.sin(math.pi * x) * sp.sin(math.pi * y),
        conditions={"boundary": Condition(u, on=pdec.Boundary())},
        exact={u: scale * sp.sin(sp.pi * x) * sp.sin(sp.pi * y)}).validate()


def test_float_constants_are_checked_to_float64_precision():
    # math.pi leaves |r| ≈ 2e-15 at 30 digits, above 1e-15 · |largest term| (a false alarm before)
    terms = _by_term(check_problem(_poisson2d_with_floats(1)))
    assert terms["interior"].passed and terms["interior"].method == "numeric"
    assert 1e-16 < terms["interior"].max_abs < 1e-13
    assert "allows for float constants such as 3.14159265358979" in terms["interior"].message
    # … and a solution off by 1e-9 still fails
    assert not _by_term(check_problem(_poisson2d_with_floats(1 + 1e-9)))["interior"].passed


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_the_check_needs_a_point(n):
    with pytest.raises(PdecError, match=rf"at least one point per term, got n_points = {n}"):
        check_problem(_poisson2d(lambda x, y: sp.sin(sp.pi * x) * sp.sin(sp.pi * y)), n_points=n)


def test_no_exact_solution_is_an_error():
    problem = _poisson2d(lambda x, y: 0 * x)
    problem.exact = None
    with pytest.raises(PdecError, match="no exact solution to check"):
        check_problem(problem)



def test_a_condition_of_several_components_is_checked_per_component():
    report = check_problem(pdec.load_spec(ROOT / "specs" / "kovasznay.py"))
    assert [r.term for r in report.results] == ["interior[0]", "interior[1]", "interior[2]", "velocity[0]",
                                                "velocity[1]", "pressure"]
    assert report.passed
