"""Data conditions: ``Condition(q, on=Data(points, values))`` fits q to observed values, r = q(x) − y.

The generated residuals of such terms are checked against autograd in
tests/test_generated_reference.py (rows with random observed values), their Kronecker factors,
Jacobians and Gramians against jacrev in tests/test_curvature.py (case "data"), and the line
search's trial losses in tests/test_optimizers.py (every shipped and test spec).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import sympy as sp
import torch

import pdec
from pdec import Box, Condition, Data, Problem, SpatialBoundary
from pdec.train.sampling import GivenPoints, PointSampler
from conftest import ROOT

t, x = sp.symbols("t x", real=True)
u = sp.Function("u")(t, x)
BOX = Box({t: (0, 1), x: (0, 1)}, time=t)


def _heat_data() -> Problem:
    return pdec.load_spec(ROOT / "specs" / "heat1d_data.py")


def _problem(region, residual=u) -> Problem:
    return Problem(name="d", domain=BOX, unknowns=[u], interior=u.diff(t) - u.diff(x, 2),
                   conditions={"obs": Condition(residual, on=region)})


def test_residual_is_the_network_minus_the_observed_value():
    """The value term: r = u(t, x) − y with u from the plain network (forward)."""
    model = pdec.compile(_heat_data(), hidden=(6, 5), write=False, seed=0).model
    g = torch.Generator().manual_seed(2)
    X = torch.rand(11, 2, generator=g, dtype=torch.float64)
    y = torch.randn(11, generator=g, dtype=torch.float64)
    r = model.residual("measured", torch.cat([X, y[:, None]], 1)).detach()
    with torch.no_grad():
        want = model(X)[:, 0] - y
    torch.testing.assert_close(r[:, 0], want, rtol=1e-13, atol=1e-14)
    assert model.observed == {"measured": 1}
    with pytest.raises(ValueError, match=r"points must have shape \(N, 2 \+ 1\) for the data term 'measured'"):
        model.residual("measured", X)


def test_every_batch_holds_all_observations_and_they_do_not_count_in_n_condition():
    problem = _heat_data()
    table = problem.data_table("measured")
    assert table.shape == (200, 3)
    sampler = PointSampler(problem, 30, 10, seed=4)
    first = sampler.batch
    assert torch.equal(first["measured"], table)
    assert first["boundary"].shape == (10, 2)   # all of n_condition goes to the sampled condition
    second = sampler.resample()
    assert torch.equal(second["measured"], table) and not torch.equal(second["interior"], first["interior"])
    assert list(first) == ["interior", "boundary", "measured"]
    # data parallel: two ranks hold complementary blocks of the observations
    halves = [PointSampler(problem, 30, 10, seed=4, rank=r, world_size=2).batch["measured"] for r in (0, 1)]
    assert torch.equal(torch.cat(halves), table)
    # float32 runs get the table in float32
    assert PointSampler(problem, 30, 10, seed=4, dtype=torch.float32).batch["measured"].dtype == torch.float32


def test_points_as_a_dict_or_an_array_give_the_same_table():
    X = torch.tensor([[0.1, 0.2], [0.3, 0.4]], dtype=torch.float64)
    y = [1.0, 2.0]
    by_dict = _problem(Data({x: X[:, 1], t: X[:, 0]}, y)).validate().data_table("obs")
    by_array = _problem(Data(X.numpy(), y)).validate().data_table("obs")
    torch.testing.assert_close(by_dict, by_array)
    torch.testing.assert_close(by_dict, torch.tensor([[0.1, 0.2, 1.0], [0.3, 0.4, 2.0]], dtype=torch.float64))


@pytest.mark.parametrize("region,message", [
    (Data([[0.1, 0.2, 0.3]], [1.0]), r"points have shape \(1, 3\); expected \(N, 2\): one row per point, columns t, x"),
    (Data({t: [0.1]}, [1.0]), r"one array per domain variable \(t, x\); missing x"),
    (Data([[0.1, 0.2]], [[1.0, 2.0]]), r"values have shape \(1, 2\); expected \(N,\) or \(N, 1\)"),
    (Data([[0.1, 0.2], [0.3, 0.4]], [1.0]), r"2 points and 1 values"),
    (Data([[0.1, float("nan")]], [1.0]), r"1 of the 1 rows hold a non-finite point or value"),
    (Data([[0.1, 0.2]], ["a"]), r"values is not an array of real numbers"),
    (Data([[0.5, 1.5], [0.5, 0.5]], [1.0, 2.0]), r"1 of the 2 points lie outside the domain's box .* column 1 \(x\)"),
    (Data([[0.1, 0.2]], [1.0]) | SpatialBoundary(), r"cannot be combined with other regions"),
    (Data, r"on=Data is the class; write on=Data\(points, values\)"),
])
def test_bad_data_is_a_spec_error_naming_the_condition(region, message):
    with pytest.raises(pdec.SpecError, match=message) as info:
        _problem(region).validate()
    assert "condition obs" in str(info.value)


def test_a_vector_condition_takes_one_value_column_per_component():
    problem = _problem(Data([[0.1, 0.2]], [[1.0, 2.0]]), residual=[u, u.diff(x)]).validate()
    assert problem.data_conditions == {"obs": 2}
    with pytest.raises(pdec.SpecError, match=r"values have shape \(1,\); expected \(N, 2\)"):
        _problem(Data([[0.1, 0.2]], [1.0]), residual=[u, u.diff(x)]).validate()


def test_other_data_change_the_fingerprint_and_a_run_does_not_resume_on_them(tmp_path):
    problem = _heat_data()
    c = problem.conditions["measured"]
    noisier = dataclasses.replace(problem, conditions={
        **problem.conditions, "measured": Condition(u, on=Data(c.on.points, c.on.values + 1e-3))})
    assert noisier.fingerprint() != problem.fingerprint()
    assert dataclasses.replace(problem).fingerprint() == problem.fingerprint()
    run = pdec.train(pdec.compile(problem, hidden=(5,), write=False), "adam", steps=2, run_root=tmp_path,
                     n_interior=20, n_condition=10, n_eval=50, progress=False)
    assert json.loads((run.run_dir / "config.json").read_text())["data"] == {"measured": 200}
    with pytest.raises(pdec.PdecError, match="observed data"):
        pdec.train(pdec.compile(noisier, hidden=(5,), write=False), resume=run.run_dir, steps=4, progress=False)


def test_given_points_leave_the_data_term_out():
    problem = _heat_data()
    points = {"interior": torch.rand(10, 2, dtype=torch.float64),
              "boundary": torch.tensor([[0.5, 0.0], [0.2, 1.0]], dtype=torch.float64)}
    sampler = GivenPoints(problem, points)
    assert list(sampler.batch) == ["interior", "boundary", "measured"]
    assert torch.equal(sampler.batch["measured"], problem.data_table("measured"))
    with pytest.raises(pdec.PdecError, match=r"condition 'measured' takes its points and values from its Data region"):
        GivenPoints(problem, {**points, "measured": problem.data_table("measured")})


def test_check_reports_the_exact_solutions_misfit():
    """The shipped spec's noise (σ = 1e-3) shows as the exact solution's misfit; the check passes."""
    report = pdec.check_problem(_heat_data())
    assert report.passed
    line = next(r for r in report.results if r.term == "measured")
    assert line.method == "skipped"
    rms = float(line.message.split("RMS ")[1].split()[0].rstrip(","))
    assert 0.8e-3 < rms < 1.2e-3, line.message


def test_the_data_determine_the_initial_state():
    """Without u(0, x) the heat equation with zero boundary values has many solutions (u = 0 among
    them, which the network learns); with the 200 measurements inside, ENGD recovers u* to about
    the noise's level (σ = 1e-3 against max |u*| = 1)."""
    problem = _heat_data()
    settings = dict(n_interior=300, n_condition=60, n_eval=500, save=False, progress=False, ema=0.0)
    run = pdec.train(pdec.compile(problem, hidden=(32,), write=False), "engd", steps=150, **settings)
    assert run.final["rel_l2"] < 2e-3, run.final
    without = dataclasses.replace(problem, conditions={"boundary": problem.conditions["boundary"]},
                                  source=None)
    with pytest.warns(pdec.PdecWarning, match=r"no condition on the initial slice t = 0: an evolution equation"):
        blind = pdec.train(pdec.compile(without, hidden=(32,), write=False), "engd", steps=150, **settings)
    assert blind.final["rel_l2"] > 0.5, blind.final


def test_a_weighted_derivative_data_term_trains():
    """measured [u, ∂_x u] with weight 4 (tests/specs/measured_flux.py): KFAC lowers both the data
    term and the total loss."""
    compiled = pdec.compile(pdec.load_spec(ROOT / "tests" / "specs" / "measured_flux.py"), hidden=(16,),
                            write=False)
    run = pdec.train(compiled, "kfac", steps=30, n_interior=200, n_condition=40, n_eval=200, save=False,
                     progress=False)
    first, last = run.history[0], run.history[-1]
    assert last["loss_measured"] < 0.05 * first["loss_measured"], (first, last)
    assert last["loss"] < 0.05 * first["loss"]


def test_inspect_names_the_observations(capsys):
    from pdec.cli import main
    assert main(["inspect", str(ROOT / "specs" / "heat1d_data.py")]) == 0
    out = capsys.readouterr().out
    assert "term 'measured' on the 200 observed points (synthetic, seed 0): mode value, S = 1" in out


def _spy_on_plot_solution(monkeypatch) -> dict:
    """Records the marks pdec plot passes to plot_solution (which still draws, on a coarse grid)."""
    from pdec.train import plots

    seen = {}
    draw = plots.plot_solution

    def spy(model, out, resolution=100, marks=None, heldout=None):
        seen["marks"], seen["heldout"] = marks, heldout
        return draw(model, out, resolution=20, marks=marks, heldout=heldout)

    monkeypatch.setattr(plots, "plot_solution", spy)
    return seen


def test_plot_marks_the_observation_points(tmp_path, monkeypatch):
    from pdec.cli import main

    problem = _heat_data()
    run = pdec.train(pdec.compile(problem, hidden=(5,), write=False), "adam", steps=2, run_root=tmp_path,
                     n_interior=20, n_condition=10, n_eval=50, progress=False)
    seen = _spy_on_plot_solution(monkeypatch)
    assert main(["plot", str(run.run_dir)]) == 0
    torch.testing.assert_close(seen["marks"], problem.data_table("measured")[:, :2])
    assert seen["heldout"] is None
    assert (run.run_dir / "solution.png").stat().st_size > 0


def test_compare_and_plot_show_the_held_out_observations(tmp_path, monkeypatch, capsys):
    """A spec file with holdout=0.2: pdec compare tabulates the held-out misfit, and pdec plot
    draws the held-out points apart from those trained on."""
    from pdec.cli import main

    text = (ROOT / "specs" / "heat1d_data.py").read_text()
    spec = tmp_path / "heat1d_ho.py"
    spec.write_text(text.replace('"synthetic, seed 0")', '"synthetic, seed 0", holdout=0.2)')
                    .replace('name="heat1d_data"', 'name="heat1d_ho"'))
    runs = tmp_path / "runs"
    assert main(["compare", str(spec), "--optimizers", "adam,kfac", "--steps", "2", "--runs", str(runs),
                 "--out", str(tmp_path / "gen")]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("optimizer"))
    assert "held-out measured" in header
    for name in ("adam", "kfac"):
        row = next(line for line in out.splitlines() if line.startswith(name))
        assert float(row.split()[6]) > 0   # the held-out misfit's cell
    problem = pdec.load_spec(spec)
    train, held = problem.data_split("measured")
    seen = _spy_on_plot_solution(monkeypatch)
    run_dir = next(d for d in (runs / "heat1d_ho").iterdir() if d.is_dir())
    assert main(["plot", str(run_dir)]) == 0
    torch.testing.assert_close(seen["marks"], train[:, :2])
    torch.testing.assert_close(seen["heldout"], held[:, :2])


def test_lists_and_sympy_numbers_are_read_in_float64_and_names_may_key_the_points():
    """torch reads Python lists in float32 by default: the table must hold the numbers as given."""
    third = 0.123456789012345
    table = _problem(Data({"t": [0.1, 0.3], "x": [0.2, 0.4]}, [third, sp.Rational(1, 3)])).validate().data_table("obs")
    assert table[0, 0].item() == 0.1 and table[0, 2].item() == third and table[1, 2].item() == 1 / 3
    assert table.dtype == torch.float64
    one_variable = Problem(name="o", domain=Box({x: (0, 1)}), unknowns=[sp.Function("w")(x)],
                           interior=sp.Function("w")(x).diff(x, 2),
                           conditions={"obs": Condition(sp.Function("w")(x), on=Data([0.25, 0.5], [1.0, 2.0]))})
    assert one_variable.validate().data_table("obs").shape == (2, 2)   # points (N,) for one variable
    twin = sp.Symbol("x")   # no real=True: another symbol than the domain's x
    with pytest.raises(pdec.SpecError, match=r"x has the name of a domain variable but other SymPy assumptions"):
        _problem(Data({t: [0.1], twin: [0.2]}, [1.0])).validate()
    with pytest.raises(pdec.SpecError, match=r"values must be real numbers, got torch.complex"):
        _problem(Data([[0.1, 0.2]], torch.tensor([1 + 1j]))).validate()


def test_observed_points_outside_a_cut_domain_are_doubted():
    disk = Box({t: (-1, 1), x: (-1, 1)}, where=t**2 + x**2 < 1)
    problem = Problem(name="d", domain=disk, unknowns=[u], interior=u.diff(t, 2) + u.diff(x, 2),
                      conditions={"obs": Condition(u, on=Data([[0.9, 0.9], [0.1, 0.1]], [1.0, 2.0]))})
    assert any("1 of the 2 observed points of condition 'obs' lie outside the domain" in d for d in problem.doubts())


def test_fewer_observations_than_ranks_is_a_clear_error():
    problem = _problem(Data([[0.1, 0.2]], [1.0]))
    with pytest.raises(pdec.PdecError, match=r"condition 'obs' trains on 1 observation\(s\) .* train on at most 1 rank"):
        PointSampler(problem, 10, 4, seed=0, rank=0, world_size=2)


def test_check_skips_observations_where_the_exact_solution_is_undefined():
    w = sp.Function("w")(x)
    problem = Problem(name="s", domain=Box({x: (0, 1)}), unknowns=[w], interior=w.diff(x, 2),
                      conditions={"obs": Condition(w.diff(x), on=Data([[0.0], [0.5]], [0.0, 0.7]))},
                      exact={w: sp.sqrt(x)})
    line = next(r for r in pdec.check_problem(problem).results if r.term == "obs")
    assert line.passed and "could not be evaluated at them (ZeroDivisionError" in line.message


def _with_holdout(problem: Problem, name: str, holdout) -> Problem:
    c = problem.conditions[name]
    region = dataclasses.replace(c.on, holdout=holdout)
    return dataclasses.replace(problem, conditions={**problem.conditions, name: dataclasses.replace(c, on=region)},
                               source=None)


def test_holdout_splits_the_observations_the_same_way_every_time():
    problem = _with_holdout(_heat_data(), "measured", 0.2).validate()
    assert "200 observed points, 40 held out" in problem.condition_items["measured"].on.describe()
    train, held = problem.data_split("measured")
    again_train, again_held = problem.data_split("measured")
    assert train.shape == (160, 3) and held.shape == (40, 3)
    assert torch.equal(held, again_held) and torch.equal(train, again_train)
    table = problem.data_table("measured")
    rows = {tuple(r) for r in table.tolist()}
    assert {tuple(r) for r in train.tolist()} | {tuple(r) for r in held.tolist()} == rows
    assert not {tuple(r) for r in train.tolist()} & {tuple(r) for r in held.tolist()}
    assert _with_holdout(_heat_data(), "measured", 5).validate().data_split("measured")[1].shape == (5, 3)
    for count in (np.int64(5), sp.Integer(5), np.float32(0.025), sp.Rational(1, 40)):   # NumPy's and SymPy's numbers
        assert _with_holdout(_heat_data(), "measured", count).validate().data_split("measured")[1].shape == (5, 3)
    assert _heat_data().data_split("measured")[1] is None
    assert problem.fingerprint() != _heat_data().fingerprint()
    # the sampler trains on the other rows and keeps the held-out ones for evaluation
    sampler = PointSampler(problem, 20, 10, seed=0)
    assert torch.equal(sampler.batch["measured"], train) and torch.equal(sampler.heldout["measured"], held)


@pytest.mark.parametrize("holdout,message", [
    (1.5, r"holdout=1\.5 is neither a fraction below 1 nor a count \(an integer\)"),
    (2.0, r"holdout=2\.0 is neither a fraction below 1 nor a count \(a count is an integer, such as holdout=2\)"),
    (200, r"holdout keeps 200 of 200 observations out, which leaves none to train on"),
    (0.001, r"holdout=0\.001 of 200 observations keeps none out: give a count"),
    (-1, r"holdout must be a fraction 0 ≤ h < 1 or a count of observations, got -1"),
    ("10%", r"holdout must be a fraction"),
    (True, r"holdout must be a fraction"),
])
def test_a_bad_holdout_is_a_spec_error(holdout, message):
    with pytest.raises(pdec.SpecError, match=message):
        _with_holdout(_heat_data(), "measured", holdout).validate()


def test_training_logs_the_misfit_on_the_held_out_observations(tmp_path, capsys):
    """measured_flux's data term (weight 4, [u, ∂_x u]) with 8 of its 40 observations held out:
    metrics.csv's heldout_rms_measured is the unweighted RMS of q − y over them (autograd)."""
    problem = _with_holdout(pdec.load_spec(ROOT / "tests" / "specs" / "measured_flux.py"), "measured", 8)
    compiled = pdec.compile(problem, hidden=(8,), write=False)
    run = pdec.train(compiled, "kfac", steps=6, n_interior=50, n_condition=10, n_eval=50, eval_every=3,
                     run_root=tmp_path, progress=False)
    _, held = problem.data_split("measured")
    P = held[:, :2].clone().requires_grad_(True)
    value = compiled.model(P)[:, 0]
    (grad,) = torch.autograd.grad(value.sum(), P)
    misfit = torch.stack([value, grad[:, 0]], 1).detach() - held[:, 2:]
    assert run.final["heldout_rms_measured"] == pytest.approx(float(misfit.pow(2).mean().sqrt()), rel=1e-10)
    header = (run.run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "heldout_rms_measured" in header
    checkpoint = torch.load(run.run_dir / "checkpoint.pt", weights_only=False)
    assert checkpoint["sampler"]["batch"]["measured"].shape == (32, 4)   # trained on the other 32


def test_curves_show_the_held_out_misfit_when_there_is_no_exact_solution(tmp_path):
    from pdec.train.plots import error_curve, plot_curves
    from pdec.train.runs import read_metrics

    unknown = dataclasses.replace(_with_holdout(_heat_data(), "measured", 0.1), exact=None)
    run = pdec.train(pdec.compile(unknown, hidden=(5,), write=False), "adam", steps=4, eval_every=2,
                     run_root=tmp_path, n_interior=20, n_condition=10, progress=False)
    rows = read_metrics(run.run_dir)
    assert error_curve([rows]) == ("heldout_rms_measured", "held-out RMS misfit (measured)")
    assert all(r["heldout_rms_measured"] > 0 for r in rows)
    assert plot_curves([run.run_dir], tmp_path / "curves.png").stat().st_size > 0
    known = pdec.train(pdec.compile(_with_holdout(_heat_data(), "measured", 0.1), hidden=(5,), write=False), "adam",
                       steps=2, run_root=tmp_path, n_interior=20, n_condition=10, n_eval=20, progress=False)
    assert error_curve([read_metrics(known.run_dir)])[0] == "rel_l2"
