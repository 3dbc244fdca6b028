"""Parameter layout shared by the curvature code: W̃ = (W b) per layer and the vec convention.

Every curvature object works on *layer matrices* W̃⁽ˡ⁾ = (W⁽ˡ⁾ b⁽ˡ⁾) of shape
(h_l, h_{l-1}+1): the bias is the last column (MATH.md §4). A parameter-space vector (a gradient,
a step, a tangent) is a list of such matrices, one per ``model.layers`` entry.

vec convention (the paper's, §2 of Dangel et al. 2024): column stacking, first index fastest,

    vec(X)[j·h_l + i] = X[i, j]         X: (h_l, h_{l-1}+1)

so that (A ⊗ B) vec(X) = vec(B X Aᵀ) and ``torch.kron(A, B)`` is the dense matrix of the
layer's Kronecker factorisation G⁽ˡ⁾ ≈ A ⊗ B with A (input side, (h_{l-1}+1)²) as the outer
factor and B (output side, h_l²) as the inner one. In PyTorch's row-major memory this vec is
``X.mT.reshape(-1)``; on the row-major flattening ``X.reshape(-1)`` the same operator would be
``torch.kron(B, A)``. A full parameter vector of length D concatenates vec(W̃⁽ˡ⁾) over layers.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from ..runtime import GeneratedPINN


def layer_shapes(model: GeneratedPINN) -> list[tuple[int, int]]:
    """Shapes (h_l, h_{l-1}+1) of the layer matrices W̃⁽ˡ⁾, in layer order."""
    return [(layer.out_features, layer.in_features + 1) for layer in model.layers]


def layer_matrices(model: GeneratedPINN) -> list[torch.Tensor]:
    """The current W̃⁽ˡ⁾ = (W b), each (h_l, h_{l-1}+1), detached copies."""
    return [torch.cat([layer.weight, layer.bias[:, None]], dim=1).detach().clone()
            for layer in model.layers]


def _layer_prefixes(model: GeneratedPINN) -> list[str]:
    names = {id(module): name for name, module in model.named_modules()}
    return [names[id(layer)] for layer in model.layers]


def matrices_to_params(model: GeneratedPINN, mats: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Layer matrices W̃⁽ˡ⁾ (h_l, h_{l-1}+1) -> ``{"<layer>.weight": W, "<layer>.bias": b}``.

    The names are those of ``model.named_parameters()``, ready for ``torch.func.functional_call``.
    Slices keep autograd / forward-AD tangents of ``mats``.
    """
    if len(mats) != len(model.layers):
        raise ValueError(f"expected {len(model.layers)} layer matrices, got {len(mats)}")
    params = {}
    for prefix, M in zip(_layer_prefixes(model), mats):
        params[f"{prefix}.weight"] = M[:, :-1]
        params[f"{prefix}.bias"] = M[:, -1]
    return params


def params_to_matrices(model: GeneratedPINN, params: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
    """``{"<layer>.weight": W (h_l, h_{l-1}), "<layer>.bias": b (h_l,)}`` -> [W̃⁽ˡ⁾ (h_l, h_{l-1}+1)].

    Leading batch axes are kept: W (..., h_l, h_{l-1}) and b (..., h_l) give (..., h_l, h_{l-1}+1).
    """
    return [torch.cat([params[f"{p}.weight"], params[f"{p}.bias"][..., None]], dim=-1)
            for p in _layer_prefixes(model)]


def module_gradients(model: GeneratedPINN) -> list[torch.Tensor]:
    """``.grad`` of every layer as W̃-shaped matrices (h_l, h_{l-1}+1) (zeros where None)."""
    out = []
    for layer in model.layers:
        gw = layer.weight.grad if layer.weight.grad is not None else torch.zeros_like(layer.weight)
        gb = layer.bias.grad if layer.bias.grad is not None else torch.zeros_like(layer.bias)
        out.append(torch.cat([gw, gb[:, None]], dim=1))
    return out


def vec(X: torch.Tensor) -> torch.Tensor:
    """Column-stacking vec: (..., o, i) -> (..., i·o) with vec(X)[j·o + k] = X[k, j]."""
    return X.mT.reshape(*X.shape[:-2], -1)


def unvec(v: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`vec`: (..., i·o) -> (..., o, i) for ``shape = (o, i)``."""
    o, i = shape
    return v.reshape(*v.shape[:-1], i, o).mT


def flatten(mats: Sequence[torch.Tensor]) -> torch.Tensor:
    """Layer matrices -> one parameter vector (D,): vec of each W̃⁽ˡ⁾, concatenated in layer order.

    Leading batch axes (the same for every layer) are kept: (..., h_l, h_{l-1}+1) -> (..., D).
    """
    return torch.cat([vec(M) for M in mats], dim=-1)


def unflatten(v: torch.Tensor, shapes: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
    """Inverse of :func:`flatten`: (..., D) -> [(..., h_l, h_{l-1}+1)] for ``shapes``."""
    sizes = [o * i for o, i in shapes]
    if v.shape[-1] != sum(sizes):
        raise ValueError(f"vector has {v.shape[-1]} entries, layers need {sum(sizes)}")
    return [unvec(chunk, shape) for chunk, shape in zip(torch.split(v, sizes, dim=-1), shapes)]


def add_to_parameters(model: nn.Module | GeneratedPINN, mats: Sequence[torch.Tensor],
                      alpha: float = 1.0) -> None:
    """In place, θ ← θ + α·step for a step given as layer matrices (h_l, h_{l-1}+1)."""
    with torch.no_grad():
        for layer, M in zip(model.layers, mats):
            layer.weight.add_(M[:, :-1], alpha=alpha)
            layer.bias.add_(M[:, -1], alpha=alpha)
