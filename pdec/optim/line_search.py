"""Logarithmic grid line search: α* = argmin_{α ∈ {2⁻³⁰, …, 2⁰}} L(θ + α δ) (MATH.md §6).

Trial losses are forward-only (no graph). Parameters are set to θ₀ + α δ from a saved copy of
θ₀ for each trial, so no rounding drift accumulates; on return θ = θ₀ + α* δ.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..curvature import layer_matrices
from ..loss import Batch, pinn_loss
from ..runtime import GeneratedPINN

GRID = tuple(2.0 ** -k for k in range(30, -1, -1))


def _set(model: GeneratedPINN, base: Sequence[torch.Tensor], direction: Sequence[torch.Tensor], alpha: float):
    for layer, W0, D in zip(model.layers, base, direction):
        layer.weight.copy_(W0[:, :-1]).add_(D[:, :-1], alpha=alpha)
        layer.bias.copy_(W0[:, -1]).add_(D[:, -1], alpha=alpha)


@torch.no_grad()
def grid_line_search(model: GeneratedPINN, batch: Batch, direction: Sequence[torch.Tensor],
                     grid: Sequence[float] = GRID) -> tuple[float, float]:
    """Move θ to θ + α* δ with the α* of ``grid`` that minimises the loss.

    Args:
        model: the generated module (parameters updated in place).
        batch: term -> points.
        direction: δ as layer matrices (h_l, h_{l-1}+1).

    Returns:
        (α*, L(θ + α* δ)). When every trial loss is non-finite, θ is left unchanged and α* = 0.
    """
    base = [M.detach().clone() for M in layer_matrices(model)]
    best_alpha, best_loss = 0.0, math.inf
    for alpha in grid:
        _set(model, base, direction, alpha)
        loss = float(pinn_loss(model, batch)[0])
        if loss < best_loss:
            best_alpha, best_loss = alpha, loss
    _set(model, base, direction, best_alpha)
    return best_alpha, best_loss
