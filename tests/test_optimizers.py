"""Optimizers against dense references, and their input checks."""

from __future__ import annotations

import pytest
import torch

import pdec
from pdec.curvature import dense_gramian, flatten, layer_matrices
from pdec.loss import pinn_loss
from pdec.optim import OPTIMIZERS, get_optimizer
from pdec.train.sampling import PointSampler
from conftest import ROOT, SHIPPED_SPECS, TEST_SPECS


KFAC_DEFAULT_DAMPING = 1.544099e-12   # the paper's, appendix A.2


def _setup(spec="poisson2d", hidden=(6, 5), n=30, seed=0):
    c = pdec.compile(pdec.load_spec(ROOT / "specs" / f"{spec}.py"), hidden=hidden, write=False, seed=seed)
    batch = PointSampler(c.problem, n, 12, seed=seed).batch
    return c.model, batch


def _grad_flat(model, batch):
    total, _ = pinn_loss(model, batch)
    grads = torch.autograd.grad(total, [p for p in model.parameters()])
    # parameters are (W1, b1, W2, b2, ...): layer matrices W̃ = (W b)
    mats = [torch.cat([grads[2 * i], grads[2 * i + 1][:, None]], dim=1) for i in range(len(model.layers))]
    return flatten(mats)


def test_engd_step_is_dense_least_squares():
    model, batch = _setup()
    opt = get_optimizer("engd")(model, ema=0.0, damping=1e-6)
    G = dense_gramian(model, batch)                      # independently tested against jacrev
    g = _grad_flat(model, batch)
    want = torch.linalg.lstsq(G + 1e-6 * torch.eye(G.shape[0], dtype=G.dtype), -g[:, None]).solution[:, 0]
    delta, _ = opt.direction(batch)
    torch.testing.assert_close(flatten(delta), want, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(opt.G[0], G, rtol=1e-10, atol=1e-12)


def test_layerwise_engd_uses_the_block_diagonal():
    model, batch = _setup()
    opt = get_optimizer("engd-layerwise")(model, ema=0.0, damping=1e-6)
    G = dense_gramian(model, batch)
    g = _grad_flat(model, batch)
    sizes = [b.shape[0] for b in opt.G]
    want, start = [], 0
    for k in sizes:
        block = G[start:start + k, start:start + k] + 1e-6 * torch.eye(k, dtype=G.dtype)
        want.append(torch.linalg.solve(block, -g[start:start + k]))
        start += k
    delta, _ = opt.direction(batch)
    torch.testing.assert_close(flatten(delta), torch.cat(want), rtol=1e-7, atol=1e-10)


def test_kfac_star_alpha_mu_match_dense_closed_form():
    model, batch = _setup()
    # trust off: its first step raises the loss here, which the safeguard would undo
    opt = get_optimizer("kfac-star")(model, damping=1e-4, ema=0.5, trust=False)
    opt.step(batch)                                       # now δ_prev ≠ 0
    prev = flatten(opt.previous)
    theta0 = flatten([M.detach().clone() for M in layer_matrices(model)])
    G = dense_gramian(model, batch)
    g = _grad_flat(model, batch)
    info = opt.step(batch)
    delta = flatten(opt.previous) - info.extra["momentum"] * prev
    delta = delta / info.lr                               # Δ of this step
    lam = 1e-4
    Gl = G + lam * torch.eye(G.shape[0], dtype=G.dtype)
    M = torch.tensor([[delta @ Gl @ delta, delta @ Gl @ prev], [prev @ Gl @ delta, prev @ Gl @ prev]])
    alpha, mu = (-torch.linalg.solve(M, torch.stack([delta @ g, prev @ g]))).tolist()
    assert info.lr == pytest.approx(alpha, rel=1e-8)
    assert info.extra["momentum"] == pytest.approx(mu, rel=1e-8)
    theta1 = flatten(layer_matrices(model))
    torch.testing.assert_close(theta1 - theta0, alpha * delta + mu * prev, rtol=1e-8, atol=1e-12)


def test_kfac_star_trust_takes_the_same_steps_while_they_lower_the_loss():
    runs = []
    for trust in (False, True):
        model, batch = _setup(hidden=(16,))     # its first 4 steps lower the loss (63 → 5.1)
        opt = get_optimizer("kfac-star")(model, damping=1e-4, ema=0.5, trust=trust)
        infos = [opt.step(batch) for _ in range(4)]
        runs.append((flatten(layer_matrices(model)), infos))
    (theta_off, infos_off), (theta_on, infos_on) = runs
    assert all(i.extra["rejected"] == 0.0 for i in infos_on)
    assert [i.loss for i in infos_on] == pytest.approx([i.loss for i in infos_off], rel=1e-12)
    assert infos_on[-1].loss < infos_on[0].loss / 5
    torch.testing.assert_close(theta_on, theta_off, rtol=1e-12, atol=1e-14)


def test_kfac_star_trust_undoes_a_step_that_raised_the_loss(monkeypatch):
    model, batch = _setup(hidden=(16,))
    opt = get_optimizer("kfac-star")(model, damping=1e-4, ema=0.5, trust=True)
    opt.step(batch)
    prev_before = flatten(opt.previous)
    before = [p.detach().clone() for p in model.parameters()]
    loss_before = pinn_loss(model, batch)[0].item()
    monkeypatch.setattr(opt, "loss_at", lambda b: loss_before * 10)   # as if the step raised the loss
    info = opt.step(batch)
    assert info.lr == 0.0 and info.extra["rejected"] == 1.0 and opt.scale == 0.25
    torch.testing.assert_close(flatten(opt.previous), prev_before, rtol=0, atol=0)  # the momentum is kept
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q)                                       # the parameters are restored
    monkeypatch.undo()
    # the retry is the 2 × 2 model's step scaled by ¼: (α, μ) = ¼ · (closed form with the dense Gramian)
    theta0 = flatten([M.detach().clone() for M in layer_matrices(model)])
    G = dense_gramian(model, batch) + 1e-4 * torch.eye(prev_before.shape[0], dtype=prev_before.dtype)
    g = _grad_flat(model, batch)
    info = opt.step(batch)
    delta = (flatten(layer_matrices(model)) - theta0 - info.extra["momentum"] * prev_before) / info.lr
    M = torch.tensor([[delta @ G @ delta, delta @ G @ prev_before], [prev_before @ G @ delta, prev_before @ G @ prev_before]])
    alpha, mu = (-torch.linalg.solve(M, torch.stack([delta @ g, prev_before @ g]))).tolist()
    assert info.extra["rejected"] == 0.0
    assert info.lr == pytest.approx(0.25 * alpha, rel=1e-8)
    assert info.extra["momentum"] == pytest.approx(0.25 * mu, rel=1e-8)
    state = opt.state_dict()
    fresh = get_optimizer("kfac-star")(model, damping=1e-4, ema=0.5, trust=True)
    fresh.load_state_dict(state)
    assert fresh.scale == opt.scale
    torch.testing.assert_close(flatten(fresh.previous), flatten(opt.previous), rtol=0, atol=0)


def test_kfac_direction_is_the_kronecker_preconditioned_gradient():
    from pdec.curvature import KronPreconditioner, curvature_pass

    model, batch = _setup()
    opt = get_optimizer("kfac")(model, ema=0.0, damping=1e-3)
    _, _, grad, delta = opt._direction(batch)
    cp = curvature_pass(model, batch)
    pre = KronPreconditioner.for_model(model, ema=0.0, damping=1e-3)
    pre.update(cp.factors)
    for l, (D, Gr) in enumerate(zip(delta, cp.gradient)):
        dense = pre.to_dense(l)
        want = -torch.linalg.solve(dense, Gr.mT.reshape(-1))  # column-stacking vec
        torch.testing.assert_close(D.mT.reshape(-1), want, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_decreases_the_loss(name):
    model, batch = _setup(hidden=(8,), n=40)
    opt = get_optimizer(name)(model, **({"lr": 1e-3} if name in ("sgd", "adam") else {}))
    first = opt.step(batch).loss
    for _ in range(4):
        opt.step(batch)
    final = float(pinn_loss(model, batch)[0].detach())
    assert final < first, f"{name}: {first} -> {final}"


def test_engd_refuses_a_gramian_that_does_not_fit():
    model, _ = _setup(hidden=(256, 256))
    with pytest.raises(pdec.PdecError, match=r"engd: .*D = 66817 parameters need ≈ \d+\.\d GiB"):
        get_optimizer("engd")(model, max_memory_gb=1.0)


def test_hyperparameter_errors():
    model, _ = _setup()
    with pytest.raises(pdec.PdecError, match="kfac: damping = -1.0 is out of range"):
        get_optimizer("kfac")(model, damping=-1.0)
    with pytest.raises(pdec.PdecError, match="kfac: ema = 1.5 is out of range"):
        get_optimizer("kfac")(model, ema=1.5)
    with pytest.raises(pdec.PdecError, match="unknown hyperparameter 'dampnig'; did you mean 'damping'"):
        get_optimizer("kfac")(model, dampnig=1.0)
    with pytest.raises(pdec.PdecError, match="init must be one of identity, zero"):
        get_optimizer("kfac")(model, init="ones")
    with pytest.raises(pdec.PdecError, match="unknown optimizer 'kfca'; did you mean 'kfac'"):
        get_optimizer("kfca")


def test_kfac_update_period_refreshes_every_T_steps():
    model, batch = _setup()
    opt = get_optimizer("kfac")(model, update_period=3)
    for _ in range(7):
        opt.step(batch)
    assert opt.pre.n_updates == 3  # steps 0, 3, 6


def _losses_one_by_one(model, batch, base, direction, alphas) -> list[float]:
    """L(θ₀ + α δ) for each α, setting the model's parameters (left at the last α)."""
    out = []
    for a in alphas:
        with torch.no_grad():
            for layer, W, D in zip(model.layers, base, direction):
                layer.weight.copy_(W[:, :-1] + a * D[:, :-1])
                layer.bias.copy_(W[:, -1] + a * D[:, -1])
            out.append(float(pinn_loss(model, batch)[0]))
    return out


@pytest.mark.parametrize("spec", ["poisson2d", "heat1d", "advection1d"])
def test_batched_trial_losses_equal_one_by_one(spec):
    """The batched line-search pass equals the loss evaluated at each trial point separately."""
    from pdec.optim.line_search import GRID, grid_line_search, trial_losses

    model, batch = _setup(spec)
    g = torch.Generator().manual_seed(0)
    base = [M.detach().clone() for M in layer_matrices(model)]
    direction = [torch.randn(M.shape, generator=g, dtype=M.dtype) for M in base]
    alphas = [GRID[0], 0.125, 0.5, 1.0]
    got = trial_losses(model, batch, base, direction, torch.tensor(alphas, dtype=base[0].dtype))
    want = _losses_one_by_one(model, batch, base, direction, alphas)
    torch.testing.assert_close(got, torch.tensor(want, dtype=got.dtype), rtol=1e-12, atol=0)
    with torch.no_grad():
        for layer, W in zip(model.layers, base):
            layer.weight.copy_(W[:, :-1])
            layer.bias.copy_(W[:, -1])
    alpha, loss = grid_line_search(model, batch, direction)
    assert loss == pytest.approx(float(pinn_loss(model, batch)[0].detach()), rel=1e-12)
    assert alpha in GRID


@pytest.mark.parametrize("mode", ["auto", "taylor"])
@pytest.mark.parametrize("hidden", [(5,), (5, 4)])
@pytest.mark.parametrize("path", SHIPPED_SPECS + TEST_SPECS, ids=lambda p: p.stem)
def test_trial_losses_with_only_the_read_columns_at_the_last_layer(path, hidden, mode):
    """The line search activates only the residual's columns at the last hidden layer
    (``activate_<term>_last``); its losses equal the full loss at each trial point."""
    _check_last_layer(pdec.compile(pdec.load_spec(path), hidden=hidden, mode=mode, write=False, seed=1))


@pytest.mark.parametrize("hidden", [(5,), (5, 4)])
@pytest.mark.parametrize("spec", ["heat1d", "heat4d"])
def test_trial_losses_with_first_order_columns(spec, hidden):
    """Mode "laplacian" on heat: ∂_t h a column of its own, read next to the Laplacian channel."""
    c = pdec.compile(pdec.load_spec(ROOT / "specs" / f"{spec}.py"), hidden=hidden, mode="laplacian",
                     write=False, seed=1)
    assert c.plan.interior.mode == "laplacian"
    _check_last_layer(c)


@pytest.mark.parametrize("activation", ["sin", "sigmoid", "softplus"])
@pytest.mark.parametrize("spec", ["system", "variable_coeff"])
def test_last_layer_columns_with_other_activations(spec, activation):
    """Polynomial derivatives in σ (sigmoid: Horner's rule in t = σ(h)) and others (sin,
    softplus: σ', σ'' formed) give the same read columns and trial losses."""
    c = pdec.compile(pdec.load_spec(ROOT / "tests" / "specs" / f"{spec}.py"), hidden=(5, 4),
                     activation=activation, write=False, seed=1)
    polynomial = "s0 = torch.sigmoid(z)  # σ(h); σ' = " in c.source
    assert polynomial == (activation == "sigmoid")
    _check_last_layer(c)


def test_residual_component_without_the_network_is_refused():
    """A residual component that does not involve u (here sin x) is a constant term of the loss:
    the spec is refused, naming the component (the generated code once broadcast it to the
    trials' shape in the line search)."""
    import sympy as sp

    from pdec import Boundary, Box, Condition, Problem

    x, y = sp.symbols("x y")
    u = sp.Function("u")(x, y)
    problem = Problem(name="degenerate", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u],
                      interior=[-(u.diff(x, 2) + u.diff(y, 2)) - 1, sp.sin(x), sp.Integer(2),
                                sp.Rational(1, 10**20)],
                      conditions={"b": Condition(u, on=Boundary())})
    with pytest.raises(pdec.SpecError, match=r"term 'interior\[1\]': the residual contains no unknown"):
        pdec.compile(problem, hidden=(5,), write=False, seed=1)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_last_layer_with_a_time_variable_and_x_dependent_coefficients(activation):
    """A spec variable named t next to σ(h) and per-sample Q(x, t) in ``activate_<term>_last``."""
    import sympy as sp

    from pdec import Box, Condition, Initial, Problem, SpatialBoundary

    t, x = sp.symbols("t x")
    u = sp.Function("u")(t, x)
    problem = Problem(name="heat_tx", domain=Box({t: (0, 1), x: (0, 1)}, time=t), unknowns=[u],
                      interior=u.diff(t) - (1 + t + x**2) * u.diff(x, 2) - sp.sin(x),
                      conditions={"ib": Condition(u, on=Initial() | SpatialBoundary())})
    c = pdec.compile(problem, hidden=(5,), activation=activation, write=False, seed=1)
    assert "Q(x) = q(x)·I: one coefficient per sample" in c.source and "Q0[..., None] * dz.pow(2)" in c.source
    _check_last_layer(c)


def test_line_search_takes_no_step_when_no_trial_lowers_the_loss():
    """With the loss at θ given, an ascent direction leaves θ unchanged (the paper's rule)."""
    from pdec.optim.line_search import grid_line_search

    c = pdec.compile(pdec.load_spec(ROOT / "specs" / "poisson2d.py"), hidden=(5,), write=False, seed=1)
    model = c.model
    batch = PointSampler(c.problem, 30, 8, seed=1).batch
    loss, _ = pinn_loss(model, batch)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    ascent = [torch.cat([gw, gb[:, None]], dim=1) for gw, gb in zip(grads[0::2], grads[1::2])]
    current = float(loss.detach())
    before = [p.detach().clone() for p in model.parameters()]
    alpha, reported = grid_line_search(model, batch, ascent, current=current)
    assert alpha == 0.0 and reported == current
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    alpha, _ = grid_line_search(model, batch, [-d for d in ascent], current=current)
    assert alpha > 0


def _check_last_layer(c) -> None:
    from pdec.optim.line_search import trial_losses

    model = c.model
    batch = PointSampler(c.problem, 9, 2 * max(1, len(c.problem.condition_items)), seed=1).batch
    g = torch.Generator().manual_seed(1)
    base = [M.detach().clone() for M in layer_matrices(model)]
    direction = [0.3 * torch.randn(M.shape, generator=g, dtype=M.dtype) for M in base]
    alphas = [0.25, 1.0]
    got = trial_losses(model, batch, base, direction, torch.tensor(alphas, dtype=base[0].dtype))
    want = _losses_one_by_one(model, batch, base, direction, alphas)
    torch.testing.assert_close(got, torch.tensor(want, dtype=got.dtype), rtol=1e-12, atol=0)
    for term, X in batch.items():
        assert hasattr(model, f"activate_{term}_last") == (model.modes[term] != "value")
        if model.modes[term] == "value":
            continue
        X = model.term_points(term, X)   # a periodic term runs on its points and their images, a data term on x
        with torch.no_grad():
            stacks = model.propagate(term, batch[term])  # outputs[-2]: the last hidden pre-activation
            Z = stacks.outputs[-2]
            last = getattr(model, f"activate_{term}_last")(Z[:, 0], Z[:, 1:], X)
            # extra leading dims (the line search's trials) and columns broadcast over the samples
            Z2 = torch.stack([Z, 2 * Z])
            shared = Z2[:, :1, 1:]
            last2 = getattr(model, f"activate_{term}_last")(Z2[:, :, 0], shared, X.expand(2, -1, -1))
            full2 = getattr(model, f"activate_{term}")(
                torch.cat([Z2[:, :, :1], shared.expand(-1, Z.shape[0], -1, -1)], dim=2), X.expand(2, -1, -1))
        read = list(model.residual_columns[term])
        # the same columns, up to round-off (tanh-like σ: a polynomial in t = σ(h), Horner's rule)
        want, want2 = stacks.inputs[-1][:, read], full2[:, :, read]
        torch.testing.assert_close(last, want, rtol=1e-12, atol=1e-13 * float(want.abs().max()))
        torch.testing.assert_close(last2, want2, rtol=1e-12, atol=1e-13 * float(want2.abs().max()))
        # the value column σ(h) itself; without autograd runtime.tanh is 2σ(2z) − 1, whose vectorised
        # and scalar paths can differ in the last bit, so exact only up to its error bound
        torch.testing.assert_close(full2[0, :, 0], stacks.inputs[-1][:, 0], rtol=0, atol=5e-16)


def test_kfac_star_2x2_solve_matches_the_pseudo_inverse():
    """The closed-form least-squares solve of KFAC*'s 2 × 2 model against torch.linalg.pinv, on
    random symmetric PSD matrices over 12 decades of conditioning, rank one, and zero."""
    from pdec.optim.kfac import solve_symmetric_2x2

    g = torch.Generator().manual_seed(0)
    for k in range(300):
        Q, _ = torch.linalg.qr(torch.randn(2, 2, dtype=torch.float64, generator=g))
        lam = torch.tensor([1.0, 10.0 ** -(k % 13)], dtype=torch.float64) * 10.0 ** float(k % 7 - 20)
        m = Q @ torch.diag(lam) @ Q.T
        m = 0.5 * (m + m.T)
        r = torch.randn(2, dtype=torch.float64, generator=g)
        want = torch.linalg.pinv(m, hermitian=True) @ r
        got = solve_symmetric_2x2(m, r)
        assert torch.allclose(got, want, rtol=1e-3 * 10.0 ** (k % 13) * 1e-10 + 1e-12, atol=0), (k, got, want)
    u = torch.tensor([0.6, -0.8], dtype=torch.float64)
    r = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(solve_symmetric_2x2(3.0 * torch.outer(u, u), r),
                          torch.linalg.pinv(3.0 * torch.outer(u, u)) @ r, rtol=1e-14, atol=0)
    assert torch.equal(solve_symmetric_2x2(torch.zeros(2, 2, dtype=torch.float64), r), torch.zeros(2, dtype=torch.float64))


def test_kfac_adaptive_damping_follows_the_line_search():
    """λ × 3/2 after α* ≤ 2⁻⁸ (or no step), × 2/3 after α* ≥ ¼, unchanged between, within
    [1e-15, 1e6]; the next direction uses the new λ (dense solve of the damped Kronecker sum)."""
    model, batch = _setup()
    opt = get_optimizer("kfac")(model, adaptive_damping=True, damping=1e-6)
    opt.step(batch)
    lam = opt.pre.damping
    for alpha, factor in [(0.0, 1.5), (2.0**-8, 1.5), (2.0**-7, 1.0), (0.125, 1.0), (0.25, 1 / 1.5), (1.0, 1 / 1.5)]:
        opt.adapt_damping(alpha)
        lam *= factor
        assert opt.pre.damping == pytest.approx(lam, rel=1e-14), alpha
    opt.pre.set_damping(1e6)
    opt.adapt_damping(0.0)
    assert opt.pre.damping == 1e6
    opt.pre.set_damping(1e-15)
    opt.adapt_damping(1.0)
    assert opt.pre.damping == 1e-15
    opt.pre.set_damping(3e-3)
    g = torch.Generator().manual_seed(2)
    grads = [torch.randn(M.shape, generator=g, dtype=M.dtype) for M in layer_matrices(model)]
    for l, (got, G) in enumerate(zip(opt.pre.apply_inverse(grads), grads)):
        want = torch.linalg.solve(opt.pre.to_dense(l), G.mT.reshape(-1))   # column-stacking vec
        torch.testing.assert_close(got.mT.reshape(-1), want, rtol=1e-9, atol=0)


def test_kfac_logs_its_damping_and_keeps_it_fixed_by_default():
    model, batch = _setup()
    opt = get_optimizer("kfac")(model)
    infos = [opt.step(batch) for _ in range(3)]
    assert [i.extra["damping"] for i in infos] == [KFAC_DEFAULT_DAMPING] * 3


def test_kfac_adaptive_damping_rescues_a_stalled_run():
    """Allen–Cahn: with the paper's λ = 1.5e-12 KFAC's line search shrinks its steps to 2⁻¹¹ and
    below (README, "When training stalls"); with adaptive_damping λ rises to where it takes steps
    of ⅛ again. Measured at this size: loss 1.6e-3 against 1.1e-5, relative L2 0.18 against 3.3e-3."""
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / "allen_cahn.py"), write=False)
    small = dict(steps=200, n_interior=300, n_condition=100, n_eval=500, save=False, progress=False)
    fixed = pdec.train(compiled, "kfac", **small)
    adaptive = pdec.train(compiled, "kfac", adaptive_damping=True, **small)
    assert adaptive.final["loss"] < 0.02 * fixed.final["loss"]
    assert adaptive.final["rel_l2"] < 0.05 * fixed.final["rel_l2"]
    assert 1e-10 < adaptive.history[-1]["damping"] < 1e-3 and fixed.history[-1]["damping"] == KFAC_DEFAULT_DAMPING
