"""Logarithmic grid line search: α* = argmin_{α ∈ {2⁻³⁰, …, 2⁰}} L(θ + α δ) (MATH.md §6).

All trial losses are computed forward-only (no graph) in batched passes: the points of every term
are repeated once per trial, and each linear layer multiplies trial k's rows by its own weights
θ₀ + α_k δ with one batched matmul. The generated seed/activation/residual functions are
element-wise over samples, so they run unchanged on the stacked (K·N, S, h) tensors. Trials are
chunked so that a chunk's stacks stay under ``max_chunk_mb``: on a CPU small chunks (cache-sized)
are fastest, on a GPU one pass over all trials.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..curvature import layer_matrices
from ..loss import Batch
from ..parallel import LOCAL, Communicator, batch_total
from ..runtime import GeneratedPINN

GRID = tuple(2.0 ** -k for k in range(30, -1, -1))


def _stack_bytes(model: GeneratedPINN, batch: Batch) -> int:
    width = max(model.widths)
    elem = next(model.parameters()).element_size()
    return sum(X.shape[0] * model.S[term] * width * elem for term, X in batch.items())


@torch.no_grad()
def trial_losses(model: GeneratedPINN, batch: Batch, weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """L at K parameter sets at once.

    Args:
        model: generated module (its own parameters are not used).
        batch: term -> points (N_τ, d).
        weights: per layer, W̃ for every trial: (K, h_l, h_{l-1}+1).

    Returns:
        (K,) losses Σ_τ 1/(2N_τ) Σ_n ‖r_τ(x_n)‖² (N_τ: the batch's total, so a shard gives its part).
    """
    K = weights[0].shape[0]
    total = torch.zeros(K, dtype=weights[0].dtype, device=weights[0].device)
    last = len(weights) - 1
    for term, X in batch.items():
        N = X.shape[0]
        Xr = X.repeat(K, 1)                                   # rows k·N … (k+1)·N − 1: trial k
        Z = getattr(model, f"seed_{term}")(Xr)                 # (K·N, S, d)
        activate = getattr(model, f"activate_{term}")
        S = Z.shape[1]
        # At the last hidden layer only the columns the residual reads are activated (the output
        # layer maps each column on its own); the other output columns stay zero, unread.
        activate_last = getattr(model, f"activate_{term}_last", None)
        read = getattr(model, "residual_columns", {}).get(term) if activate_last is not None else None
        columns = list(range(S))
        for l, Wt in enumerate(weights):
            C = len(columns)
            Zk = Z.reshape(K, N * C, Z.shape[-1])
            out = torch.bmm(Zk, Wt[:, :, :-1].mT).reshape(K, N, C, Wt.shape[1])  # "k n s i, k o i -> k n s o"
            if 0 in columns:
                out[:, :, columns.index(0)] += Wt[:, None, :, -1]  # bias on the value column only
            Z = out.reshape(K * N, C, Wt.shape[1])
            if l == last - 1 and read is not None:
                Z, columns = activate_last(Z, Xr), list(read)
            elif l < last:
                Z = activate(Z, Xr)
        if len(columns) < S:
            full = Z.new_zeros(K * N, S, Z.shape[-1])
            full[:, columns] = Z
            Z = full
        r = getattr(model, f"residual_{term}")(Xr, Z).reshape(K, N, -1)
        total += 0.5 * r.pow(2).sum(dim=(1, 2)) / batch_total(batch, term)
    return total


@torch.no_grad()
def grid_line_search(model: GeneratedPINN, batch: Batch, direction: Sequence[torch.Tensor],
                     grid: Sequence[float] = GRID, max_chunk_mb: float | None = None,
                     comm: Communicator = LOCAL) -> tuple[float, float]:
    """Move θ to θ + α* δ with the α* of ``grid`` that minimises the loss.

    Args:
        model: the generated module (parameters updated in place).
        batch: term -> points.
        direction: δ as layer matrices (h_l, h_{l-1}+1).
        grid: trial step sizes (default 2⁻³⁰ … 2⁰).
        max_chunk_mb: memory bound of one batched pass's stacks (default: 16 on CPU, where two
            trials per pass measured fastest on 2d Poisson, and 2048 on GPU).
        comm: with several ranks, the trial losses of every rank's shard are summed (one
            all-reduce of the K losses), so every rank picks the same α*.

    Returns:
        (α*, L(θ + α* δ)). When every trial loss is non-finite, θ is left unchanged and α* = 0.
    """
    base = [M.detach() for M in layer_matrices(model)]
    alphas = torch.tensor(grid, dtype=base[0].dtype, device=base[0].device)
    if max_chunk_mb is None:
        max_chunk_mb = 16.0 if base[0].device.type == "cpu" else 2048.0
    per_trial = max(_stack_bytes(model, batch) * 3, 1)
    chunk = max(1, min(len(grid), int(max_chunk_mb * 2**20 // per_trial)))
    losses = []
    for start in range(0, len(grid), chunk):
        a = alphas[start:start + chunk]
        weights = [W0 + a[:, None, None] * D for W0, D in zip(base, direction)]
        losses.append(trial_losses(model, batch, weights))
    losses = torch.cat(losses)
    comm.all_reduce_([losses])
    finite = torch.isfinite(losses)
    if not bool(finite.any()):
        return 0.0, math.inf
    k = int(torch.where(finite, losses, torch.full_like(losses, math.inf)).argmin())
    alpha = float(grid[k])
    for layer, W0, D in zip(model.layers, base, direction):
        layer.weight.add_(D[:, :-1], alpha=alpha)
        layer.bias.add_(D[:, -1], alpha=alpha)
    return alpha, float(losses[k])
