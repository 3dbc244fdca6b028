"""Bad input: a clear SpecError naming the spec file and the offending term (no traceback soup)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import pdec

ROOT_SPECS = Path(__file__).resolve().parents[1] / "specs"

HEADER = """
import sympy as sp
from pdec import Boundary, Box, Condition, Problem
x, y = sp.symbols("x y")
u = sp.Function("u")(x, y)
"""

CASES = {
    "undeclared_variable": ("w = sp.Function('w')(x, sp.Symbol('z'))\n"
                            "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[w], interior=w)",
                            r"applied to undeclared variable\(s\) z"),
    "unknown_applied_wrong": ("z = sp.Symbol('z')\n"
                              "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                              "interior=u.diff(x, 2) + sp.Function('u')(x, z))",
                              r"term 'interior'.*undeclared variable\(s\) z"),
    "derivative_undeclared": ("z = sp.Symbol('z')\n"
                              "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                              "interior=sp.Derivative(u, z))",
                              r"term 'interior'.*w\.r\.t\. undeclared variable z"),
    "condition_without_region": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                                 "interior=u.diff(x, 2), conditions={'bc': Condition(u)})",
                                 r"term 'condition bc'.*no region"),
    "condition_bare_expression": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                                  "interior=u.diff(x, 2), conditions={'bc': u})",
                                  r"term 'condition bc'.*no region"),
    "unsupported_function": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                             "interior=u.diff(x, 2) - sp.besselj(0, x))",
                             r"term 'interior'.*unsupported function besselj"),
    "non_finite_constant": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                            "interior=u.diff(x, 2) - sp.oo * x)",
                            r"term 'interior'.*non-finite constant"),
    "non_finite_parameter": ("k = sp.Symbol('k')\n"
                             "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                             "interior=k * u.diff(x, 2), parameters={k: float('nan')})",
                             r"parameter k.*finite"),
    "undeclared_symbol": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                          "interior=sp.Symbol('kappa') * u.diff(x, 2))",
                          r"term 'interior'.*undeclared symbol\(s\) kappa"),
    "undeclared_unknown": ("v = sp.Function('v')(x, y)\n"
                           "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                           "interior=u.diff(x, 2) + v)",
                           r"term 'interior'.*v\(x, y\) is not a declared unknown"),
    "bad_bounds": ("problem = Problem(name='p', domain=Box({x: (1, 0), y: (0, 1)}), unknowns=[u], interior=u)",
                   r"bounds of x"),
    "import_fails": ("problem = Problem(name='p', domain=Box({x: (0, 1)}), unknowns=[u], interior=1/0)",
                     r"failed to import: ZeroDivisionError.*line"),
    "combined_part_needs_time": ("from pdec import Initial\n"
                                 "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                                 "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Boundary() | Initial())})",
                                 r"term 'condition bc'.*initial slice needs a time variable"),
    "no_problem": ("something_else = 1", r"defines no problem"),
    "not_a_problem": ("problem = 42", r"`problem` is a int"),
    # each of these trained to "completed" before, on a problem other than the one written
    "condition_named_interior": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                                 "interior=u.diff(x, 2) - 1, conditions={'interior': Condition(u, on=Boundary())})",
                                 r"may not be named 'interior'"),
    "unknown_on_fewer_variables": ("w = sp.Function('w')(x)\n"
                                   "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[w], "
                                   "interior=w.diff(x, 2) - 1, conditions={'bc': Condition(w, on=Boundary())})",
                                   r"term 'w\(x\)'.*does not depend on y.*declare it as w\(x, y\)"),
    "interior_without_unknown": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                                 "interior=sp.sin(x) * y, conditions={'bc': Condition(u, on=Boundary())})",
                                 r"term 'interior'.*contains no unknown"),
    "condition_without_unknown": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                                  "interior=u.diff(x, 2) - 1, conditions={'bc': Condition(x - 1, on=Boundary())})",
                                  r"term 'condition bc'.*contains no unknown"),
    "unknown_in_no_residual": ("v = sp.Function('v')(x, y)\n"
                               "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u, v], "
                               "interior=u.diff(x, 2) - 1, conditions={'bc': Condition(u, on=Boundary())})",
                               r"unknown v\(x, y\) appears in no residual or condition"),
    "exact_as_list": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                      "interior=u.diff(x, 2) - 1, conditions={'bc': Condition(u, on=Boundary())}, exact=[x * y])",
                      r"exact must be a dict unknown -> expression.*got list"),
    "variable_with_other_assumptions": ("xr = sp.Symbol('x', real=True)\nw = sp.Function('w')(x, y)\n"
                                        "problem = Problem(name='p', domain=Box({xr: (0, 1), y: (0, 1)}), unknowns=[w], "
                                        "interior=w)",
                                        r"undeclared variable\(s\) x.*other SymPy assumptions"),
    "unknowns_not_a_list": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=u, "
                            "interior=u.diff(x, 2))",
                            r"unknowns must be a list, such as unknowns=\[u\(x, y\)\]"),
    "parameters_as_list": ("k = sp.Symbol('k')\nproblem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), "
                           "unknowns=[u], interior=k * u.diff(x, 2), parameters=[k])",
                           r"parameters must be a dict symbol -> value.*got list"),
    "box_as_list": ("problem = Problem(name='p', domain=Box([(x, (0, 1)), (y, (0, 1))]), unknowns=[u], "
                    "interior=u.diff(x, 2))",
                    r"Box takes a dict variable -> \(lo, hi\).*got list"),
    "time_as_string": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}, time='x'), unknowns=[u], "
                       "interior=u.diff(x, 2))",
                       r"time must be the variable's Symbol \(time=t\), not the string 'x'"),
    "parameter_in_bounds": ("L = sp.Symbol('L')\nproblem = Problem(name='p', domain=Box({x: (0, L), y: (0, 1)}), "
                            "unknowns=[u], interior=u.diff(x, 2), parameters={L: 2})",
                            r"bounds of x.*not the symbol\(s\) L"),
    "parameter_with_other_assumptions": ("c = sp.Symbol('c', positive=True)\n"
                                         "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), "
                                         "unknowns=[u], interior=c * u.diff(x, 2), parameters={sp.Symbol('c'): 2})",
                                         r"undeclared symbol\(s\) c.*other SymPy assumptions"),
    "equation_as_residual": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                             "interior=sp.Eq(u.diff(x, 2), 1))",
                             r"is an equation; write its residual, lhs - rhs"),
    "derivative_that_vanishes": ("t = sp.Symbol('t')\nproblem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), "
                                 "unknowns=[u], interior=[u.diff(x, 2), u.diff(t)])",
                                 r"interior\[1\].*contains no unknown.*does not depend on into 0"),
    "vector_condition_with_a_bad_component": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), "
                                              "unknowns=[u], interior=u.diff(x, 2), "
                                              "conditions={'bc': Condition([u, sp.Symbol('q')], on=Boundary())})",
                                              r"condition bc\[1\].*undeclared symbol\(s\) q"),
    "weight_zero": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                    "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Boundary(), weight=0)})",
                    r"condition bc.*weight must be a positive number, such as weight=10, got 0"),
    "weight_text": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                    "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Boundary(), weight='10')})",
                    r"condition bc.*weight must be a positive number.*got '10'"),
    "weight_nan": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                   "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Boundary(), weight=float('nan'))})",
                   r"condition bc.*weight must be a positive number.*got nan"),
    "weight_symbol": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                      "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Boundary(), weight=x)})",
                      r"condition bc.*weight must be a positive number.*got x"),
    "interior_weight_negative": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                                 "interior=u.diff(x, 2), interior_weight=-1, "
                                 "conditions={'bc': Condition(u, on=Boundary())})",
                                 r"term 'interior'.*interior_weight must be a positive number, such as "
                                 r"interior_weight=10, got -1"),
    "name_of_a_module": ("problem = Problem(name='torch', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                         "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Boundary())})",
                         r"name 'torch' is taken: generated/torch.py would shadow the module torch"),
    "region_class": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                     "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Boundary)})",
                     r"condition bc.*on=Boundary is the class; write on=Boundary\(\)"),
    "tuple_reversed": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                       "interior=u.diff(x, 2), conditions={'bc': (Boundary(), u)})",
                       r"region u\(x, y\) is not a pdec region: the residual comes first"),
    "regions_as_a_list": ("from pdec import Initial, SpatialBoundary\nt = sp.Symbol('t')\n"
                          "w = sp.Function('w')(t, x)\n"
                          "problem = Problem(name='p', domain=Box({t: (0, 1), x: (0, 1)}, time=t), unknowns=[w], "
                          "interior=w.diff(t), conditions={'bc': Condition(w, on=[Initial(), SpatialBoundary()])})",
                          r"is not a pdec region: combine regions with \|, such as on=Initial\(\) \| "
                          r"SpatialBoundary\(\)"),
    "face_of_a_string": ("from pdec import Face\n"
                         "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                         "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Face('x', 'min'))})",
                         r"Face takes the variable's Symbol, Face\(x, 'min'\), not the string 'x'"),
    "periodic_condition": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                           "interior=u.diff(x, 2), conditions={'bc': Condition(u.subs(x, 0) - u.subs(x, 1), "
                           "on=Boundary())})",
                           r"u\(0, y\) evaluates the unknown away from its term's own point.*"
                           r"Condition\(u\(x, y\) - g, on=Face\(x, 'min'\)\).*"
                           r"Condition\(u\(x, y\), on=Periodic\(x\)\); nonlocal conditions cannot be written"),
    "periodic_in_time": ("from pdec import Periodic\nt = sp.Symbol('t')\nw = sp.Function('w')(t, x)\n"
                         "problem = Problem(name='p', domain=Box({t: (0, 1), x: (0, 1)}, time=t), unknowns=[w], "
                         "interior=w.diff(t) - w.diff(x, 2), conditions={'bc': Condition(w, on=Periodic(t))})",
                         r"Periodic\(t\): t is the time variable; periodicity pairs the faces of a spatial variable"),
    "periodic_of_a_string": ("from pdec import Periodic\n"
                             "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                             "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Periodic('x'))})",
                             r"Periodic takes the variable's Symbol, Periodic\(x\), not the string 'x'"),
    "periodic_undeclared": ("from pdec import Periodic\n"
                            "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                            "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Periodic(sp.Symbol('z')))})",
                            r"periodic variable z is not a domain variable"),
    "periodic_combined": ("from pdec import Face, Periodic\n"
                          "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                          "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Periodic(x) | Face(y, 'min'))})",
                          r"Periodic\(x\) cannot be combined with other regions: its residual pairs two points"),
    "periodic_cut_domain": ("from pdec import Periodic\n"
                            "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}, where=x + y < 1.5), "
                            "unknowns=[u], interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Periodic(x))})",
                            r"Periodic\(x\) needs the whole box, but the domain is the part of the box where"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_spec_gives_clear_error(tmp_path, name):
    body, pattern = CASES[name]
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + body + "\n")
    with pytest.raises(pdec.SpecError, match=pattern) as info:
        pdec.load_spec(path)
    assert str(path) in str(info.value)  # names the spec file


def test_missing_file():
    with pytest.raises(pdec.SpecError, match="no such spec file"):
        pdec.load_spec("specs/does_not_exist.py")


def test_cli_prints_message_without_traceback(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(HEADER + CASES["unsupported_function"][0] + "\n")
    proc = subprocess.run([sys.executable, "-m", "pdec", "inspect", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unsupported function besselj" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compile_takes_a_spec_path_and_refuses_other_objects():
    from_path = pdec.compile("specs/heat1d.py", hidden=(4,), write=False)
    from_problem = pdec.compile(pdec.load_spec("specs/heat1d.py"), hidden=(4,), write=False)
    assert from_path.source == from_problem.source
    with pytest.raises(pdec.SpecError, match="no such spec file"):
        pdec.compile("specs/does_not_exist.py", write=False)
    with pytest.raises(TypeError, match="takes a Problem or the path of a spec file, got int"):
        pdec.compile(42, write=False)


def test_unknown_activation_is_clear():
    problem = pdec.load_spec("specs/heat1d.py")
    with pytest.raises(pdec.PdecError, match="unknown activation 'relu6'"):
        pdec.compile(problem, activation="relu6", write=False)   # a bare name, not the identity
    with pytest.raises(pdec.PdecError, match="unknown activation 'z \\+'"):
        pdec.compile(problem, activation="z +", write=False)
    with pytest.raises(pdec.PdecError, match="activation uses Relu, which has no torch equivalent"):
        pdec.compile(problem, activation="Relu(z)", write=False)


def test_an_activation_given_as_text_is_a_sympy_expression(capsys):
    """--activation 'z*tanh(z)' (or activation = "..." in a config) is the expression; the header's
    regeneration command and `pdec inspect` give it back in a form the shell passes whole."""
    import shlex

    import sympy as sp

    from pdec.cli import main

    problem = pdec.load_spec("specs/heat1d.py")
    z = sp.Symbol("z")
    from_text = pdec.compile(problem, hidden=(4,), activation="z*tanh(z)", write=False)
    from_expr = pdec.compile(problem, hidden=(4,), activation=z * sp.tanh(z), write=False)
    assert from_text.source == from_expr.source
    regen = next(line for line in from_text.source.splitlines() if line.startswith("# Regenerate with: "))
    assert shlex.split(regen[len("# Regenerate with: "):]) == [
        "pdec", "compile", "specs/heat1d.py", "--hidden", "4", "--activation", "z*tanh(z)"]
    assert main(["inspect", "specs/heat1d.py", "--activation", "z*tanh(z)", "--hidden", "4"]) == 0
    assert "--activation 'z*tanh(z)'" in capsys.readouterr().out


def test_combined_regions_flatten_and_describe():
    r = pdec.Initial() | pdec.SpatialBoundary() | pdec.Boundary()
    assert r == pdec.Combined(pdec.Initial(), pdec.Combined(pdec.SpatialBoundary(), pdec.Boundary()))
    assert r.parts == (pdec.Initial(), pdec.SpatialBoundary(), pdec.Boundary())
    assert r.describe() == "initial slice + spatial boundary + whole boundary"
    with pytest.raises(TypeError):
        pdec.Initial() | 3


def test_inspect_writes_nothing(tmp_path):
    """`pdec inspect` with another mode prints the plan and the command that writes the module; it
    leaves generated/ (the shipped specs' default modules) alone."""
    spec = Path(__file__).resolve().parents[1] / "specs" / "heat1d.py"
    proc = subprocess.run([sys.executable, "-m", "pdec", "inspect", str(spec), "--mode", "laplacian"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "term 'interior': mode laplacian, S = 4" in proc.stdout
    assert f"pdec compile {spec} --mode laplacian writes generated/heat1d.py" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_fingerprint_follows_what_the_problem_computes():
    import sympy as sp

    from pdec import Boundary, Box, Condition, Problem

    x, y = sp.symbols("x y")
    u = sp.Function("u")(x, y)

    def problem(bounds, interior=u.diff(x, 2) + u.diff(y, 2), **weight):
        return Problem(name="fp", domain=Box(bounds), unknowns=[u], interior=interior,
                       conditions={"b": Condition(u, on=Boundary(), **weight)})

    base = problem({x: (0, 1), y: (0, 1)}).fingerprint()
    assert problem({x: (0, 1.0), y: (sp.Integer(0), 1)}).fingerprint() == base      # same numbers
    assert problem({y: (0, 1), x: (0, 1)}).fingerprint() != base   # the network's input columns swap
    assert problem({x: (0, 2), y: (0, 1)}).fingerprint() != base
    assert problem({x: (0, 1), y: (0, 1)}, u.diff(x, 2) - u.diff(y, 2)).fingerprint() != base
    assert problem({x: (0, 1), y: (0, 1)}, weight=1.0).fingerprint() == base
    assert problem({x: (0, 1), y: (0, 1)}, weight=10).fingerprint() != base   # another loss
    interior_weighted = problem({x: (0, 1), y: (0, 1)})
    interior_weighted.interior_weight = 0.5
    assert interior_weighted.fingerprint() not in (base, problem({x: (0, 1), y: (0, 1)}, weight=2).fingerprint())


def test_compile_reads_widths_and_refuses_bad_ones_and_devices():
    spec = ROOT_SPECS / "heat1d.py"
    for hidden, widths in [(16, (2, 16, 1)), ("16,8", (2, 16, 8, 1)), ([8, 4], (2, 8, 4, 1))]:
        assert tuple(pdec.compile(spec, hidden=hidden, write=False).model.widths) == widths
    for bad in ["x", 0, 2.5, True, (8, -1), ()]:
        with pytest.raises(pdec.PdecError, match="give the hidden layers' widths"):
            pdec.compile(spec, hidden=bad, write=False)
    with pytest.raises(pdec.PdecError, match="device 'gpu' is not a torch device"):
        pdec.compile(spec, device="gpu", write=False)


def test_train_takes_a_compiled_model():
    with pytest.raises(pdec.PdecError, match=r"compile it first: pdec.train\(pdec.compile\(problem\)"):
        pdec.train(pdec.load_spec(ROOT_SPECS / "heat1d.py"), "adam", steps=1)


DOUBTS = {
    "no_conditions": ("problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                      "interior=u.diff(x, 2) + u.diff(y, 2))",
                      r"no conditions: without boundary or initial values"),
    "underdetermined_system": ("v = sp.Function('v')(x, y)\n"
                               "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u, v], "
                               "interior=u.diff(x, 2) + v, conditions={'bc': Condition([u, v], on=Boundary())})",
                               r"1 interior residual\(s\) for 2 unknowns"),
    "boundary_with_time": ("t = sp.Symbol('t')\nw = sp.Function('w')(t, x)\n"
                           "problem = Problem(name='p', domain=Box({t: (0, 2), x: (0, 1)}, time=t), unknowns=[w], "
                           "interior=w.diff(t) - w.diff(x, 2), conditions={'bc': Condition(w, on=Boundary())})",
                           r"condition 'bc' is on Boundary\(\), every face of the box, so also on the final time "
                           r"t = 2; an initial value problem has on=Initial\(\) \| SpatialBoundary\(\) \(if the "
                           r"final time is meant, name the faces: \.\.\. \| Face\(t, 'max'\)\)"),
    "boundary_with_time_only": ("t = sp.Symbol('t')\nw = sp.Function('w')(t)\n"
                                "problem = Problem(name='p', domain=Box({t: (0, 2)}, time=t), unknowns=[w], "
                                "interior=w.diff(t) - w, conditions={'w0': Condition(w - 1, on=Boundary())})",
                                r"so also on the final time t = 2; an initial value problem has on=Initial\(\) \("),
    "face_twice": ("from pdec import Face\n"
                   "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                   "interior=u.diff(x, 2), conditions={'bc': Condition(u, on=Boundary() | Face(x, 'min'))})",
                   r"condition 'bc' holds the face x = min twice, in Boundary\(\) and in Face\(x, 'min'\), so its "
                   r"points weigh double there"),
    "spatial_boundary_in_boundary": ("t = sp.Symbol('t')\nw = sp.Function('w')(t, x)\n"
                                     "from pdec import SpatialBoundary\n"
                                     "problem = Problem(name='p', domain=Box({t: (0, 1), x: (0, 1)}, time=t), "
                                     "unknowns=[w], interior=w.diff(t) - w.diff(x, 2), "
                                     "conditions={'bc': Condition(w, on=Boundary() | SpatialBoundary())})",
                                     r"holds the face x = min twice, in Boundary\(\) and in SpatialBoundary\(\)"),
    "initial_and_its_face": ("t = sp.Symbol('t')\nw = sp.Function('w')(t, x)\n"
                             "from pdec import Face, Initial, SpatialBoundary\n"
                             "problem = Problem(name='p', domain=Box({t: (0, 1), x: (0, 1)}, time=t), "
                             "unknowns=[w], interior=w.diff(t) - w.diff(x, 2), "
                             "conditions={'bc': Condition(w, on=Initial() | Face(t, 'min') | SpatialBoundary())})",
                             r"holds the face t = min twice, in Initial\(\) and in Face\(t, 'min'\)"),
    "unused_parameter": ("k, c = sp.symbols('k c')\n"
                         "problem = Problem(name='p', domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u], "
                         "interior=c * u.diff(x, 2), parameters={k: 2, c: 1}, "
                         "conditions={'bc': Condition(u, on=Boundary())})",
                         r"parameter\(s\) k appear in no residual, condition or exact solution"),
}


@pytest.mark.parametrize("name", DOUBTS)
def test_a_likely_mistake_is_a_warning(tmp_path, name):
    body, pattern = DOUBTS[name]
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + body + "\n")
    with pytest.warns(pdec.PdecWarning) as record:
        pdec.load_spec(path)
    assert any(re.search(pattern, str(w.message)) for w in record), [str(w.message) for w in record]
    assert all(str(path) in str(w.message) for w in record)   # names the spec file
    assert len(record) == 1 or name == "spatial_boundary_in_boundary"   # (Boundary() with time, too)


def test_shipped_and_test_specs_raise_no_doubt():
    from conftest import SHIPPED_SPECS, TEST_SPECS

    for path in [*SHIPPED_SPECS, *TEST_SPECS]:
        assert pdec.load_spec(path).doubts() == [], path


def test_a_second_order_equation_in_time_is_told_about_its_missing_initial_derivative():
    """u_tt − u_xx = 0 needs u and ∂_t u at t = 0: one condition on the initial face, or an ansatz
    u = g + t·b·v (which fixes u there, not ∂_t u), gets the doubt; a second condition or the
    factor t² does not."""
    import sympy as sp

    from pdec import Box, Condition, Initial, Problem, SpatialBoundary

    t, s = sp.symbols("t s", real=True)
    w, q = sp.Function("w")(t, s), sp.Function("q")(t, s)
    exact = sp.sin(sp.pi * s) * sp.cos(sp.pi * t)
    base = dict(name="wave", domain=Box({t: (0, 1), s: (0, 1)}, time=t), unknowns=[w],
                interior=w.diff(t, 2) - w.diff(s, 2), exact={w: exact})
    values = {"ib": Condition(w - exact, on=Initial() | SpatialBoundary())}

    def doubts(**kwargs):
        return [d for d in Problem(**{**base, **kwargs}).doubts() if "of order 2 in t" in d]

    message = ("w is of order 2 in t: its initial values are w and its first 1 derivative(s) in t at t = 0, and the "
               "conditions on the initial face and the ansatz give 1 of them; add e.g. "
               "Condition(w.diff(t) - w1, on=Initial()), or write the ansatz's network term with the factor t**2")
    assert doubts(conditions=values) == [message]
    assert doubts(conditions={**values, "velocity": Condition(w.diff(t), on=Initial())}) == []
    assert doubts(ansatz={w: sp.sin(sp.pi * s) + t * s * (1 - s) * q}) == [message]
    assert doubts(ansatz={w: sp.sin(sp.pi * s) + t**2 * s * (1 - s) * q}) == []
    # a first-order equation in time needs its value only
    assert doubts(interior=w.diff(t) - w.diff(s, 2), conditions=values) == []
