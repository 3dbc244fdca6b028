"""pdec.curvature against independent references: torch.func Jacobians, brute-force factors,
dense Kronecker solves and dense Gramians (MATH.md §4–§6).

Cases (problem × mode × widths), float64, small N:
    laplacian  2d Poisson −Δu = f, u = 0 on ∂Ω              (forward Laplacian)
    collapsed  1+1d heat, initial and boundary as two conditions, 3 hidden layers (3 terms)
    taylor     the same Poisson, mode="taylor"
    taylor3    u_y + u u_x + u_xxx (3rd order, nonlinear)
    taylor4    biharmonic u_xxxx + 2 u_xxyy + u_yyyy (4th order, S = 13)
    system     two unknowns, M = 2 interior residuals, a condition per unknown
    periodic   1+1d advection–diffusion with a Periodic(x) condition [u, ∂_x u] (paired points)
    periodic-taylor  KdV on a ring, [u, ∂_x u, ∂_xx u] periodic (Taylor mode)
    data       2d Poisson with measured [u, ∂_x u] (a Data condition: rows (x, y), weight 4)
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import sympy as sp
import torch
from torch import nn
from torch.func import functional_call, jacrev

import pdec
from pdec import Boundary, Box, Condition, Initial, Problem, SpatialBoundary
from pdec.curvature import (KronFactors, KronPreconditioner, KronSumInverse, compute_factors,
                            curvature_pass, dense_gramian, dense_gramian_blocks, expand_factors,
                            flatten, gramian_matvec, gramian_quadratic_form, gramian_quadratic_forms,
                            kron_sum_solve, linearize, loss_gradient, merge_factors,
                            per_sample_jacobians, reduce_factors, unflatten, unvec, vec)
from pdec.curvature.layout import layer_shapes
from pdec.loss import pinn_loss
from pdec.runtime import linear_stack

# torch's forward-AD decompositions call torch.jit.script internally, which recent torch deprecates
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
DT = torch.float64

x, y = sp.symbols("x y", real=True)
u = sp.Function("u")(x, y)
v = sp.Function("v")(x, y)
SQUARE = Box({x: (0, 1), y: (0, 1)})


def poisson() -> Problem:
    f = 2 * sp.pi**2 * sp.sin(sp.pi * x) * sp.sin(sp.pi * y)
    return Problem(name="poisson_c", domain=SQUARE, unknowns=[u],
                   interior=-(u.diff(x, 2) + u.diff(y, 2)) - f,
                   conditions={"boundary": Condition(u, on=Boundary())})


def third_order() -> Problem:
    return Problem(name="kdv_c", domain=SQUARE, unknowns=[u],
                   interior=u.diff(y) + u * u.diff(x) + u.diff(x, 3),
                   conditions={"boundary": Condition(u - sp.sin(x), on=Boundary())})


def biharmonic() -> Problem:
    return Problem(name="biharmonic_c", domain=SQUARE, unknowns=[u],
                   interior=u.diff(x, 4) + 2 * u.diff(x, 2, y, 2) + u.diff(y, 4) - sp.cos(x * y),
                   conditions={"boundary": Condition(u, on=Boundary())})


def heat_two_conditions() -> Problem:
    """1+1d heat with its initial and boundary data as two separate conditions (three terms)."""
    t = sp.Symbol("t", real=True)
    w = sp.Function("w")(t, x)
    return Problem(name="heat_c", domain=Box({t: (0, 1), x: (0, 1)}, time=t), unknowns=[w],
                   interior=w.diff(t) - sp.Rational(1, 4) * w.diff(x, 2),
                   conditions={"initial": Condition(w - sp.sin(sp.pi * x), on=Initial()),
                               "boundary": Condition(w, on=SpatialBoundary())})


def advection_system() -> Problem:
    """x-dependent and per-unknown first-order parts next to Laplacians of two weights: auto puts
    the first-order terms in columns of their own and shares one Laplacian channel (S = 4)."""
    return Problem(name="advection_c", domain=SQUARE, unknowns=[u, v],
                   interior=[x * u.diff(x) - u.diff(x, 2) - u.diff(y, 2) + v,
                             v.diff(y) - 2 * (v.diff(x, 2) + v.diff(y, 2)) - u * v.diff(x)],
                   conditions={"bu": Condition(u, on=Boundary()), "bv": Condition(v - x * y, on=Boundary())})


def system() -> Problem:
    return Problem(name="system_c", domain=SQUARE, unknowns=[u, v],
                   interior=[u.diff(x, 2) + v * u.diff(y) - sp.sin(x), v.diff(y, 2) - u * v.diff(x)],
                   conditions={"bu": Condition(u, on=Boundary()), "bv": Condition(v - x, on=Boundary())})


# name -> (problem factory, hidden widths, forced mode, expected interior mode, expected M)
CASES = {
    "laplacian": (poisson, (7, 5), "auto", "laplacian", 1),
    "collapsed": (heat_two_conditions, (6, 4, 5), "auto", "collapsed", 1),
    # ∂_t w in a column of its own, Δ_x as a forward Laplacian (the paper's heat stack)
    "laplacian-unfolded": (heat_two_conditions, (6, 4, 5), "laplacian", "laplacian", 1),
    "laplacian-system": (advection_system, (6, 5), "auto", "laplacian", 2),
    "taylor": (poisson, (5, 7), "taylor", "taylor", 1),
    "taylor3": (third_order, (4, 6), "auto", "taylor", 1),
    "taylor4": (biharmonic, (6, 5), "auto", "taylor", 1),
    "system": (system, (7, 5), "auto", None, 2),
    # a condition of two components (velocity = [u − u*, v − v*]) next to a scalar one
    "vector-condition": (lambda: pdec.load_spec(ROOT / "specs" / "kovasznay.py"), (6, 5), "auto",
                         "laplacian", 3),
    # a periodic condition [u, ∂_x u] on Periodic(x): each sample reads the network at two points
    "periodic": (lambda: pdec.load_spec(ROOT / "specs" / "advection1d.py"), (6, 5), "auto", "collapsed", 1),
    # the same in Taylor mode: KdV on a ring, [u, ∂_x u, ∂_xx u] periodic (M = 3, S = 3 per point)
    "periodic-taylor": (lambda: pdec.load_spec(ROOT / "tests" / "specs" / "kdv_periodic.py"), (4, 6), "auto",
                        "taylor", 1),
    # measured values of [u, ∂_x u] (S = 2 stack, M = 2): the residual subtracts the rows' observed values
    "data": (lambda: pdec.load_spec(ROOT / "tests" / "specs" / "measured_flux.py"), (6, 5), "auto", "laplacian", 1),
    # hard constraints: u = x(1 − x)y(1 − y)·v, the interior term alone, in v (point-dependent
    # collapsed operator); and u = exp(w) beside an unknown without an ansatz (M = 2; e^w in front
    # of the Laplacian channel)
    "ansatz": (lambda: pdec.load_spec(ROOT / "specs" / "poisson2d_hard.py"), (6, 5), "auto", "collapsed", 1),
    "ansatz-system": (lambda: pdec.load_spec(ROOT / "tests" / "specs" / "ansatz_system.py"), (5, 6), "auto",
                      "laplacian", 2),
    # the value in front of a channel: −(u Δu + |∇u|²)
    "value-factor": (lambda: pdec.load_spec(ROOT / "tests" / "specs" / "quasilinear.py"), (6, 5), "auto",
                     "laplacian", 1),
}


def _compile(problem: Problem, hidden, mode: str):
    return pdec.compile(problem, hidden=hidden, mode=mode, write=False, seed=0).model


@functools.lru_cache(maxsize=None)
def case(name: str):
    """(model, batch) with N = 7 interior and 6 points per condition."""
    factory, hidden, mode, expected, M = CASES[name]
    model = _compile(factory(), hidden, mode)
    if expected is not None:
        assert model.modes["interior"] == expected
    gen = torch.Generator().manual_seed(1)
    batch = {t: torch.rand(7 if t == "interior" else 6, model.n_in + model.observed.get(t, 0), generator=gen,
                           dtype=DT)   # a data term's rows end in its observed values
             for t in model.term_names}
    assert model.residual("interior", batch["interior"]).shape[1] == M
    return model, batch


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


class TermModule(nn.Module):
    """forward(X) = model.residual(term, X), for functional_call (test-local, independent)."""

    def __init__(self, model, term):
        super().__init__()
        self.model, self.term = model, term

    def forward(self, X):
        return self.model.residual(self.term, X)


def reference_jacobians(model, term, X) -> list[torch.Tensor]:
    """torch.func.jacrev of r (N, M) w.r.t. each layer's (W, b), bias as last column."""
    wrapper = TermModule(model, term)
    params = {k: p.detach() for k, p in wrapper.named_parameters()}
    jac = jacrev(lambda p: functional_call(wrapper, p, (X,)))(params)
    return [torch.cat([jac[f"model.layers.{l}.weight"], jac[f"model.layers.{l}.bias"][..., None]], -1)
            for l in range(len(model.layers))]


def reference_jacobian_matrix(model, term, X) -> torch.Tensor:
    """(N·M, D) in the column-stacking vec order of pdec.curvature.flatten."""
    Js = reference_jacobians(model, term, X)
    N, M = Js[0].shape[:2]
    return torch.cat([J.mT.reshape(N * M, -1) for J in Js], dim=1)


def forward_points(model, term, X) -> torch.Tensor:
    """The rows a term's forward pass runs on: X, for a data term its first d columns, or for a
    periodic term X then its images (the periodic column set to the upper bound), built here from
    ``model.observed`` and ``model.periodic``."""
    if term in model.observed:
        return X[:, :model.n_in]
    if term not in model.periodic:
        return X
    c, _, hi = model.periodic[term]
    image = X.clone()
    image[:, c] = hi
    return torch.cat([X, image])


def reference_output_grads(model, term, X, l) -> torch.Tensor:
    """g (N, M, S, h_l) via jacrev of the continuation Z⁽ˡ⁾ ↦ r through the later layers. A
    periodic term's r_n = q(x_n) − q(x_n') reads rows n and N + n: its g (N, M, 2S, h_l) joins the
    two rows' gradients along S."""
    stacks = model.propagate(term, X)
    P = forward_points(model, term, X)
    activate = getattr(model, f"activate_{term}")
    L = len(model.layers)
    N = X.shape[0]

    def rest(Zl):
        Z = Zl
        for k in range(l + 1, L):
            Z = linear_stack(activate(Z, P), model.layers[k])
        if term in model.observed:   # q(x) − y: the residual reads the whole rows
            return getattr(model, f"residual_{term}")(X, Z)
        q = getattr(model, f"residual_{term}")(P, Z)
        return q if P is X else q[:N] - q[N:]

    jac = jacrev(rest)(stacks.outputs[l].detach())  # (n, m, rows, s, o)
    rows = [torch.arange(N)] if term not in model.periodic else [torch.arange(N), torch.arange(N, 2 * N)]
    diag = torch.cat([jac[torch.arange(N), :, r] for r in rows], dim=2)  # (n, m, S·pairs, o)
    off = jac.clone()
    for r in rows:
        off[torch.arange(N), :, r] = 0
    assert off.abs().max() == 0, "samples must not interact"
    return diag


ALL = list(CASES)


# ----------------------------------------------------------------------------- Jacobians
@pytest.mark.parametrize("name", ALL)
def test_per_sample_jacobian_matches_jacrev(name):
    model, batch = case(name)
    for term, X in batch.items():
        lin = linearize(model, term, X)
        ours = per_sample_jacobians(lin)
        ref = reference_jacobians(model, term, X)
        assert len(ours) == len(ref) == len(model.layers)
        for l, (J, R) in enumerate(zip(ours, ref)):
            assert J.shape == R.shape, (term, l)
            assert rel_err(J, R) < 1e-10, (term, l)


@pytest.mark.parametrize("name", ALL)
def test_loss_gradient_matches_autograd(name):
    model, batch = case(name)
    cp = curvature_pass(model, batch)
    model.zero_grad()
    total, losses = pinn_loss(model, batch)
    total.backward()
    ref = [torch.cat([lay.weight.grad, lay.bias.grad[:, None]], 1) for lay in model.layers]
    model.zero_grad()
    assert abs(cp.loss.item() - total.item()) <= 1e-12 * abs(total.item())
    for G, R in zip(cp.gradient, ref):
        assert rel_err(G, R) < 1e-10
    # the per-term gradient too
    for term, X in batch.items():
        r = model.residual(term, X)
        # the output bias does not reach a residual that reads no value column: a zero gradient
        grads = torch.autograd.grad(0.5 * r.pow(2).sum() / X.shape[0],
                                    [p for lay in model.layers for p in (lay.weight, lay.bias)],
                                    allow_unused=True, materialize_grads=True)
        ours = loss_gradient(linearize(model, term, X))
        for l, G in enumerate(ours):
            R = torch.cat([grads[2 * l], grads[2 * l + 1][:, None]], 1)
            assert rel_err(G, R) < 1e-10


# ----------------------------------------------------------------------------- factors
@pytest.mark.parametrize("name", ALL)
def test_factors_match_brute_force(name):
    model, batch = case(name)
    facs = {a: compute_factors(model, batch, a) for a in ("expand", "reduce")}
    for term, X in batch.items():
        stacks = model.propagate(term, X)
        lin = linearize(model, term, X)
        N = X.shape[0]
        for l in range(len(model.layers)):
            g = reference_output_grads(model, term, X, l)
            assert rel_err(lin.output_grads[l], g) < 1e-10, (term, l)
            Z = stacks.inputs[l].detach()
            values = {0}   # the columns that carry the bias: the value's (and its image's)
            if term in model.periodic:   # sample n's stack: row n's columns, then row N + n's
                values = {0, Z.shape[1]}
                Z = torch.cat([Z[:N], Z[N:]], dim=1)
            S, M = Z.shape[1], g.shape[1]
            h_in, h_out = Z.shape[2] + 1, g.shape[3]
            A = torch.zeros(h_in, h_in, dtype=DT)
            B = torch.zeros(h_out, h_out, dtype=DT)
            A_red = torch.zeros(h_in, h_in, dtype=DT)
            B_red = torch.zeros(h_out, h_out, dtype=DT)
            for n in range(N):
                z_sum = torch.zeros(h_in, dtype=DT)
                for s in range(S):
                    zt = torch.cat([Z[n, s], torch.tensor([1.0 if s in values else 0.0], dtype=DT)])
                    A += torch.outer(zt, zt) / (N * S)
                    z_sum += zt
                    for m in range(M):
                        B += torch.outer(g[n, m, s], g[n, m, s]) / N
                A_red += torch.outer(z_sum, z_sum) / (N * S**2)
                for m in range(M):
                    gs = g[n, m].sum(0)
                    B_red += torch.outer(gs, gs) / N
            fe, fr = facs["expand"][term][l], facs["reduce"][term][l]
            assert rel_err(fe.A, A) < 1e-12 and rel_err(fe.B, B) < 1e-10, (term, l)
            assert rel_err(fr.A, A_red) < 1e-12 and rel_err(fr.B, B_red) < 1e-10, (term, l)


@pytest.mark.parametrize("name", ALL)
def test_condition_kron_is_exact_gramian_for_one_sample(name):
    model, batch = case(name)
    for term in (t for t in model.condition_names if model.S[t] == 1 and t not in model.periodic):
        X = batch[term][:1]
        J = reference_jacobians(model, term, X)
        ours_blocks = dense_gramian_blocks(model, {term: X})
        for rule in (expand_factors, reduce_factors):
            lin = linearize(model, term, X)
            assert lin.inputs[0].shape[1] == 1  # S = 1
            for l, (Zt, g) in enumerate(zip(lin.inputs, lin.output_grads)):
                Jv = J[l].mT.reshape(J[l].shape[1], -1)  # (m, P) column-stacking vec
                exact = Jv.mT @ Jv
                assert rel_err(rule(Zt, g).to_dense(), exact) < 1e-10, (term, l)
                assert rel_err(ours_blocks[l], exact) < 1e-10, (term, l)


def test_kfac_reduce_differs_from_expand_when_shared():
    model, batch = case("laplacian")
    fe = compute_factors(model, batch, "expand")["interior"]
    fr = compute_factors(model, batch, "reduce")["interior"]
    assert rel_err(fr[1].A, fe[1].A) > 1e-3
    with pytest.raises(ValueError):
        compute_factors(model, batch, "bogus")


# ----------------------------------------------------------------------------- Kronecker inverse
def random_spd(k: int, gen: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    Q = torch.randn(k, k, generator=gen, dtype=DT)
    return scale * (Q @ Q.mT / k + 0.1 * torch.eye(k, dtype=DT))


def test_vec_convention():
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(4, 4, generator=gen, dtype=DT)  # not symmetric on purpose
    B = torch.randn(3, 3, generator=gen, dtype=DT)
    X = torch.randn(3, 4, generator=gen, dtype=DT)
    assert rel_err(torch.kron(A, B) @ vec(X), vec(B @ X @ A.mT)) < 1e-13
    assert torch.equal(vec(X)[[0, 1, 2, 3]], torch.stack([X[0, 0], X[1, 0], X[2, 0], X[0, 1]]))
    assert torch.equal(unvec(vec(X), (3, 4)), X)
    mats = [X, torch.randn(2, 3, generator=gen, dtype=DT)]
    back = unflatten(flatten(mats), [(3, 4), (2, 3)])
    assert all(torch.equal(a, b) for a, b in zip(back, mats))


@pytest.mark.parametrize("shape", [(3, 5), (6, 2), (1, 4), (5, 1)])
@pytest.mark.parametrize("n_pairs", [1, 2])
def test_kron_sum_inverse_matches_dense_solve(shape, n_pairs):
    o, i = shape
    gen = torch.Generator().manual_seed(10 * o + i + n_pairs)
    pairs = [KronFactors(random_spd(i, gen, 2.0), random_spd(o, gen)),
             KronFactors(random_spd(i, gen), random_spd(o, gen, 1e-3))][:n_pairs]
    G = torch.randn(o, i, generator=gen, dtype=DT)
    dense = sum(torch.kron(p.A, p.B) for p in pairs)
    ref = torch.linalg.solve(dense, vec(G))
    X = kron_sum_solve(pairs, G)
    assert rel_err(vec(X), ref) < 1e-8
    # batched right-hand sides through the factored object
    inv = KronSumInverse.from_pairs(pairs)
    Gs = torch.randn(3, o, i, generator=gen, dtype=DT)
    refs = torch.linalg.solve(dense, vec(Gs).mT).mT
    assert rel_err(vec(inv.apply(Gs)), refs) < 1e-8


def test_kron_sum_inverse_rejects_indefinite():
    with pytest.raises(ValueError, match="positive definite"):
        KronSumInverse.from_pairs([KronFactors(torch.zeros(2, 2, dtype=DT), torch.eye(3, dtype=DT))])


def test_merge_is_exact_for_proportional_B():
    gen = torch.Generator().manual_seed(3)
    B = random_spd(3, gen)
    pairs = [KronFactors(random_spd(4, gen), beta * B) for beta in (0.5, 2.0, 3.0)]
    merged = merge_factors(pairs)
    exact = sum(p.to_dense() for p in pairs)
    assert rel_err(merged.to_dense(), exact) < 1e-12
    # trace preserved in general
    pairs = [KronFactors(random_spd(4, gen), random_spd(3, gen)) for _ in range(3)]
    exact = sum(p.to_dense() for p in pairs)
    assert abs(merge_factors(pairs).to_dense().trace() - exact.trace()) < 1e-12 * exact.trace()


# ----------------------------------------------------------------------------- preconditioner state
@pytest.mark.parametrize("init", ["identity", "zero"])
def test_preconditioner_ema_and_inverse(init):
    model, batch = case("collapsed")  # interior + two conditions, merged into one pair
    beta, lam = 0.7, 1e-3
    pre = KronPreconditioner.for_model(model, ema=beta, damping=lam, init=init, update_period=2)
    assert pre.groups == [("interior",), ("initial", "boundary")]
    assert pre.due(0) and not pre.due(1) and pre.due(4)
    new = compute_factors(model, batch)
    pre.update(new)
    start = 1.0 if init == "identity" else 0.0
    for term in model.term_names:
        for state, f in zip(pre.factors[term], new[term]):
            eye = torch.eye(f.A.shape[0], dtype=DT)
            assert rel_err(state.A, beta * start * eye + (1 - beta) * f.A) < 1e-13
    gen = torch.Generator().manual_seed(5)
    grads = [torch.randn(*s, generator=gen, dtype=DT) for s in layer_shapes(model)]
    for l, X in enumerate(pre.apply_inverse(grads)):
        ref = torch.linalg.solve(pre.to_dense(l), vec(grads[l]))
        assert rel_err(vec(X), ref) < 1e-8
    # merged condition pair, then damping
    l = 1
    cond = merge_factors([pre.factors["initial"][l], pre.factors["boundary"][l]])
    damped = pre.damped_pairs(l)[1]
    assert rel_err(damped.B, cond.B + lam * torch.eye(cond.B.shape[0], dtype=DT)) < 1e-13
    # single pair: only the interior
    single = KronPreconditioner.for_model(model, groups=[("interior",)], ema=0.0, damping=lam)
    single.update({"interior": new["interior"]})
    for l, X in enumerate(single.apply_inverse(grads)):
        p = single.damped_pairs(l)[0]
        assert rel_err(X, torch.linalg.solve(p.B, grads[l]) @ torch.linalg.inv(p.A)) < 1e-8
    with pytest.raises(KeyError):
        single.update({"initial": new["initial"]})


# ----------------------------------------------------------------------------- exact Gramian
@pytest.mark.parametrize("name", ALL)
def test_gramian_products_match_dense_jacobians(name):
    model, batch = case(name)
    shapes = layer_shapes(model)
    D = sum(o * i for o, i in shapes)
    G_ref = torch.zeros(D, D, dtype=DT)
    for term, X in batch.items():
        J = reference_jacobian_matrix(model, term, X)
        G_ref += J.mT @ J / X.shape[0]
    gen = torch.Generator().manual_seed(7)
    v1 = torch.randn(D, generator=gen, dtype=DT)
    v2 = torch.randn(D, generator=gen, dtype=DT)
    V1, V2 = unflatten(v1, shapes), unflatten(v2, shapes)

    q = gramian_quadratic_form(model, batch, V1)
    assert abs(q.item() - (v1 @ G_ref @ v1).item()) < 1e-10 * abs((v1 @ G_ref @ v1).item())
    Q = gramian_quadratic_forms(model, batch, [V1, V2])
    Vs = torch.stack([v1, v2], 1)
    assert rel_err(Q, Vs.mT @ G_ref @ Vs) < 1e-10
    assert rel_err(flatten(gramian_matvec(model, batch, V1)), G_ref @ v1) < 1e-10

    assert rel_err(dense_gramian(model, batch), G_ref) < 1e-10
    offsets = [0]
    for o, i in shapes:
        offsets.append(offsets[-1] + o * i)
    for l, block in enumerate(dense_gramian_blocks(model, batch)):
        a, b = offsets[l], offsets[l + 1]
        assert rel_err(block, G_ref[a:b, a:b]) < 1e-10


@pytest.mark.parametrize("name", ["laplacian", "collapsed", "taylor", "system", "periodic"])
def test_linearized_products_match_torch_func(name):
    """J v, Jᵀu, vᵀGw and Gv from the stacks equal the torch.func (jvp/vjp) versions."""
    from pdec.curvature import (curvature_pass, gramian_matvec, gramian_quadratic_forms,
                                linearized_matvec, linearized_quadratic_forms)

    model, batch = case(name)
    cp = curvature_pass(model, batch)
    shapes = layer_shapes(model)
    g = torch.Generator().manual_seed(3)
    v = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    w = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    got = linearized_quadratic_forms(cp.linearizations, [v, w])
    want = gramian_quadratic_forms(model, batch, [v, w])
    torch.testing.assert_close(got, want, rtol=1e-10, atol=0)
    for a, b in zip(linearized_matvec(cp.linearizations, v), gramian_matvec(model, batch, v)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
