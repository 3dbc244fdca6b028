"""Independent references for generated code: a plain MLP and nested autograd derivatives.

Nothing here uses pdec's propagation, printer or templates: residuals are evaluated by SymPy's
own lambdify (NumPy) on derivatives obtained with torch.autograd.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch
import torch.nn.functional as F

from pdec.analysis import Analysis

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


def randomize_weights(model, scale: float = 1.5, seed: int = 0) -> None:
    """Weights ~ N(0, scale²/fan_in), biases ~ N(0, 0.25): away from the default init's linear regime."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.layers:
            fan_in = layer.weight.shape[1]
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g, dtype=layer.weight.dtype) * scale / fan_in**0.5)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=g, dtype=layer.bias.dtype) * 0.5)


def random_points(problem, n: int, seed: int = 1) -> torch.Tensor:
    """n uniform points in the problem's box, float64 (N, d)."""
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor([problem.domain.interval(v)[0] for v in problem.variables], dtype=torch.float64)
    hi = torch.tensor([problem.domain.interval(v)[1] for v in problem.variables], dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(n, len(lo), generator=g, dtype=torch.float64)


def autograd_derivatives(f, X: torch.Tensor, atoms) -> dict:
    """{atom: (N,) tensor} of ∂^α u_m at X by nested torch.autograd.grad (samples independent)."""
    X = X.detach().clone().requires_grad_(True)
    U = f(X)
    cache: dict[tuple, torch.Tensor] = {}
    out = {}
    for atom in sorted(atoms):
        dirs = tuple(i for i, k in enumerate(atom.alpha) for _ in range(k))
        key = (atom.unknown, ())
        if key not in cache:
            cache[key] = U[:, atom.unknown]
        for depth in range(1, len(dirs) + 1):
            prev, key = key, (atom.unknown, dirs[:depth])
            if key not in cache:
                (grad,) = torch.autograd.grad(cache[prev].sum(), X, create_graph=True)
                cache[key] = grad[:, dirs[depth - 1]]
        out[atom] = cache[key]
    return out


def reference_residual(analysis: Analysis, term: str, model, X: torch.Tensor) -> np.ndarray:
    """The term's residual (N, M) from autograd derivatives, evaluated by sympy.lambdify (NumPy)."""
    ta = analysis.terms[term]
    values = autograd_derivatives(reference_mlp(model), X, ta.atoms)
    atoms = sorted(ta.atoms)
    syms = [analysis.atom_symbols[a] for a in atoms] + list(analysis.variables)
    args = [values[a].detach().numpy() for a in atoms] + [X[:, i].numpy() for i in range(X.shape[1])]
    cols = []
    for r in ta.residuals:
        fn = sp.lambdify(syms, r, modules=[NUMPY_FUNCTIONS, "numpy"])
        cols.append(np.broadcast_to(np.asarray(fn(*args), dtype=np.float64), (X.shape[0],)))
    return np.stack(cols, axis=1)
