"""Independent references for generated code: a plain MLP and nested autograd derivatives.

Nothing here uses pdec's propagation, printer or templates: residuals are evaluated by SymPy's
own lambdify (NumPy) on derivatives obtained with torch.autograd.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch
import torch.nn.functional as F

from pdec.spec import Data, Periodic

ACTIVATIONS = {"tanh": torch.tanh, "sin": torch.sin, "sigmoid": torch.sigmoid, "softplus": F.softplus}
NUMPY_FUNCTIONS = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "softplus": lambda z: np.log1p(np.exp(z))}


def reference_mlp(model):
    """X (N, d) -> (N, m) with the model's weights, written independently of the generated code."""
    act = ACTIVATIONS[model.activation_name]
    Ws = [(layer.weight, layer.bias) for layer in model.layers]

    def f(X):
        h = X
        for i, (W, b) in enumerate(Ws):
            h = h @ W.T + b
            if i < len(Ws) - 1:
                h = act(h)
        return h

    return f


TORCH_FUNCTIONS = {"sin": torch.sin, "cos": torch.cos, "exp": torch.exp, "log": torch.log, "tanh": torch.tanh,
                   "sqrt": torch.sqrt, "Abs": torch.abs, "pi": np.pi, "E": np.e}


def reference_solution(problem, model):
    """X (N, d) -> the unknowns (N, m): :func:`reference_mlp`'s outputs, each through the spec's
    ansatz where it has one, the ansatz evaluated by sympy.lambdify on torch functions (not by the
    generated ``ansatz``)."""
    net = reference_mlp(model)
    variables = list(problem.variables)
    maps = []
    for k, u in enumerate(problem.unknowns):
        if u not in problem.ansatz_items:
            maps.append(None)
            continue
        f, expr = problem.ansatz_items[u]
        w = sp.Dummy("w")
        maps.append(sp.lambdify(variables + [w], expr.xreplace({f: w}), modules=[TORCH_FUNCTIONS]))

    def solution(X):
        N = net(X)
        columns = [N[:, k] if fn is None else fn(*X.unbind(1), N[:, k]) * torch.ones_like(N[:, k])
                   for k, fn in enumerate(maps)]
        return torch.stack(columns, dim=1)

    return solution


def randomize_weights(model, scale: float = 1.5, seed: int = 0) -> None:
    """Weights ~ N(0, scale²/fan_in), biases ~ N(0, 0.25): away from the default init's linear regime;
    learned parameters ~ U(0.5, 1.5) (away from their initial values)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.layers:
            fan_in = layer.weight.shape[1]
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g, dtype=layer.weight.dtype) * scale / fan_in**0.5)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=g, dtype=layer.bias.dtype) * 0.5)
        for p in model.learned.values():
            p.copy_(0.5 + torch.rand((), generator=g, dtype=p.dtype))


def random_points(problem, n: int, seed: int = 1) -> torch.Tensor:
    """n uniform points in the problem's box, float64 (N, d)."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = (torch.tensor(b, dtype=torch.float64) for b in problem.domain.corners)
    return lo + (hi - lo) * torch.rand(n, len(lo), generator=g, dtype=torch.float64)


def autograd_derivatives(f, X: torch.Tensor, wanted) -> dict:
    """{(m, dirs): (N,) tensor} of ∂_dirs u_m at X by nested torch.autograd.grad (samples
    independent); ``dirs`` is a sorted tuple of variable indices, one per differentiation."""
    X = X.detach().clone().requires_grad_(True)
    U = f(X)
    cache: dict[tuple, torch.Tensor] = {}
    for m, dirs in sorted(wanted):
        key = (m, ())
        if key not in cache:
            cache[key] = U[:, m]
        for depth in range(1, len(dirs) + 1):
            prev, key = key, (m, dirs[:depth])
            if key not in cache:
                (grad,) = torch.autograd.grad(cache[prev].sum(), X, create_graph=True)
                cache[key] = grad[:, dirs[depth - 1]]
    return {k: cache[k] for k in wanted}


def _derivative_key(node, unknowns, variables) -> tuple[int, tuple[int, ...]]:
    """(m, sorted variable indices) of a SymPy Derivative or applied unknown, read off the node
    itself: every entry of variable_count counts (Derivative(u, x, y, x) is ∂_xxy u)."""
    if isinstance(node, sp.Derivative):
        dirs = sorted(variables.index(v) for v, k in node.variable_count for _ in range(int(k)))
        return unknowns.index(node.expr), tuple(dirs)
    return unknowns.index(node), ()


def reference_point_residual(problem, term: str, model, X: torch.Tensor) -> np.ndarray:
    """The term's residual (N, M) from the problem's own SymPy residuals: every derivative node
    is evaluated by nested autograd through :func:`reference_solution` (the MLP, and the spec's
    ansatz where it has one), then the expression by
    sympy.lambdify (NumPy). Nothing of pdec's analysis (atoms, names, splits) is used. A term
    with a weight w ≠ 1 contributes √w·r (its loss is w · 1/(2N) Σ ‖r‖²). Learned parameters
    take the model's current values."""
    from sympy.core.function import AppliedUndef

    exprs = (problem.interior_residuals if term == "interior"
             else problem.condition_items[term].residuals)
    values = {k: sp.Float(float(model.learned[str(k)].detach()), 17) for k in problem.learned}
    exprs = [sp.sympify(e).xreplace(values) for e in exprs]
    unknowns, variables = list(problem.unknowns), list(problem.variables)
    cols = []
    for e in map(sp.sympify, exprs):
        nodes = list(e.atoms(sp.Derivative)) + list(e.atoms(AppliedUndef))
        keys = {node: _derivative_key(node, unknowns, variables) for node in nodes}
        values = autograd_derivatives(reference_solution(problem, model), X, set(keys.values()))
        # fresh symbols for the derivatives and the variables, so no name of the spec can clash
        dummies = {node: sp.Dummy() for node in nodes}
        var_dummies = [sp.Dummy() for _ in variables]
        derivs = {n: d for n, d in dummies.items() if isinstance(n, sp.Derivative)}
        plain = {n: d for n, d in dummies.items() if not isinstance(n, sp.Derivative)}
        expr = e.xreplace(derivs).xreplace(plain).xreplace(dict(zip(variables, var_dummies)))
        fn = sp.lambdify(list(dummies.values()) + var_dummies, expr, modules=[NUMPY_FUNCTIONS, "numpy"])
        args = [values[keys[n]].detach().numpy() for n in dummies] + [X[:, i].numpy() for i in range(X.shape[1])]
        cols.append(np.broadcast_to(np.asarray(fn(*args), dtype=np.float64), (X.shape[0],)))
    scale = float(np.sqrt(problem.interior_weight if term == "interior" else problem.condition_items[term].weight))
    return scale * np.stack(cols, axis=1)


def term_input(problem, term: str, X: torch.Tensor, seed: int = 7) -> torch.Tensor:
    """The rows a term's residual takes at points X (N, d): X itself, or for a condition on
    ``Data`` X followed by M random observed values (N, d + M), drawn here."""
    region = problem.condition_items[term].on if term != "interior" else None
    if not isinstance(region, Data):
        return X
    M = len(problem.condition_items[term].residuals)
    g = torch.Generator().manual_seed(seed)
    return torch.cat([X, torch.randn(X.shape[0], M, generator=g, dtype=X.dtype)], dim=1)


def reference_residual(problem, term: str, model, X: torch.Tensor) -> np.ndarray:
    """:func:`reference_point_residual`; for a condition on ``Periodic(x)`` its pairs' difference
    q(X) − q(X'), X' = X with x set to the box's upper bound (read off the spec); for a condition
    on ``Data``, X = (x, y) (N, d + M) and the residual √w (q(x) − y)."""
    region = problem.condition_items[term].on if term != "interior" else None
    if isinstance(region, Data):
        d = len(problem.variables)
        scale = float(np.sqrt(problem.condition_items[term].weight))
        return reference_point_residual(problem, term, model, X[:, :d]) - scale * X[:, d:].numpy()
    q = reference_point_residual(problem, term, model, X)
    if not isinstance(region, Periodic):
        return q
    image = X.clone()
    image[:, list(problem.variables).index(region.var)] = problem.domain.interval(region.var)[1]
    return q - reference_point_residual(problem, term, model, image)


def residual_errors(problem, model, X: torch.Tensor) -> dict[str, float]:
    """term -> ‖r − r_ref‖ / ‖r_ref‖ at X: the model's residual against :func:`reference_residual`."""
    out = {}
    for term in model.term_names:
        rows = term_input(problem, term, X)
        got = model.residual(term, rows).detach().numpy()
        want = reference_residual(problem, term, model, rows)
        out[term] = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300))
    return out
