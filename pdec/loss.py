"""The PINN loss L(θ) = Σ_τ 1/(2 N_τ) Σ_n ‖r_τ(x_n)‖² over terms τ (interior, each condition).

A *batch* is a dict ``term name -> X (N_τ, d)``; every term of the model may appear once. In a
data-parallel run it is a :class:`~pdec.parallel.Shard` (a rank's rows, and the totals N_τ): the
losses then divide by the totals, and their sum over ranks is the loss of the whole batch.
"""

from __future__ import annotations

from typing import Mapping

import torch

from .parallel.shard import batch_total
from .runtime import GeneratedPINN, Stacks
from .torch_compile import compiled

Batch = Mapping[str, torch.Tensor]


def term_loss(residual: torch.Tensor, n_total: int | None = None) -> torch.Tensor:
    """1/(2N) Σ_n ‖r_n‖² for a residual (n, M); N = ``n_total`` (all ranks' rows), default n."""
    return 0.5 * residual.pow(2).sum() / (n_total or residual.shape[0])


def pinn_loss(model: GeneratedPINN, batch: Batch, stacks: Mapping[str, Stacks] | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and the loss of each term.

    Args:
        model: a generated module.
        batch: term name -> points (N_τ, d).
        stacks: optional forward passes already computed (term -> :class:`Stacks`), reused.

    Returns:
        (total, {term: loss}) as 0-dim tensors (the graph is kept unless under no_grad).

    For a model with ``torch_compiled`` set (:mod:`pdec.torch_compile`) and no ``stacks``, the
    whole loss (forward passes and residuals of every term) runs as one ``torch.compile`` graph.
    """
    if stacks is None and model.torch_compiled:
        values = compiled(_stacked_losses)(model, batch)
        return values[0], dict(zip(batch, values[1:].unbind()))
    return _loss(model, batch, stacks)


def _stacked_losses(model: GeneratedPINN, batch: Batch) -> torch.Tensor:
    """(1 + T,): the total loss, then each term's, as one tensor. (One output: returning the
    per-term losses as separate outputs of the compiled graph made its kernels 2× slower, 4+1d heat
    with Adam, session measurement 2026-11-28.)"""
    total, losses = _loss(model, batch)
    return torch.stack([total, *losses.values()])


def _loss(model: GeneratedPINN, batch: Batch, stacks: Mapping[str, Stacks] | None = None
          ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    losses = {}
    for term, X in batch.items():
        r = model.residual(term, X, stacks.get(term) if stacks else None)
        losses[term] = term_loss(r, batch_total(batch, term))
    total = sum(losses.values()) if losses else torch.zeros(())
    return total, losses
