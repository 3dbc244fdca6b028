"""Learned parameters (inverse problems): ``parameters={kappa: Learned(1.0)}`` keeps κ a symbol of
the residuals and the generated module a trainable scalar ``model.learned["kappa"]``.

The generated residuals of the shipped and test specs with learned parameters (heat1d_inverse,
tests/specs/learned_scaled.py, learned_aniso.py) are checked against autograd at random values
of the parameters in tests/test_generated_reference.py, the line search's trial losses in
tests/test_optimizers.py, and the sums over data-parallel shards of κ's gradient and Gramian
blocks in tests/test_distributed.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import sympy as sp
import torch

import pdec
from pdec import Box, Condition, Face, Initial, Learned, Problem, SpatialBoundary
from pdec.analysis import analyse
from pdec.check import check_problem
from pdec.loss import pinn_loss
from pdec.optim import get_optimizer
from conftest import ROOT

t, x, y = sp.symbols("t x y", real=True)
kappa, lam = sp.symbols("kappa lam", positive=True)
u = sp.Function("u")(t, x)
BOX = Box({t: (0, 1), x: (0, 1)}, time=t)


def _inverse() -> Problem:
    return pdec.load_spec(ROOT / "specs" / "heat1d_inverse.py")


def _heat(parameters, exact=None, interior=None, where=None) -> Problem:
    box = BOX if where is None else Box({t: (0, 1), x: (0, 1)}, time=t, where=where)
    return Problem(name="h", domain=box, unknowns=[u],
                   interior=interior if interior is not None else u.diff(t) - kappa * u.diff(x, 2),
                   conditions={"ib": Condition(u - sp.sin(sp.pi * x), on=Initial() | SpatialBoundary())},
                   parameters=parameters, exact=exact)


@pytest.mark.parametrize("parameters, kwargs, message", [
    ({kappa: Learned}, {}, r"Learned takes the value training starts from, such as Learned\(1.0\)"),
    ({kappa: Learned(float("nan"))}, {}, r"Learned\(initial=nan\) must be a finite real number"),
    ({kappa: Learned("one")}, {}, r"Learned\(initial='one'\) is not a number"),
    ({kappa: Learned(1.0, exact=sp.I)}, {}, r"Learned\(exact=I\) must be a finite real number"),
    ({kappa: Learned(1.0), lam: Learned(1.0)}, {},
     r"the learned parameter lam appears in no residual, so no loss term determines it"),
    ({kappa: Learned(1.0)}, {"exact": {u: sp.exp(-kappa * t) * sp.sin(sp.pi * x)}},
     r"exact\[u\(t, x\)\] contains the learned parameter\(s\) kappa, whose true value is not given"),
    ({kappa: Learned(1.0)}, {"where": x < kappa},
     r"where contains the learned parameter\(s\) kappa: the domain is fixed while training"),
])
def test_bad_learned_parameters_are_spec_errors(parameters, kwargs, message):
    with pytest.raises(pdec.SpecError, match=message):
        _heat(parameters, **kwargs).validate()


def test_a_learned_name_must_be_a_plain_identifier():
    k = sp.Symbol("k.1")
    with pytest.raises(pdec.SpecError, match=r"learned parameter name 'k.1' must be a plain Python identifier"):
        _heat({k: Learned(1.0)}, interior=u.diff(t) - k * u.diff(x, 2)).validate()


def test_the_exact_solution_takes_the_true_value_and_the_residuals_keep_the_symbol():
    problem = _inverse()
    assert list(problem.learned) == [sp.Symbol("kappa", positive=True)]
    assert sp.Symbol("kappa", positive=True) in problem.interior_residuals[0].free_symbols
    (sol,) = problem.exact_solution.values()
    assert sp.simplify(sol - sp.exp(-sp.pi**2 * t / 4) * sp.sin(sp.pi * x)) == 0


def test_the_start_and_the_true_value_enter_the_fingerprint():
    base = _heat({kappa: Learned(1.0)})
    assert base.fingerprint() != _heat({kappa: Learned(2.0)}).fingerprint()
    assert base.fingerprint() != _heat({kappa: Learned(1.0, exact=0.25)}).fingerprint()
    assert base.fingerprint() != _heat({kappa: sp.Rational(1, 4)}).fingerprint()


def test_a_scaled_operator_is_factored_and_first_order_terms_stay_in_the_remainder():
    """∂_t u − κ ∂_xx u: the Laplacian channel ∂_xx with κ in the residual, ∂_t h a column of its
    own (the paper's forward Laplacian for heat, S = d + 2); (1 + κ)(∂_xx + x ∂_yy) + c ∂_x: one
    channel ∂_xx + x ∂_yy scaled by 1 + κ, c ∂_x u read from a direction column."""
    plan = pdec.compile(_inverse(), hidden=(4,), write=False).plan.interior
    assert (plan.mode, plan.S) == ("laplacian", 4)
    assert [ch.description for ch in plan.channels] == ["∂_xx"]
    k = sp.Symbol("kappa", positive=True)
    assert sp.expand(plan.residuals[0] - (-k * sp.Symbol("L0_u") + sp.Symbol("u_t"))) == 0
    scaled = pdec.compile(pdec.load_spec(ROOT / "tests" / "specs" / "learned_scaled.py"), hidden=(4,),
                          write=False).plan.interior
    assert scaled.mode == "collapsed" and len(scaled.channels) == 1
    assert scaled.channels[0].description == "∂_xx + (x)·∂_yy"
    kappa_, c = sp.symbols("kappa c")
    assert {kappa_, c} <= scaled.residuals[0].free_symbols


def test_two_learned_diffusivities_without_a_common_factor_fall_back_to_taylor():
    problem = pdec.load_spec(ROOT / "tests" / "specs" / "learned_aniso.py")
    ta = analyse(problem).terms["interior"]
    assert ta.split is None
    assert ("depend on the learned parameter(s) kappa, lam, and not as one factor times a fixed operator"
            in ta.why_not_collapsed)
    plan = pdec.compile(problem, hidden=(4,), write=False).plan.interior
    assert plan.mode == "taylor"
    with pytest.raises(pdec.ModeError, match="not as one factor times a fixed operator"):
        pdec.compile(problem, hidden=(4,), mode="collapsed", write=False)


def test_the_generated_module_holds_the_learned_parameters():
    model = pdec.compile(_inverse(), hidden=(4,), write=False).model
    assert model.learned_initial == {"kappa": 1.0} and model.learned_exact == {"kappa": 0.25}
    (p,) = model.learned.values()
    assert p.dtype == torch.float64 and p.shape == () and p.requires_grad and float(p.detach()) == 1.0
    assert "learned.kappa" in model.state_dict()
    assert any(q is p for q in model.parameters())
    source = (ROOT / "generated" / "heat1d_inverse.py").read_text()
    interior = source.split("def residual_interior")[1].split("def ")[0]
    assert "learned = self.learned if learned is None else learned" in interior
    assert "kappa = learned['kappa']  # learned parameter kappa" in interior
    assert "    kappa: starts at 1.0, exact 0.25 (diffusivity)" in source


def test_the_loss_gradient_in_a_learned_parameter_matches_finite_differences():
    """∂L/∂β of learned_scaled (β in the Robin condition, κ and c in the interior) by autograd
    through the generated module, against central differences of the loss (float64)."""
    problem = pdec.load_spec(ROOT / "tests" / "specs" / "learned_scaled.py")
    model = pdec.compile(problem, hidden=(6,), write=False, seed=3).model
    g = torch.Generator().manual_seed(0)
    batch = {"interior": torch.rand(20, 2, generator=g, dtype=torch.float64),
             "robin": torch.cat([torch.ones(8, 1, dtype=torch.float64), torch.rand(8, 1, generator=g,
                                                                                 dtype=torch.float64)], 1),
             "walls": torch.cat([torch.zeros(8, 1, dtype=torch.float64), torch.rand(8, 1, generator=g,
                                                                                  dtype=torch.float64)], 1)}
    total, _ = pinn_loss(model, batch)
    grads = torch.autograd.grad(total, list(model.learned.values()))
    h = 1e-6
    for (name, p), grad in zip(model.learned.items(), grads):
        with torch.no_grad():
            p += h
            up = float(pinn_loss(model, batch)[0])
            p -= 2 * h
            down = float(pinn_loss(model, batch)[0])
            p += h
        assert float(grad) == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-9), name


def test_lbfgs_recovers_the_diffusivity_from_the_measurements():
    """heat1d_inverse starts from κ = 1; the 200 measurements (noise 1e-3) determine κ* = 1/4."""
    run = pdec.train(pdec.compile(_inverse(), hidden=(16,), write=False), "lbfgs", steps=60, n_interior=300,
                     n_condition=60, n_eval=500, save=False, progress=False)
    assert run.history[0]["learned_kappa"] == 1.0
    assert run.history[0]["learned_err_kappa"] == 0.75
    assert abs(run.final["learned_kappa"] - 0.25) < 5e-3, run.final
    assert run.final["learned_err_kappa"] == pytest.approx(abs(run.final["learned_kappa"] - 0.25), rel=1e-12)
    assert run.final["rel_l2"] < 2e-2, run.final


def test_adam_moves_the_parameter_and_a_new_run_starts_it_again():
    compiled = pdec.compile(_inverse(), hidden=(8,), write=False)
    settings = dict(steps=40, n_interior=100, n_condition=20, n_eval=100, save=False, progress=False)
    first = pdec.train(compiled, "adam", lr=0.01, **settings)
    assert first.final["learned_kappa"] < 0.95   # moved (Adam steps by about lr = 0.01 each)
    again = pdec.train(compiled, "adam", lr=0.01, **settings)   # the same model object, re-initialised
    assert again.history[0]["learned_kappa"] == 1.0
    assert again.final["learned_kappa"] == first.final["learned_kappa"]


@pytest.fixture
def layers_only_optimizer():
    """An optimizer registered without TRAINS_LEARNED (it would leave κ at its start)."""
    from pdec.optim import OPTIMIZERS, PINNOptimizer, StepInfo, register

    @register
    class LayersOnly(PINNOptimizer):
        name = "layers-only"

        def step(self, batch):
            return StepInfo(self.loss_at(batch), {}, 0.0)

    yield LayersOnly.name
    OPTIMIZERS.pop(LayersOnly.name)


def test_an_optimizer_without_learned_support_refuses_them(layers_only_optimizer, tmp_path, capsys):
    from pdec.cli import main

    compiled = pdec.compile(_inverse(), hidden=(4,), write=False)
    with pytest.raises(pdec.PdecError, match=r"layers-only does not train learned parameters \(kappa\): it works on "
                                             r"the network's layers only; use adam, engd, engd-layerwise, "
                                             r"hessian-free, kfac, kfac-star, lbfgs, sgd"):
        pdec.train(compiled, layers_only_optimizer, steps=1, n_interior=10, n_condition=4, save=False,
                   progress=False)
    spec = str(ROOT / "specs" / "heat1d_inverse.py")
    assert main(["compare", spec, "--optimizers", "adam,layers-only", "--steps", "2", "--runs",
                 str(tmp_path / "runs")]) != 0
    assert "learns kappa, which layers-only does not train" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()   # refused before anything trained


def test_metrics_the_final_line_and_resume_carry_the_parameter(tmp_path, capsys):
    """metrics.csv has learned_kappa and learned_err_kappa, the final line names both, and a run
    resumed after 4 of 8 steps ends at the κ of a run of 8 steps straight."""
    from pdec.cli import main

    def train(runs, steps):
        return main(["train", str(ROOT / "specs" / "heat1d_inverse.py"), "--optimizer", "adam", "--hidden", "6",
                     "--runs", str(runs), "--out", str(tmp_path / "gen"), "--no-progress", "--steps", str(steps),
                     "--set", "n_interior=50", "--set", "n_condition=10", "--set", "n_eval=50", "--set", "lr=0.01"])

    assert train(tmp_path / "runs", 4) == 0
    out = capsys.readouterr().out
    run_dir = next((tmp_path / "runs" / "heat1d_inverse").iterdir())
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "learned_kappa" in header and "learned_err_kappa" in header
    last = pdec.load_run(run_dir).history[-1]
    assert f"learned kappa = {last['learned_kappa']:.6g} (error {last['learned_err_kappa']:.2e})" in out
    assert last["learned_kappa"] != 1.0
    assert main(["train", "--resume", str(run_dir), "--steps", "8", "--no-progress"]) == 0
    resumed = pdec.load_run(run_dir).history[-1]
    assert train(tmp_path / "straight", 8) == 0
    direct = pdec.load_run(next((tmp_path / "straight" / "heat1d_inverse").iterdir())).history[-1]
    assert resumed["step"] == direct["step"] == 8
    assert resumed["learned_kappa"] == pytest.approx(direct["learned_kappa"], rel=1e-12)


def test_compare_tabulates_the_learned_parameter(tmp_path, capsys):
    """Every default optimizer of pdec compare trains κ (2 steps each), and the table has its column
    (after 2 steps L-BFGS has moved κ from 1 to below 0.5, the others by less)."""
    from pdec.cli import main

    assert main(["compare", str(ROOT / "specs" / "heat1d_inverse.py"), "--steps", "2", "--runs",
                 str(tmp_path / "runs"), "--out", str(tmp_path / "gen"), "--set", "n_interior=30", "--set",
                 "n_condition=10", "--set", "n_eval=30", "--hidden", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("optimizer"))
    assert "learned kappa" in header
    rows = {line.split()[0]: line.split() for line in lines[lines.index(header) + 1:] if line.endswith("completed")}
    assert list(rows) == ["kfac", "kfac-star", "engd", "hessian-free", "lbfgs", "adam", "sgd"]
    kappa = {name: float(row[-2]) for name, row in rows.items()}
    assert all(0 < k <= 1.0 for k in kappa.values()) and kappa["lbfgs"] < 0.5 and kappa["kfac"] < 1.0


def test_check_and_inspect_use_the_true_value(capsys):
    report = check_problem(_inverse())
    assert all(r.passed for r in report.results) and report.results[0].method == "symbolic"
    unknown = dataclasses.replace(_inverse(), parameters={sp.Symbol("kappa", positive=True): Learned(1.0)},
                                  exact=None)
    problem = dataclasses.replace(unknown, exact={u: sp.sin(sp.pi * x)})   # u* without κ: checkable
    report = check_problem(problem)
    interior = report.results[0]
    assert interior.method == "skipped" and "learned parameter(s) kappa, whose true value is not given" in interior.message
    from pdec.cli import main

    assert main(["inspect", str(ROOT / "specs" / "heat1d_inverse.py")]) == 0
    assert "learned parameter kappa: learned, starts at 1 (exact 0.25): diffusivity" in capsys.readouterr().out


def test_data_without_learned_parameters_is_unchanged():
    """A spec without learned parameters has no learned entries in its module or state_dict."""
    model = pdec.compile(pdec.load_spec(ROOT / "specs" / "heat1d_data.py"), hidden=(4,), write=False).model
    assert len(model.learned) == 0 and not any(k.startswith("learned") for k in model.state_dict())
    assert model.learned_initial == {}


def test_a_learned_robin_coefficient_is_read_in_its_condition():
    problem = Problem(name="r", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[sp.Function("v")(x, y)],
                      interior=sp.Function("v")(x, y).diff(x, 2) + sp.Function("v")(x, y).diff(y, 2),
                      conditions={"robin": Condition(lam * sp.Function("v")(x, y).diff(x) - 1, on=Face(x, "max")),
                                  "rest": Condition(sp.Function("v")(x, y), on=Face(x, "min"))},
                      parameters={lam: Learned(0.5)})
    compiled = pdec.compile(problem, hidden=(4,), write=False)
    assert "lam = learned['lam']" in compiled.source.split("def residual_robin")[1]
    assert "= learned[" not in compiled.source.split("def residual_interior")[1].split("def ")[0]


def test_plot_draws_the_parameters_path_and_its_true_value(tmp_path, monkeypatch):
    from pdec.cli import main
    from pdec.train import plots

    run = pdec.train(pdec.compile(_inverse(), hidden=(4,), write=False), "adam", steps=6, eval_every=2, lr=0.01,
                     n_interior=30, n_condition=10, n_eval=30, run_root=tmp_path, progress=False)
    seen = {}
    original = plots._plot_learned

    def spy(axes, names, metrics, records):
        original(axes, names, metrics, records)
        seen["names"], seen["lines"] = names, [(list(line.get_xdata()), list(line.get_ydata()))
                                               for line in axes[0].get_lines()]

    monkeypatch.setattr(plots, "_plot_learned", spy)
    assert main(["plot", str(run.run_dir)]) == 0
    assert seen["names"] == ["kappa"]
    (path_x, path_y), (_, true_y) = seen["lines"]
    assert path_x == [1, 2, 4, 6] and path_y == [r["learned_kappa"] for r in run.history]
    assert true_y == [0.25, 0.25]


# ------------------------------------------------------------------ KFAC: the learned parameters' block
def _scaled_case(seed: int = 3):
    """learned_scaled (κ, c in the interior, β in the Robin condition) with random weights and κ,
    and a batch of every term."""
    from reference import randomize_weights
    from pdec.train.sampling import PointSampler

    problem = pdec.load_spec(ROOT / "tests" / "specs" / "learned_scaled.py")
    model = pdec.compile(problem, hidden=(6, 5), write=False, seed=seed).model
    randomize_weights(model, seed=seed)
    batch = PointSampler(problem, 11, 8, seed=seed).batch
    return model, batch


def test_the_learned_jacobian_equals_autograd_through_the_whole_network():
    """J = ∂r/∂κ from forward-mode products through the residual function alone (the output stack
    fixed) equals torch.autograd.functional.jacobian of the full residual, network included,
    w.r.t. κ; the gradient and the Gramian block follow from it (brute force)."""
    from pdec.curvature import curvature_pass, linearize

    model, batch = _scaled_case()
    names = list(model.learned)
    kappa0 = torch.stack([p.detach() for p in model.learned.values()])
    cp = curvature_pass(model, batch)
    G = torch.zeros(len(names), len(names), dtype=torch.float64)
    for term, X in batch.items():
        def residual(kappa, term=term, X=X):
            with torch.no_grad():
                for p, value in zip(model.learned.values(), kappa):
                    p.copy_(value)
            return model.residual_of_output(term, X, model.propagate(term, X).outputs[-1].detach(),
                                            dict(zip(names, kappa)))
        want = torch.autograd.functional.jacobian(residual, kappa0.clone())   # (N, M, P)
        lin = linearize(model, term, X)
        torch.testing.assert_close(lin.learned_jacobian, want, rtol=1e-12, atol=1e-14)
        N = X.shape[0]
        G_term = sum(want[n].T @ want[n] for n in range(N)) / N
        torch.testing.assert_close(cp.learned_gramians[term], G_term, rtol=1e-12, atol=1e-14)
        G += G_term
    total, _ = pinn_loss(model, batch)
    want_grad = torch.stack(torch.autograd.grad(total, list(model.learned.values())))
    torch.testing.assert_close(cp.learned_gradient, want_grad, rtol=1e-11, atol=1e-14)
    # the Robin coefficient β is read by one term only: its column is zero elsewhere
    beta = names.index("beta")
    assert not linearize(model, "interior", batch["interior"]).learned_jacobian[..., beta].any()


def test_the_learned_block_is_averaged_and_solved_like_the_factors():
    from pdec.curvature import LearnedBlock

    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 3, generator=g, dtype=torch.float64)
    G1, G2 = A @ A.T, A.T @ A
    grad = torch.randn(3, generator=g, dtype=torch.float64)
    block = LearnedBlock(3, ema=0.4, init="identity", dtype=torch.float64, device=None)
    block.update(G1)
    block.update(G2)
    want = 0.4 * (0.4 * torch.eye(3, dtype=torch.float64) + 0.6 * G1) + 0.6 * G2
    torch.testing.assert_close(block.G, want, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(block.direction(grad, 1e-3),
                               -torch.linalg.solve(want + 1e-3 * torch.eye(3, dtype=torch.float64), grad),
                               rtol=1e-10, atol=1e-14)
    zero = LearnedBlock(2, ema=0.0, init="zero", dtype=torch.float64, device=None)
    zero.update(torch.tensor([[4.0, 0.0], [0.0, 0.0]], dtype=torch.float64))   # the second κ read nowhere
    torch.testing.assert_close(zero.direction(torch.tensor([2.0, 0.0], dtype=torch.float64), 0.0),
                               torch.tensor([-0.5, 0.0], dtype=torch.float64))


def test_the_learned_line_search_takes_the_grid_point_of_least_loss():
    """Trial losses at κ + β δκ with the network fixed, against the loss recomputed at each grid point."""
    from pdec.curvature import curvature_pass
    from pdec.optim.line_search import GRID, learned_line_search

    model, batch = _scaled_case(seed=5)
    cp = curvature_pass(model, batch)
    outputs = {k: lin.output for k, lin in cp.linearizations.items()}
    delta = -torch.tensor([0.3, -1.0, 0.5], dtype=torch.float64)
    kappa0 = [p.detach().clone() for p in model.learned.values()]
    losses = []
    for beta in GRID:
        with torch.no_grad():
            for p, k0, d in zip(model.learned.values(), kappa0, delta):
                p.copy_(k0 + beta * d)
            losses.append(float(pinn_loss(model, batch)[0]))
    with torch.no_grad():
        for p, k0 in zip(model.learned.values(), kappa0):
            p.copy_(k0)
    beta, loss = learned_line_search(model, batch, outputs, delta)
    k = min(range(len(GRID)), key=losses.__getitem__)
    assert beta == GRID[k] and loss == pytest.approx(losses[k], rel=1e-12)
    for p, k0, d in zip(model.learned.values(), kappa0, delta):
        assert float(p.detach()) == pytest.approx(float(k0 + beta * d), rel=1e-15)
    with pytest.raises(ValueError, match=r"direction must have shape \(3,\)"):
        learned_line_search(model, batch, outputs, delta[:2])


def test_kfac_recovers_the_diffusivity():
    """heat1d_inverse from κ = 1: KFAC (adaptive damping) reaches κ* = 1/4 to 1e-2 in 300 steps (a
    session's run: 0.2462)."""
    run = pdec.train(pdec.compile(_inverse(), hidden=(32,), write=False), "kfac", steps=300, n_interior=300,
                     n_condition=60, n_eval=300, save=False, progress=False, adaptive_damping=True)
    assert run.history[0]["learned_kappa"] == 1.0
    assert abs(run.final["learned_kappa"] - 0.25) < 1e-2, run.final
    assert run.final["loss"] < 1e-3 * run.history[0]["loss"]


def test_kfac_resumes_with_its_learned_block(tmp_path):
    """A KFAC run resumed after 3 of 6 steps ends where 6 steps straight do (κ and loss)."""
    compiled = pdec.compile(_inverse(), hidden=(6,), write=False)
    settings = dict(n_interior=40, n_condition=10, n_eval=40, progress=False)
    first = pdec.train(compiled, "kfac", steps=3, run_root=tmp_path / "a", **settings)
    resumed = pdec.train(compiled, resume=first.run_dir, steps=6, progress=False)
    straight = pdec.train(compiled, "kfac", steps=6, run_root=tmp_path / "b", **settings)
    assert resumed.final["learned_kappa"] == pytest.approx(straight.final["learned_kappa"], rel=1e-12)
    assert resumed.final["loss"] == pytest.approx(straight.final["loss"], rel=1e-10)


# ------------------------------------------------------------------ ENGD: κ's columns of the Gramian
def _dense_jacobian(model, batch):
    """J (Σ_τ N_τ M_τ, D + P) of the residuals scaled by 1/√N_τ w.r.t. the layers' parameters (the
    column-stacking vec of each W̃, as pdec.curvature.flatten) and then κ, by
    torch.autograd.functional.jacobian through torch.func.functional_call; and r, scaled alike."""
    from pdec.curvature import flatten, layer_matrices, layer_shapes, matrices_to_params, unflatten

    class Residuals(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, batch):
            return torch.cat([self.inner.residual(t, X).reshape(-1) / X.shape[0] ** 0.5 for t, X in batch.items()])

    wrapper, shapes, names = Residuals(model), layer_shapes(model), list(model.learned)
    D = sum(o * i for o, i in shapes)

    def residuals(theta):
        params = {f"inner.{k}": v for k, v in matrices_to_params(model, unflatten(theta[:D], shapes)).items()}
        params.update({f"inner.learned.{n}": theta[D + i] for i, n in enumerate(names)})
        return torch.func.functional_call(wrapper, params, (batch,))

    theta0 = torch.cat([flatten(layer_matrices(model)), torch.stack([p.detach() for p in model.learned.values()])])
    return torch.autograd.functional.jacobian(residuals, theta0), residuals(theta0).detach(), D


@pytest.mark.parametrize("name", ["engd", "engd-layerwise"])
def test_engd_adds_the_learned_columns_to_the_gramian(name):
    """ENGD's Gramian (full, or its layer blocks and κ's block) and its step against a dense J of
    all parameters, κ's columns included (learned_scaled: P = 3)."""
    from pdec.curvature import flatten

    model, batch = _scaled_case(seed=4)
    J, r, D = _dense_jacobian(model, batch)
    G, g = J.T @ J, J.T @ r
    opt = get_optimizer(name)(model, ema=0.0, damping=1e-3)
    delta, _ = opt.direction(batch)
    got = torch.cat([flatten(delta), opt.learned_delta])
    eye = torch.eye(G.shape[0], dtype=G.dtype)
    if name == "engd":
        torch.testing.assert_close(opt.G[0], G, rtol=1e-10, atol=1e-12)
        want = torch.linalg.lstsq(G + 1e-3 * eye, -g[:, None]).solution[:, 0]
    else:
        sizes = [b.shape[0] for b in opt.G]
        assert sizes[-1] == 3 and sum(sizes) == D + 3
        want, start = [], 0
        for k, block in zip(sizes, opt.G):
            torch.testing.assert_close(block, G[start:start + k, start:start + k], rtol=1e-10, atol=1e-12)
            want.append(torch.linalg.solve(block + 1e-3 * eye[:k, :k], -g[start:start + k]))
            start += k
        want = torch.cat(want)
    torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-10)


def test_trial_losses_move_the_learned_parameters_with_the_layers():
    """The batched line search with a joint direction (full ENGD's) equals the loss at each trial
    point, set one by one."""
    from pdec.curvature import layer_matrices
    from pdec.optim.line_search import trial_losses

    model, batch = _scaled_case(seed=6)
    g = torch.Generator().manual_seed(0)
    base = [M.detach().clone() for M in layer_matrices(model)]
    direction = [0.3 * torch.randn(M.shape, generator=g, dtype=M.dtype) for M in base]
    kappa0 = torch.stack([p.detach().clone() for p in model.learned.values()])
    dk = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    alphas = [2.0 ** -20, 0.25, 1.0]
    got = trial_losses(model, batch, base, direction, torch.tensor(alphas, dtype=torch.float64), kappa0, dk)
    want = []
    for a in alphas:
        with torch.no_grad():
            for layer, W, D in zip(model.layers, base, direction):
                layer.weight.copy_(W[:, :-1] + a * D[:, :-1])
                layer.bias.copy_(W[:, -1] + a * D[:, -1])
            for p, k0, d in zip(model.learned.values(), kappa0, dk):
                p.copy_(k0 + a * d)
            want.append(float(pinn_loss(model, batch)[0]))
    torch.testing.assert_close(got, torch.tensor(want, dtype=got.dtype), rtol=1e-12, atol=0)


def test_layerwise_engd_recovers_the_diffusivity():
    """heat1d_inverse from κ = 1: layer-wise ENGD reaches κ* = 1/4 to 1e-2 in 400 steps (a session's
    run: 0.24938)."""
    run = pdec.train(pdec.compile(_inverse(), hidden=(16,), write=False), "engd-layerwise", steps=400,
                     n_interior=300, n_condition=60, n_eval=300, save=False, progress=False)
    assert abs(run.final["learned_kappa"] - 0.25) < 1e-2, run.final


# ------------------------------------------------------------------ KFAC*, Hessian-free: κ's columns in G v
def test_gramian_products_with_a_learned_part_equal_the_dense_jacobian():
    """J v and G v from the linearizations, v with a learned part (P,), against the dense J of all
    parameters (Hessian-free's CG products)."""
    from pdec.curvature import curvature_pass, flatten, layer_matrices, linearized_jvp, linearized_matvec

    model, batch = _scaled_case(seed=7)
    J, _, D = _dense_jacobian(model, batch)
    g = torch.Generator().manual_seed(1)
    v = [torch.randn(M.shape, generator=g, dtype=M.dtype) for M in layer_matrices(model)]
    v.append(torch.randn(3, generator=g, dtype=torch.float64))
    flat = torch.cat([flatten(v[:-1]), v[-1]])
    lins = curvature_pass(model, batch).linearizations
    Jv = torch.cat([linearized_jvp(lin, v).reshape(-1) / lin.n_samples ** 0.5 for lin in lins.values()])
    torch.testing.assert_close(Jv, J @ flat, rtol=1e-11, atol=1e-13)
    Gv = linearized_matvec(lins, v)
    torch.testing.assert_close(torch.cat([flatten(Gv[:-1]), Gv[-1]]), J.T @ (J @ flat), rtol=1e-11, atol=1e-13)
    assert len(linearized_matvec(lins, v[:-1])) == len(v) - 1   # without a learned part, the layers' alone
    with pytest.raises(ValueError, match="a vector with a learned parameters' part, but the model has none"):
        problem = pdec.load_spec(ROOT / "specs" / "heat1d.py")
        plain = pdec.compile(problem, hidden=(4,), write=False).model
        from pdec.train.sampling import PointSampler
        lin = curvature_pass(plain, PointSampler(problem, 5, 4, seed=0).batch).linearizations["interior"]
        linearized_jvp(lin, [*layer_matrices(plain), torch.zeros(1, dtype=torch.float64)])


@pytest.mark.parametrize("name, steps", [("kfac-star", 300), ("hessian-free", 60)])
def test_kfac_star_and_hessian_free_recover_the_diffusivity(name, steps):
    """heat1d_inverse from κ = 1, a 2-16-1 net: KFAC* in 300 steps and Hessian-free in 60 bring κ
    within 1e-2 of 1/4 (a session's runs: 0.2434 and 0.2438)."""
    run = pdec.train(pdec.compile(_inverse(), hidden=(16,), write=False), name, steps=steps, n_interior=200,
                     n_condition=40, n_eval=200, eval_every=steps, save=False, progress=False)
    assert abs(run.final["learned_kappa"] - 0.25) < 1e-2, run.final
    assert run.final["loss"] < 1e-3 * run.history[0]["loss"]


@pytest.mark.parametrize("names, message", [
    (["values"], r"learned parameter name 'values' is taken: the generated module keeps its learned parameters "
                 r"in a torch.nn.ParameterDict"),
    (["training"], r"learned parameter name 'training' is taken"),
    (["k", "err_k"], r"learned parameters k and err_k: metrics.csv's learned_err_k, the error of k, would also "
                     r"be the value of err_k"),
])
def test_learned_names_that_would_clash_are_spec_errors(names, message):
    symbols = [sp.Symbol(n) for n in names]
    problem = _heat({s: Learned(1.0, exact=0.5) for s in symbols},
                    interior=u.diff(t) - sum(symbols) * u.diff(x, 2))
    with pytest.raises(pdec.SpecError, match=message):
        problem.validate()


def test_kfac_moves_a_parameter_only_a_condition_reads_without_merged_conditions():
    """merge_conditions=false keeps the interior's Kronecker pair only, but κ's block sums every
    term's: a Robin coefficient β read by one condition keeps moving (it stalled at a fixed value
    when the block took the interior's alone, whose G_β is 0)."""
    problem = Problem(name="r", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[sp.Function("v")(x, y)],
                      interior=sp.Function("v")(x, y).diff(x, 2) + sp.Function("v")(x, y).diff(y, 2) - 1,
                      conditions={"robin": Condition(lam * sp.Function("v")(x, y).diff(x) + sp.Function("v")(x, y)
                                                     - 1, on=Face(x, "max")),
                                  "rest": Condition(sp.Function("v")(x, y), on=Face(x, "min"))},
                      parameters={lam: Learned(0.5)})
    run = pdec.train(pdec.compile(problem, hidden=(8,), write=False), "kfac", steps=60, n_interior=50,
                     n_condition=20, n_eval=0, eval_every=10, save=False, progress=False, merge_conditions=False)
    values = [row["learned_lam"] for row in run.history]
    assert len(set(values[-3:])) == 3, values   # still moving over the last 20 steps


def test_the_learned_line_search_keeps_kappa_when_no_trial_is_finite():
    """Every trial non-finite (a direction into κ < 0 through sqrt(κ)): κ stays, and the loss
    returned is the current one, which the layers' line search then has to beat."""
    from pdec.curvature import curvature_pass
    from pdec.optim.line_search import learned_line_search

    problem = _heat({kappa: Learned(1e-12)}, interior=u.diff(t) - sp.sqrt(kappa) * u.diff(x, 2))
    model = pdec.compile(problem, hidden=(4,), write=False).model
    from pdec.train.sampling import PointSampler

    batch = PointSampler(problem, 10, 6, seed=0).batch
    outputs = {k: lin.output for k, lin in curvature_pass(model, batch).linearizations.items()}
    beta, loss = learned_line_search(model, batch, outputs, torch.tensor([-1.0], dtype=torch.float64),
                                     current=0.125)
    assert (beta, loss) == (0.0, 0.125) and float(model.learned["kappa"].detach()) == 1e-12
