"""Domains cut from the box by ``Box(..., where=…)``: validation, sampling, check, the generated
``inside``, training and plots."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import pytest
import sympy as sp
import torch

import pdec
from pdec import Box, Condition, Face, Initial, Problem, Sampler, SpatialBoundary
from pdec.check import _points
from pdec.domain import domain_predicate
from pdec.train.plots import _blank_outside
from pdec.train.sampling import PointSampler
from conftest import ROOT

x, y, t = sp.symbols("x y t", real=True)
u = sp.Function("u")(x, y)
R = sp.Symbol("R", positive=True)
A = sp.Symbol("A", real=True)


def _lshape(**extra) -> Problem:
    """Laplace on the L-shape [-1, 1]² without its lower right quarter; u* = x y (harmonic)."""
    conditions = {"bottom": Condition(u - x * y, on=Face(y, "min")),
                  "right": Condition(u - x * y, on=Face(x, "max"))}
    return Problem(name="lshape", domain=Box({x: (-1, 1), y: (-1, 1)}, where=(x < 0) | (y > 0)), unknowns=[u],
                   interior=u.diff(x, 2) + u.diff(y, 2), conditions=conditions, exact={u: x * y},
                   **extra).validate()


def _disk() -> Problem:
    return pdec.load_spec(ROOT / "specs" / "poisson_disk.py")


def test_points_are_uniform_in_the_disk():
    s = PointSampler(_disk(), 4000, 50, seed=0, n_eval=3000)
    for X in (s.batch["interior"], s.eval_points):
        r2 = X.pow(2).sum(1)
        assert torch.all(r2 < 1)
        # uniform in the unit disk: r² ~ U(0, 1) (mean 1/2, sd of the mean 0.29/√N < 0.0053)
        assert abs(float(r2.mean()) - 0.5) < 0.02
        assert abs(float((X[:, 0] > 0).double().mean()) - 0.5) < 0.04
    # the boundary term takes the spec's Sampler points, on the circle
    assert torch.allclose(s.batch["boundary"].pow(2).sum(1), torch.ones(50, dtype=torch.float64))
    # one seed, the same points; resampling never moves the evaluation set
    other = PointSampler(_disk(), 4000, 50, seed=0, n_eval=3000)
    assert torch.equal(other.batch["interior"], s.batch["interior"])
    other.resample()
    assert torch.equal(other.eval_points, s.eval_points)
    assert not torch.equal(other.batch["interior"], s.batch["interior"])


def test_faces_keep_their_part_inside_the_l_shape():
    problem = _lshape()
    s = PointSampler(problem, 3000, 400, seed=1)
    X = s.batch["interior"]
    assert torch.all((X[:, 0] < 0) | (X[:, 1] > 0))
    # three equal quarters of the box
    quarters = [((X[:, 0] < 0) & (X[:, 1] > 0)), ((X[:, 0] > 0) & (X[:, 1] > 0)), ((X[:, 0] < 0) & (X[:, 1] < 0))]
    for q in quarters:
        assert abs(float(q.double().mean()) - 1 / 3) < 0.04
    bottom, right = s.batch["bottom"], s.batch["right"]
    assert torch.all(bottom[:, 1] == -1) and torch.all(bottom[:, 0] < 0)
    assert torch.all(right[:, 0] == 1) and torch.all(right[:, 1] > 0)
    assert bottom[:, 0].min() < -0.9 and bottom[:, 0].max() > -0.1   # the whole half face, not a corner


def test_check_puts_its_points_in_the_domain():
    problem = _lshape()
    for region in (None, Face(y, "min")):
        points = _points(problem, region, 20, seed=3, digits=30)
        assert len(points) == 20
        assert all(pt[x] < 0 or pt[y] > 0 for pt in points)
    report = pdec.check_problem(problem)
    assert report.passed, str(report)


@pytest.mark.filterwarnings("ignore:.*no conditions")
def test_predicate_matches_sympy_on_random_points():
    where = sp.And(x**2 + y**2 < 1, sp.Or(x > sp.sin(y) / 2, ~(y < sp.Rational(3, 10))))
    problem = Problem(name="cut", domain=Box({x: (-1, 1), y: (-1, 1)}, where=where), unknowns=[u],
                      interior=u.diff(x, 2) - 1).validate()
    inside = domain_predicate(problem)
    X = torch.rand(400, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    expected = torch.tensor([where.subs({x: a, y: b}) is sp.true for a, b in X.tolist()])
    assert 50 < int(expected.sum()) < 350   # both outcomes occur
    assert torch.equal(inside(X), expected)
    # the generated module's own test is the same, and reads like the spec
    compiled = pdec.compile(problem, hidden=(4,), write=False)
    assert torch.equal(compiled.model.inside(X), expected)
    assert torch.equal(compiled.model.inside(X.reshape(20, 20, 2)), expected.reshape(20, 20))
    assert "return (x**2 + y**2 < 1) & ((y >= 0.3) | (x > 0.5*torch.sin(y)))" in compiled.source   # ~ pushed inside
    # a box without where: every point is inside
    box = pdec.compile(pdec.load_spec(ROOT / "specs" / "poisson2d.py"), hidden=(4,), write=False)
    assert torch.all(box.model.inside(X)) and domain_predicate(box.problem) is None


def test_parameters_in_where_are_substituted():
    problem = Problem(name="small_disk", domain=Box({x: (-1, 1), y: (-1, 1)}, where=x**2 + y**2 < R**2),
                      unknowns=[u], interior=u.diff(x, 2) + u.diff(y, 2) + 4,
                      conditions={"c": Condition(u, on=Sampler(lambda n, g: torch.zeros(n, 2), "origin"))},
                      parameters={R: sp.Rational(1, 2)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # R is used (in where): no unused-parameter warning
        problem.validate()
    X = PointSampler(problem, 500, 2, seed=0).batch["interior"]
    assert torch.all(X.pow(2).sum(1) < 0.25) and X.pow(2).sum(1).max() > 0.2
    wider = dataclasses.replace(problem, parameters={R: sp.Rational(3, 4)})
    assert wider.fingerprint() != problem.fingerprint()


def test_initial_slice_of_a_disk_in_time():
    v = sp.Function("v")(t, x, y)
    problem = Problem(name="heat_disk", domain=Box({t: (0, 1), x: (-1, 1), y: (-1, 1)}, time=t,
                                                   where=x**2 + y**2 < 1),
                      unknowns=[v], interior=v.diff(t) - v.diff(x, 2) - v.diff(y, 2),
                      conditions={"initial": Condition(v, on=Initial()),
                                  "wall": Condition(v, on=Sampler(lambda n, g: torch.tensor([[0.5, 1.0, 0.0]]).repeat(n, 1)))}
                      ).validate()
    X = PointSampler(problem, 200, 300, seed=0).batch["initial"]
    assert torch.all(X[:, 0] == 0) and torch.all(X[:, 1:].pow(2).sum(1) < 1)


@pytest.mark.parametrize("where,message", [
    (x**2 + y**2 - 1, "not a condition"),
    (sp.Eq(x**2 + y**2, 1), "holds on a surface"),
    (True, "Python constant"),
    (x**2 + y**2 < -1, "False for every real value .* the domain would be empty"),
    (x**2 + y**2 < A, r"False everywhere once the parameters are substituted: the domain would be empty"),
    (x**2 + y**2 > A, r"True everywhere once the parameters .* leave where out"),
    (sp.Symbol("r") > x, "undeclared symbol"),
    (u < 1, r"where must not contain the unknown u\(x, y\): it is a condition on the variables"),
    (sp.Xor(x < 0, y < 0), "join inequalities"),
    (sp.Max(x, y) < 1, "unsupported Max"),
    (sp.Piecewise((x, x > 0), (0, True)) < sp.Rational(1, 2), "unsupported function Piecewise"),
    ((x > 0) & y, "y in where is not an inequality"),
])
def test_bad_where_is_refused(where, message):
    with pytest.raises(pdec.SpecError, match=message):
        Problem(name="bad", domain=Box({x: (-1, 1), y: (-1, 1)}, where=where), unknowns=[u],
                interior=u.diff(x, 2) - 1, parameters={A: -1} if sp.sympify(where).has(A) else {}).validate()


def test_chained_inequalities_in_a_spec_get_a_hint(tmp_path):
    spec = tmp_path / "ring.py"
    spec.write_text("import sympy as sp\nfrom pdec import Box, Problem\nx, y = sp.symbols('x y', real=True)\n"
                    "u = sp.Function('u')(x, y)\nproblem = Problem(name='ring', domain=Box({x: (-1, 1), y: (-1, 1)}, "
                    "where=0.25 < x**2 + y**2 < 1), unknowns=[u], interior=u.diff(x, 2))\n")
    with pytest.raises(pdec.SpecError, match=r"truth value of Relational.*\(a < b\) & \(b < c\)"):
        pdec.load_spec(spec)


def test_a_long_where_generates_a_module_that_parses():
    xs = sp.symbols("x1:11", real=True)
    w = sp.Function("w")(*xs)
    ball = Problem(name="ball10d", domain=Box({v: (-1, 1) for v in xs}, where=sum(v**2 for v in xs) < 1),
                   unknowns=[w], interior=sum(w.diff(v, 2) for v in xs) + 2 * len(xs),
                   conditions={"c": Condition(w, on=Sampler(lambda n, g: torch.zeros(n, 10)))}).validate()
    compiled = pdec.compile(ball, hidden=(4,), write=False)
    X = torch.rand(300, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) - 0.5
    assert torch.equal(compiled.model.inside(X), X.pow(2).sum(1) < 1)
    assert all(len(line) <= 100 for line in compiled.source.splitlines() if "x10**2" in line)


@pytest.mark.parametrize("region", [pdec.Boundary(), SpatialBoundary()])
def test_box_boundary_regions_are_refused_on_a_cut_domain(region):
    v = sp.Function("v")(t, x, y)
    with pytest.raises(pdec.SpecError, match="is the box's boundary.*Sampler"):
        Problem(name="bad", domain=Box({t: (0, 1), x: (-1, 1), y: (-1, 1)}, time=t, where=x**2 + y**2 < 1),
                unknowns=[v], interior=v.diff(t) - v.diff(x, 2),
                conditions={"c": Condition(v, on=region)}).validate()


@pytest.mark.filterwarnings("ignore:.*no conditions")
def test_a_face_the_domain_does_not_reach_is_an_error():
    problem = Problem(name="disk_face", domain=Box({x: (-1, 1), y: (-1, 1)}, where=x**2 + y**2 < 1), unknowns=[u],
                      interior=u.diff(x, 2) + u.diff(y, 2), conditions={"left": Condition(u, on=Face(x, "min"))})
    problem.validate()
    with pytest.raises(pdec.PdecError, match=r"condition 'left' \(face x = min\): 0 of .* runs along the face "
                       r"x = min, write that inequality with >= or <=.*Sampler\(fn\)"):
        PointSampler(problem, 10, 4, seed=0)
    # a triangle's edge on the face x = 0: the strict x > 0 excludes it, x >= 0 keeps it
    for strict, ok in ((x > 0, False), (x >= 0, True)):
        triangle = Problem(name="triangle", domain=Box({x: (0, 1), y: (0, 1)}, where=strict & (x + y < 1)),
                           unknowns=[u], interior=u.diff(x, 2) + u.diff(y, 2), conditions={"left": Condition(u, on=Face(x, "min"))})
        if ok:
            assert torch.all(PointSampler(triangle, 10, 50, seed=0).batch["left"][:, 0] == 0)
        else:
            with pytest.raises(pdec.PdecError, match="with >= or <="):
                PointSampler(triangle, 10, 50, seed=0)
    empty = Problem(name="nowhere", domain=Box({x: (0, 1), y: (0, 1)}, where=x > 2), unknowns=[u],
                    interior=u.diff(x, 2))
    empty.validate()
    with pytest.raises(pdec.PdecError, match="interior points: 0 of .* x > 2: the domain is empty, or below 0.0001 of the box"):
        PointSampler(empty, 10, 0, seed=0)
    with pytest.raises(pdec.PdecError, match="points of the interior: 0 of .* the domain is empty"):
        _points(empty, None, 3, seed=0, digits=30)   # pdec check's points for the numeric fallback
    # a small domain (3e-4 of the box) trains, and pdec check finds its points too
    tiny = dataclasses.replace(empty, domain=Box({x: (-1, 1), y: (-1, 1)}, where=x**2 + y**2 < 4e-4))
    assert torch.all(PointSampler(tiny, 20, 0, seed=0).batch["interior"].pow(2).sum(1) < 4e-4)
    assert all(pt[x]**2 + pt[y]**2 < 4e-4 for pt in _points(tiny, None, 5, seed=0, digits=30))


def test_check_survives_a_where_that_is_complex_somewhere():
    problem = Problem(name="root", domain=Box({x: (-1, 1), y: (-1, 1)}, where=sp.sqrt(x + sp.Rational(1, 2)) < 1),
                      unknowns=[u], interior=u.diff(x, 2) + u.diff(y, 2), conditions={"c": Condition(u, on=Face(y, "min"))},
                      exact={u: 0 * x}).validate()
    points = _points(problem, None, 30, seed=0, digits=30)   # NaN below x = -1/2 counts as outside
    assert all(-0.5 <= float(pt[x]) < 0.5 for pt in points)
    assert pdec.check_problem(problem).passed


def test_given_interior_points_outside_the_domain_warn(tmp_path):
    compiled = pdec.compile(_disk(), hidden=(4,), write=False)
    circle = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    X_in = torch.tensor([[0.1, 0.2], [0.9, 0.9]], dtype=torch.float64)
    with pytest.warns(pdec.PdecWarning, match="1 of the 2 points for 'interior' lie outside the domain: x.*is false there"):
        pdec.train(compiled, "adam", steps=1, points={"interior": X_in, "boundary": circle},
                   eval_points=X_in[:1], run_root=tmp_path, progress=False)


def test_a_disk_trains_and_plots_blank_outside(tmp_path):
    compiled = pdec.compile(_disk(), hidden=(16,), write=False)
    run = pdec.train(compiled, "kfac", steps=40, n_interior=300, n_condition=60, n_eval=500, seed=0,
                     run_root=tmp_path, progress=False)
    first, last = run.history[0], run.history[-1]
    assert last["rel_l2"] < 0.2 * first["rel_l2"] and last["rel_l2"] < 0.2
    X = torch.tensor([[0.0, 0.0], [0.9, 0.9], [-0.5, 0.5]], dtype=torch.float64)
    U, Ue = _blank_outside(compiled.model, X, torch.ones(3, 1), torch.zeros(3, 1))
    assert torch.isnan(U[1]).all() and torch.isnan(Ue[1]).all() and not torch.isnan(U[[0, 2]]).any()


def test_given_face_points_outside_the_domain_are_refused(tmp_path):
    compiled = pdec.compile(_lshape(), hidden=(4,), write=False)
    points = {"interior": torch.tensor([[-0.5, 0.5]], dtype=torch.float64),
              "bottom": torch.tensor([[-0.5, -1.0], [0.5, -1.0]], dtype=torch.float64),   # (0.5, -1) is cut off
              "right": torch.tensor([[1.0, 0.5]], dtype=torch.float64)}
    with pytest.raises(pdec.PdecError, match=r"1 of the 2 points given for condition 'bottom' lie on its region's face "
                       r"\(face y = min\) but outside the domain: .* is false there"):
        pdec.train(compiled, "adam", steps=1, points=points, run_root=tmp_path, progress=False)
    points["bottom"] = points["bottom"][:1]
    run = pdec.train(compiled, "adam", steps=1, points=points, run_root=tmp_path, progress=False)
    assert run.status == "completed"


def test_a_long_conjunction_is_written_one_inequality_per_line():
    where = (((x - 0.3)**2 + (y - 0.2)**2 < 0.5) & ((x + 0.4)**2 + (y - 0.25)**2 > 0.01)
             & ((x + 0.1)**2 + (y + 0.35)**2 > 0.02))
    holes = Problem(name="holes", domain=Box({x: (-1, 1), y: (-1, 1)}, where=where), unknowns=[u],
                    interior=u.diff(x, 2) + u.diff(y, 2),
                    conditions={"c": Condition(u, on=Sampler(lambda n, g: torch.zeros(n, 2)))}).validate()
    compiled = pdec.compile(holes, hidden=(4,), write=False)
    body = compiled.source[compiled.source.index("def inside"):].splitlines()
    assert [line.strip()[:2] for line in body if line.strip().startswith(("return", "&"))] == ["re", "& ", "& "]
    X = torch.rand(2000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    expected = (((X[:, 0] - 0.3)**2 + (X[:, 1] - 0.2)**2 < 0.5) & ((X[:, 0] + 0.4)**2 + (X[:, 1] - 0.25)**2 > 0.01)
                & ((X[:, 0] + 0.1)**2 + (X[:, 1] + 0.35)**2 > 0.02))
    assert torch.equal(compiled.model.inside(X), expected) and torch.equal(domain_predicate(holes)(X), expected)


def test_a_plot_without_a_point_in_the_domain_warns():
    strip = Problem(name="strip", domain=Box({x: (-1, 1), y: (-1, 1)}, where=(x > 0.001) & (x < 0.009)), unknowns=[u],
                    interior=u.diff(x, 2) + u.diff(y, 2),
                    conditions={"c": Condition(u, on=Sampler(lambda n, g: torch.full((n, 2), 0.005)))}).validate()
    model = pdec.compile(strip, hidden=(4,), write=False).model
    X = torch.linspace(-1, 1, 11, dtype=torch.float64)[:, None].repeat(1, 2)   # x = -1, -0.8, …: none inside
    with pytest.warns(pdec.PdecWarning, match="no point of the plotted grid lies in the domain"):
        U, _ = _blank_outside(model, X, torch.ones(11, 1), None)
    assert torch.isnan(U).all()


def test_check_reports_a_face_the_domain_does_not_meet(tmp_path):
    spec = tmp_path / "disk_face.py"
    spec.write_text("import sympy as sp\nfrom pdec import Box, Condition, Face, Problem\n"
                    "x, y = sp.symbols('x y', real=True)\nu = sp.Function('u')(x, y)\n"
                    "problem = Problem(name='disk_face', domain=Box({x: (-1, 1), y: (-1, 1)}, where=x**2 + y**2 < 0.25),\n"
                    "    unknowns=[u], interior=u.diff(x, 2) + u.diff(y, 2), conditions={'left': Condition(u, on=Face(x, 'min'))},\n"
                    "    exact={u: 0 * x})\n")
    proc = subprocess.run([sys.executable, "-m", "pdec", "check", str(spec)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "face x = min: 0 of" in proc.stderr and "Sampler(fn)" in proc.stderr and "Traceback" not in proc.stderr


def test_nan_is_outside_however_the_condition_is_written():
    a = (sp.log(x) <= 0) & (y <= sp.Rational(1, 2))
    b = ~((sp.log(x) > 0) | (y > sp.Rational(1, 2)))   # the same condition
    X = torch.rand(2000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    masks = []
    for where in (a, b):
        problem = Problem(name="logs", domain=Box({x: (-1, 1), y: (-1, 1)}, where=where), unknowns=[u],
                          interior=u.diff(x, 2) + u.diff(y, 2),
                          conditions={"c": Condition(u, on=Sampler(lambda n, g: torch.full((n, 2), 0.5)))}).validate()
        masks += [domain_predicate(problem)(X), pdec.compile(problem, hidden=(4,), write=False).model.inside(X)]
    expected = (X[:, 0] > 0) & (X[:, 1] <= 0.5)   # log x is NaN for x < 0: outside
    assert all(torch.equal(m, expected) for m in masks)
