"""Hard constraints: ``Problem(..., ansatz={u: g + d·v})`` builds conditions into the network.

The residuals the compiler generates from the ansatz are checked against autograd of the spec's
own residuals through the ansatz (evaluated by SymPy, not by the generated code) in
tests/test_generated_reference.py (specs/poisson2d_hard.py, heat1d_hard.py,
tests/specs/ansatz_system.py), and the Jacobians, gradients and Kronecker factors of the first
and last in tests/test_curvature.py ("ansatz", "ansatz-system").
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import sympy as sp
import torch

import pdec
from pdec import Boundary, Box, Condition, Learned, Problem
from pdec.analysis import analyse
from pdec.check import check_problem
from pdec.errors import PdecWarning
from conftest import ROOT
from reference import randomize_weights, reference_solution

x, y = sp.symbols("x y", real=True)
u = sp.Function("u")(x, y)
v = sp.Function("v")(x, y)
q = sp.Function("q")(x, y)
BUBBLE = x * (1 - x) * y * (1 - y)
F = 2 * sp.pi**2 * sp.sin(sp.pi * x) * sp.sin(sp.pi * y)


def _hard(**kwargs) -> Problem:
    args = dict(name="hard", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u],
                interior=-(u.diff(x, 2) + u.diff(y, 2)) - F, ansatz={u: BUBBLE * v},
                exact={u: sp.sin(sp.pi * x) * sp.sin(sp.pi * y)})
    args.update(kwargs)
    return Problem(**args)


kappa = sp.Symbol("kappa", positive=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"ansatz": [BUBBLE * v]}, r"ansatz must be a dict unknown -> expression"),
    ({"ansatz": {q: BUBBLE * v}}, r"ansatz given for q\(x, y\), which is not a declared unknown"),
    ({"ansatz": {u: BUBBLE * u}}, r"the ansatz of u\(x, y\) contains the unknown u\(x, y\): write it in a new function"),
    ({"ansatz": {u: BUBBLE}}, r"must contain exactly one function, the network's output for u\(x, y\).*found 0"),
    ({"ansatz": {u: BUBBLE * v * sp.Function("w")(x, y)}}, r"exactly one function.*found 2: v\(x, y\), w\(x, y\)"),
    ({"ansatz": {u: BUBBLE * v.diff(x)}}, r"contains a derivative; it must be algebraic in the network's function"),
    ({"ansatz": {u: BUBBLE * sp.Function("v")(y, x)}}, r"must be applied to the domain's variables in their order, v\(x, y\)"),
    ({"ansatz": {u: BUBBLE * sp.Function("x_")(x, y)}, "parameters": {sp.Symbol("x_"): 1}},
     r"has the name of a variable, parameter or unknown"),
    ({"ansatz": {u: BUBBLE * v * kappa}, "parameters": {kappa: Learned(1.0)},
      "interior": -(u.diff(x, 2) + u.diff(y, 2)) * kappa - F},
     r"contains the learned parameter\(s\) kappa; an ansatz may use the variables and fixed parameters only"),
    ({"ansatz": {u: BUBBLE * v + sp.Symbol("g")}}, r"undeclared symbol\(s\) g"),
    ({"interior": -(v.diff(x, 2) + v.diff(y, 2)) - F},
     r"v\(x, y\) is the network's output in the ansatz of u\(x, y\): write the residual in the unknown"),
    # the second derivative of |x − 1/2| is 2 δ(x − 1/2), which no network output can match
    ({"ansatz": {u: BUBBLE * v + sp.Abs(x - sp.Rational(1, 2))}},
     r"unsupported function DiracDelta in DiracDelta\(x - 1/2\), in the residual with the ansatz put in"),
])
def test_bad_ansatzes_are_spec_errors(kwargs, message):
    with pytest.raises(pdec.SpecError, match=message):
        _hard(**kwargs).validate()


def test_two_unknowns_may_not_share_the_networks_function():
    problem = Problem(name="two", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u, q],
                      interior=[u.diff(x, 2) + q, q - u], ansatz={u: x * v, q: y * v})
    with pytest.raises(pdec.SpecError, match=r"the ansatzes of u\(x, y\) and q\(x, y\) share the function v"):
        problem.validate()


def test_the_compiler_receives_the_residual_in_the_networks_output():
    """−Δ(b v) − f by the product rule: b Δv + 2 ∇b·∇v + v Δb, with b = x(1 − x)y(1 − y)."""
    problem = _hard()
    (residual,) = problem.interior_residuals
    assert residual.has(u) and not residual.has(v)   # as written, in u
    formed = problem.network_form(residual)
    expected = -(BUBBLE * (v.diff(x, 2) + v.diff(y, 2)) + 2 * BUBBLE.diff(x) * v.diff(x)
                 + 2 * BUBBLE.diff(y) * v.diff(y) + v * (BUBBLE.diff(x, 2) + BUBBLE.diff(y, 2))) - F
    assert sp.expand(formed - expected) == 0
    assert problem.outputs == [v]
    analysis = analyse(problem.validate())
    assert analysis.unknown_names == ("v",)
    # without an ansatz nothing changes
    plain = dataclasses.replace(problem, ansatz=None)
    assert plain.outputs == [u] and plain.network_form(residual) == residual


def test_forward_returns_the_solution_through_the_ansatz_and_holds_the_boundary():
    model = pdec.compile(pdec.load_spec(ROOT / "specs" / "poisson2d_hard.py"), hidden=(7, 5), write=False).model
    randomize_weights(model)
    assert model.unknowns == ("u",) and model.outputs == ("v",)
    g = torch.Generator().manual_seed(3)
    X = torch.rand(20, 2, generator=g, dtype=torch.float64)
    net = model.network(X)
    with torch.no_grad():
        solution = model(X)
        bubble = (X[:, 0] * (1 - X[:, 0]) * X[:, 1] * (1 - X[:, 1]))[:, None]
        torch.testing.assert_close(solution, bubble * net, rtol=1e-14, atol=0)
        reference = reference_solution(pdec.load_spec(ROOT / "specs" / "poisson2d_hard.py"), model)
        torch.testing.assert_close(solution, reference(X), rtol=1e-14, atol=0)
        faces = X.clone()
        faces[:5, 0], faces[5:10, 0], faces[10:15, 1], faces[15:, 1] = 0.0, 1.0, 0.0, 1.0
        assert model(faces).abs().max() == 0
        assert model.network(faces).abs().min() > 0   # the network itself is not zero there


def test_the_system_maps_each_output_to_its_unknown():
    problem = pdec.load_spec(ROOT / "tests" / "specs" / "ansatz_system.py")
    model = pdec.compile(problem, hidden=(5,), write=False).model
    randomize_weights(model)
    assert model.unknowns == ("u", "q") and model.outputs == ("w", "q")
    X = torch.rand(9, 2, dtype=torch.float64)
    with torch.no_grad():
        net = model.network(X)
        torch.testing.assert_close(model(X), torch.stack([net[:, 0].exp(), net[:, 1]], dim=1), rtol=1e-15, atol=0)


def test_no_warning_for_missing_conditions_that_the_ansatz_holds():
    with warnings.catch_warnings():
        warnings.simplefilter("error", PdecWarning)
        _hard().validate()
        pdec.load_spec(ROOT / "specs" / "heat1d_hard.py")   # no initial condition: the ansatz has it
    with pytest.warns(PdecWarning, match="no conditions"):
        _hard(ansatz=None).validate()


def test_the_ansatz_enters_the_fingerprint():
    assert _hard().fingerprint() != _hard(ansatz={u: 2 * BUBBLE * v}).fingerprint()
    assert _hard().fingerprint() == _hard().fingerprint()


def test_check_compares_the_faces_the_ansatz_fixes_with_the_exact_solution():
    report = check_problem(_hard())
    assert report.passed, str(report)
    fixed = [r.term for r in report.results if r.term.startswith("ansatz")]
    assert fixed == ["ansatz u on x = 0", "ansatz u on x = 1", "ansatz u on y = 0", "ansatz u on y = 1"]
    # u = b·v + x·y fixes u to y on x = 1 and to x on y = 1, where u* = 0
    wrong = check_problem(_hard(ansatz={u: BUBBLE * v + x * y}))
    assert not wrong.passed
    failed = {r.term for r in wrong.results if not r.passed}
    assert failed == {"ansatz u on x = 1", "ansatz u on y = 1"}
    assert "fixes u there to other values than u*'s" in str(wrong)
    # the heat ansatz fixes u at t = 0 and on x = 0, 1 (not at t = 1)
    heat = check_problem(pdec.load_spec(ROOT / "specs" / "heat1d_hard.py"))
    assert heat.passed and [r.term for r in heat.results if r.term.startswith("ansatz")] == \
        ["ansatz u on t = 0", "ansatz u on x = 0", "ansatz u on x = 1"]
    # u = exp(w) fixes nothing
    system = check_problem(pdec.load_spec(ROOT / "tests" / "specs" / "ansatz_system.py"))
    assert system.passed and "fixes the unknown on none of the box's faces" in str(system)


def test_inspect_and_the_generated_module_name_the_ansatz(capsys):
    from pdec.cli import main

    assert main(["inspect", str(ROOT / "specs" / "poisson2d_hard.py")]) == 0
    out = capsys.readouterr().out
    assert "unknowns (u), network outputs (v)" in out
    assert "ansatz (hard constraint): u = v*x*y*(1 - x)*(1 - y); the terms are in v" in out
    source = (ROOT / "generated" / "poisson2d_hard.py").read_text()
    assert "def ansatz(X: torch.Tensor, net: torch.Tensor) -> torch.Tensor:" in source
    assert "outputs = ('v',)" in source and "unknowns = ('u',)" in source


def test_kfac_trains_the_network_through_the_ansatz_and_errors_are_of_the_solution(tmp_path):
    """A short KFAC run on the interior term alone: the loss falls, and the logged relative L2 is
    that of u = b·v against u*, recomputed here independently from the saved run."""
    # the default width; with one term KFAC's defaults are KFAC*'s average and zero factors, which
    # start slower than the paper's (README, "Hard constraints"): 150 steps, not 60
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / "poisson2d_hard.py"), write=False)
    run = pdec.train(compiled, "kfac", steps=150, seed=0, run_root=tmp_path / "runs", progress=False,
                     n_interior=200, n_eval=400)
    first, last = run.history[0], run.history[-1]
    assert set(k for k in last if k.startswith("loss_")) == {"loss_interior"}
    assert last["loss"] < 1e-2 * first["loss"]
    assert last["rel_l2"] < 5e-2
    saved = pdec.load_run(run.run_dir)
    g = torch.Generator().manual_seed(5)
    X = torch.rand(2000, 2, generator=g, dtype=torch.float64)
    with torch.no_grad():
        got = saved.model(X)[:, 0]
    exact = torch.sin(torch.pi * X[:, 0]) * torch.sin(torch.pi * X[:, 1])
    rel = ((got - exact).norm() / exact.norm()).item()
    assert rel == pytest.approx(last["rel_l2"], rel=0.25)   # other points, the same error


def test_kfac_defaults_for_a_loss_of_one_term_and_what_overrides_them(tmp_path, capsys):
    """Without condition terms KFAC takes its ONE_TERM_DEFAULTS for ema and init (recorded in
    config.json); a value given with --set wins, a loss with a condition term keeps the paper's,
    and KFAC* keeps its own."""
    from pdec.optim.kfac import KFAC, KFACStar

    paper = {k: KFAC.HYPERPARAMETERS[k].default for k in ("ema", "init")}
    assert KFAC.ONE_TERM_DEFAULTS != paper
    hard = pdec.compile(pdec.load_spec(ROOT / "specs" / "poisson2d_hard.py"), hidden=(8,), write=False)
    soft = pdec.compile(pdec.load_spec(ROOT / "specs" / "poisson2d.py"), hidden=(8,), write=False)
    small = dict(steps=1, seed=0, progress=False, n_interior=20, n_condition=8, n_eval=20)
    run = pdec.train(hard, "kfac", run_root=tmp_path, **{**small, "progress": True})
    assert {k: run.hyper[k] for k in paper} == KFAC.ONE_TERM_DEFAULTS
    assert ('kfac: defaults for a loss whose only term is the interior residual: ema = 0.9263314, init = "zero"'
            in capsys.readouterr().err)
    assert json.loads((run.run_dir / "config.json").read_text())["defaults_for_the_loss"] == ["ema", "init"]
    run = pdec.train(hard, "kfac", sets=["ema=0.5"], save=False, **small)
    assert (run.hyper["ema"], run.hyper["init"]) == (0.5, KFAC.ONE_TERM_DEFAULTS["init"])
    config = tmp_path / "run.toml"
    config.write_text('[kfac]\ninit = "identity"\n')   # a file's value wins as well
    run = pdec.train(hard, "kfac", config_file=config, save=False, **small)
    assert (run.hyper["ema"], run.hyper["init"]) == (KFAC.ONE_TERM_DEFAULTS["ema"], "identity")
    run = pdec.train(soft, "kfac", run_root=tmp_path, **small)
    assert {k: run.hyper[k] for k in paper} == paper
    assert "defaults_for_the_loss" not in json.loads((run.run_dir / "config.json").read_text())
    run = pdec.train(hard, "kfac-star", save=False, **small)
    assert {k: run.hyper[k] for k in paper} == {k: KFACStar.HYPERPARAMETERS[k].default for k in paper}


def test_boundary_values_other_than_zero_and_a_kept_condition_train_too(tmp_path):
    """u = x + x(1 − x)·v fixes u = x on the faces x = 0 and x = 1 only; a Dirichlet condition on
    the whole boundary stays a loss term beside it. L-BFGS fits u* = x + sin πx sin πy."""
    exact = x + sp.sin(sp.pi * x) * sp.sin(sp.pi * y)
    problem = _hard(name="hard_shift", ansatz={u: x + x * (1 - x) * v},   # fixes x = 0 and x = 1 only
                    conditions={"sides": Condition(u - exact, on=Boundary())}, exact={u: exact})
    assert check_problem(problem).passed
    compiled = pdec.compile(problem, hidden=(16,), write=False)
    run = pdec.train(compiled, "lbfgs", steps=60, seed=0, save=False, progress=False, n_interior=200,
                     n_condition=80, n_eval=400)
    assert run.history[-1]["rel_l2"] < 1e-2


def test_a_network_function_named_like_the_methods_argument_is_renamed():
    """The generated ansatz(X, net) reads its outputs from ``net``: a network function (or a
    variable) of that name gets another local name, so the solution stays right."""
    net = sp.Function("net")(x, y)
    problem = Problem(name="named", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u, q],
                      interior=[-(u.diff(x, 2) + u.diff(y, 2)) + q - F, q - u], ansatz={u: BUBBLE * net},
                      conditions={"q_wall": Condition(q, on=Boundary())})
    model = pdec.compile(problem, hidden=(5,), write=False).model
    randomize_weights(model)
    X = torch.rand(11, 2, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(X), reference_solution(problem, model)(X), rtol=1e-14, atol=0)


def test_an_ansatz_undefined_where_the_network_is_zero_still_fixes_its_faces():
    """u = b/w: on a face b = 0, so u = 0 there whatever w is (simplified, not evaluated at w = 0)."""
    w = sp.Function("w")(x, y)
    problem = _hard(ansatz={u: BUBBLE / w})
    assert set(problem.ansatz_faces(u)) == {(x, "min"), (x, "max"), (y, "min"), (y, "max")}
    report = check_problem(problem)
    assert report.passed, str(report)


def test_doubts_look_at_the_faces_the_ansatz_fixes():
    """No warning for a condition the ansatz holds; a warning for one it does not: heat with
    u = x(1 − x)·v has no initial value, and u = e^w fixes no face at all."""
    t = sp.Symbol("t", real=True)
    uh, vh = sp.Function("u")(t, x), sp.Function("v")(t, x)
    heat = Problem(name="heat", domain=Box({t: (0, 1), x: (0, 1)}, time=t), unknowns=[uh],
                   interior=uh.diff(t) - uh.diff(x, 2), ansatz={uh: x * (1 - x) * vh})
    with pytest.warns(PdecWarning, match="no condition on the initial slice t = 0"):
        heat.validate()
    with pytest.warns(PdecWarning, match="no conditions"):
        _hard(ansatz={u: sp.exp(v)}).validate()
    a = sp.Symbol("a", positive=True)   # a parameter read by the ansatz only is used
    with warnings.catch_warnings():
        warnings.simplefilter("error", PdecWarning)
        _hard(ansatz={u: x * (a - x) * y * (1 - y) * v}, parameters={a: 1}).validate()


def test_an_exact_solution_in_the_networks_output_is_refused():
    with pytest.raises(pdec.SpecError, match=r"v\(x, y\) is the network's output in the ansatz of u\(x, y\): "
                                             r"exact\[u\(x, y\)\] must be an expression of the variables"):
        _hard(exact={u: v * x}).validate()


def test_a_condition_the_ansatz_already_holds_gets_a_warning():
    """Condition(u, on=Boundary()) beside u = b·v: its residual is 0 on every face whatever v is.
    A Neumann condition there still reads the network, and the shifted ansatz's kept Dirichlet
    condition holds on x = 0, 1 only: neither is flagged."""
    with pytest.warns(PdecWarning, match=r"condition 'wall' is held by the ansatz on its faces \(x = min, x = max, "
                                         r"y = min, y = max\).*trains nothing"):
        _hard(conditions={"wall": Condition(u, on=Boundary())}).validate()
    exact = x + sp.sin(sp.pi * x) * sp.sin(sp.pi * y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PdecWarning)
        _hard(conditions={"flux": Condition(u.diff(x) - sp.pi * sp.sin(sp.pi * y), on=pdec.Face(x, "min"))}).validate()
        _hard(ansatz={u: x + x * (1 - x) * v}, conditions={"sides": Condition(u - exact, on=Boundary())},
              exact={u: exact}).validate()


def test_a_removable_singularity_is_no_fixed_face():
    """u = y(1 − y)·sin(x)/x·v: at x = 0 SymPy evaluates nan (the limit y(1 − y)·v holds v), so
    that face is not one the ansatz fixes; y = 0 and y = 1 are."""
    problem = _hard(domain=Box({x: (0, 1), y: (0, 1)}), ansatz={u: y * (1 - y) * sp.sin(x) / x * v})
    assert set(problem.ansatz_faces(u)) == {(y, "min"), (y, "max")}


def test_a_condition_that_contradicts_the_ansatz_is_named():
    """Condition(u − 1) on x = 0 beside u = b·v: the ansatz fixes the residual to −1 there."""
    with pytest.warns(PdecWarning, match=r"condition 'left' disagrees with the ansatz: on x = min the ansatz "
                                         r"fixes its residual to -1, not 0"):
        _hard(conditions={"left": Condition(u - 1, on=pdec.Face(x, "min"))}).validate()


def test_no_condition_warning_names_the_unknown_no_ansatz_fixes():
    """A system whose ansatz fixes u on every face but q nowhere, with no conditions."""
    problem = Problem(name="pair", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u, q],
                      interior=[-(u.diff(x, 2) + u.diff(y, 2)) - q, -(q.diff(x, 2) + q.diff(y, 2)) - F],
                      ansatz={u: BUBBLE * v})
    with pytest.warns(PdecWarning, match=r"no conditions: .*\(q\(x, y\) has no ansatz that fixes it on a face\)"):
        problem.validate()
