"""The PINN loss L(θ) = Σ_τ 1/(2 N_τ) Σ_n ‖r_τ(x_n)‖² over terms τ (interior, each condition).

A *batch* is a dict ``term name -> X (N_τ, d)``; every term of the model may appear once.
"""

from __future__ import annotations

from typing import Mapping

import torch

from .runtime import GeneratedPINN, Stacks

Batch = Mapping[str, torch.Tensor]


def term_loss(residual: torch.Tensor) -> torch.Tensor:
    """1/(2N) Σ_n ‖r_n‖² for a residual (N, M)."""
    return 0.5 * residual.pow(2).sum() / residual.shape[0]


def pinn_loss(model: GeneratedPINN, batch: Batch, stacks: Mapping[str, Stacks] | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and the loss of each term.

    Args:
        model: a generated module.
        batch: term name -> points (N_τ, d).
        stacks: optional forward passes already computed (term -> :class:`Stacks`), reused.

    Returns:
        (total, {term: loss}) as 0-dim tensors (the graph is kept unless under no_grad).
    """
    losses = {}
    for term, X in batch.items():
        r = model.residual(term, X, stacks.get(term) if stacks else None)
        losses[term] = term_loss(r)
    total = sum(losses.values()) if losses else torch.zeros(())
    return total, losses
