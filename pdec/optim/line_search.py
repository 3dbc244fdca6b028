"""Logarithmic grid line search: α* = argmin_{α ∈ {2⁻³⁰, …, 2⁰}} L(θ + α δ) (MATH.md §6), over the
layers' parameters (:func:`grid_line_search`) or, with the network fixed, a spec's learned
parameters (:func:`learned_line_search`).

All trial losses are computed forward-only (no graph) in batched passes: the trials are a leading
dim K of every stack, and each linear layer multiplies trial k's stack by its own weights
θ₀ + α_k δ with one batched matmul. The generated activation and residual functions index from
the right, so they run unchanged on the (K, N, S, h) stacks. Trials are chunked so that a chunk's
stacks stay near ``max_chunk_mb`` (an estimate: three full stacks per trial).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

from ..curvature import layer_matrices
from ..loss import Batch
from ..parallel import LOCAL, Communicator, batch_total
from ..runtime import GeneratedPINN
from ..torch_compile import compiled

GRID = tuple(2.0 ** -k for k in range(30, -1, -1))

# Default memory bound of one batched pass (MiB). On a CPU `benchmarks/kfac_step.py --chunk-mb`
# measured 64–1024 MiB (several trials to all 31 per pass) fastest on the 2d/5d problems; on a GPU
# one pass.
CHUNK_MB = {"cpu": 256.0, "cuda": 2048.0}


def _stack_bytes(model: GeneratedPINN, batch: Batch) -> int:
    width = max(model.widths)
    elem = next(model.parameters()).element_size()
    rows = {term: model.forward_rows(term, X.shape[0]) for term, X in batch.items()}
    return sum(n * model.S[term] * width * elem for term, n in rows.items())


def _map(A: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Every trial's linear map without bias: A (K or 1, …, i), W (K, o, i) -> (K, …, o).

    One batched matmul over the flattened middle dims; a leading 1 broadcasts over the trials.
    """
    flat = torch.matmul(A.reshape(A.shape[0], -1, A.shape[-1]), W.mT)   # "k m i, k o i -> k m o"
    return flat.reshape(W.shape[0], *A.shape[1:-1], W.shape[1])


@torch.no_grad()
def trial_losses(model: GeneratedPINN, batch: Batch, base: Sequence[torch.Tensor],
                 direction: Sequence[torch.Tensor], alphas: torch.Tensor,
                 learned_base: torch.Tensor | None = None,
                 learned_direction: torch.Tensor | None = None) -> torch.Tensor:
    """L(θ₀ + α_k δ) for K step sizes at once.

    Args:
        model: generated module (its own parameters are not used).
        batch: term -> points (N_τ, d); a data term's rows (N_τ, d + M) end in its observed values.
        base: θ₀ as layer matrices W̃ (h_l, h_{l-1}+1).
        direction: δ in the same layout.
        alphas: (K,) step sizes.
        learned_base, learned_direction: κ₀ and δκ (P,) of a model's learned parameters when they
            move with the layers (None: they stay at the model's values); trial k's residuals
            read κ₀ + α_k δκ, (K, 1) per parameter.

    Returns:
        (K,) losses Σ_τ 1/(2N_τ) Σ_n ‖r_τ(x_n)‖² (N_τ: the batch's total, so a shard gives its part).

    The stack is carried as its value column z (K, N, h) and its other columns (K, n, S-1, h). The
    generated activate/residual functions index from the right and broadcast over leading dims,
    so the trials are a leading dim K. The first layer's input does not depend on θ, so its output
    is affine in α: Z⁽¹⁾(α) = Z₀ + α Z_δ, two products for all trials. Where the input stack's seed
    columns do not depend on the point (n = 1; the model's ``point_seeds`` names the terms where they
    do), its directions are computed once, not per sample.
    """
    K = alphas.shape[0]
    a = alphas[:, None, None]
    weights = [W0 + a * D for W0, D in zip(base[1:], direction[1:])]   # (K, h_l, h_{l-1}+1)
    hidden, W_out = weights[:-1], weights[-1]
    total = alphas.new_zeros(K)
    learned = (_trial_learned(model, learned_base, learned_direction, alphas)
               if learned_direction is not None else None)
    for term, points in batch.items():
        X = model.term_points(term, points)                    # (2N, d) for a periodic term, x of a data term
        N, d = X.shape
        S = model.S[term]
        cols = model.seed_columns(term, X)                     # (n, S-1, d), n = 1 when shared
        # first layer, affine in α; bias on the value column only
        z = torch.addcmul(torch.addmm(base[0][:, -1], X, base[0][:, :-1].mT), a,
                          torch.addmm(direction[0][:, -1], X, direction[0][:, :-1].mT))     # (K, N, h)
        cols = torch.addcmul(cols @ base[0][:, :-1].mT, a[..., None], cols @ direction[0][:, :-1].mT)  # (K, n, S-1, h)
        activate = getattr(model, f"activate_{term}")
        # At the last hidden layer only the columns the residual reads are activated (the output
        # layer maps each column on its own); the other output columns stay zero, unread.
        activate_last = getattr(model, f"activate_{term}_last", None)
        columns = list(range(S))
        for l in range(len(base) - 1):
            if l > 0:
                Wt = hidden[l - 1]
                z = _map(z, Wt[:, :, :-1]) + Wt[:, None, :, -1]
                cols = _map(cols, Wt[:, :, :-1])
            if l == len(base) - 2 and activate_last is not None:
                columns = list(model.residual_columns[term])
                Z = activate_last(z, cols, X)                  # (K, N, R, h): the columns read
            else:
                Z = activate(torch.cat([z[..., None, :], cols.expand(K, N, S - 1, -1)], dim=-2), X)
                z, cols = Z[..., 0, :], Z[..., 1:, :]
        out = _map(Z, W_out[:, :, :-1])                        # (K, N, C, m)
        if 0 in columns:
            out[:, :, columns.index(0)] += W_out[:, None, :, -1]
        if len(columns) < S:
            full = out.new_zeros(K, N, S, out.shape[-1])
            full[:, :, columns] = out
            out = full
        # (K, N, M); the points (N, ·) broadcast, a data term's with its observed values; a
        # periodic term's q(X) − q(X')
        r = model.residual_of_output(term, points, out, learned)
        total += 0.5 * r.pow(2).sum(dim=(1, 2)) / batch_total(batch, term)
    return total


@torch.no_grad()
def grid_line_search(model: GeneratedPINN, batch: Batch, direction: Sequence[torch.Tensor],
                     grid: Sequence[float] = GRID, max_chunk_mb: float | None = None,
                     comm: Communicator = LOCAL, current: float | None = None,
                     learned_direction: torch.Tensor | None = None) -> tuple[float, float]:
    """Move θ to θ + α* δ with the α* of ``grid`` that minimises the loss.

    Args:
        model: the generated module (parameters updated in place).
        batch: term -> points.
        direction: δ as layer matrices (h_l, h_{l-1}+1).
        grid: trial step sizes (default 2⁻³⁰ … 2⁰).
        max_chunk_mb: memory bound of one batched pass's stacks (default: ``CHUNK_MB`` of the
            device type).
        comm: with several ranks, the trial losses of every rank's shard are summed (one
            all-reduce of the K losses), so every rank picks the same α*.
        current: L(θ) on the same batch, if known. When the best trial loss is above it, θ is
            left unchanged and α* = 0, as the paper's grid search does (its code evaluates L(θ)
            first; the optimizers pass the loss of their curvature pass).
        learned_direction: δκ (P,), the learned parameters' part of a joint direction (ENGD's
            full Gramian couples them with the layers), in ``model.learned``'s order; None: they
            stay (KFAC moves them first, with :func:`learned_line_search`).

    Returns:
        (α*, L(θ + α* δ)). When every trial loss is non-finite, θ is left unchanged and α* = 0
        (loss inf); when the best is above ``current``, α* = 0 and the loss is ``current``.
    """
    base = [M.detach() for M in layer_matrices(model)]
    alphas = torch.tensor(grid, dtype=base[0].dtype, device=base[0].device)
    if max_chunk_mb is None:
        max_chunk_mb = CHUNK_MB.get(base[0].device.type, CHUNK_MB["cuda"])
    per_trial = max(_stack_bytes(model, batch) * 3, 1)
    chunk = max(1, min(len(grid), int(max_chunk_mb * 2**20 // per_trial)))
    trials = compiled(trial_losses) if model.torch_compiled else trial_losses
    learned = list(model.learned.values())
    learned_base = _learned_base(model, learned_direction, "learned_direction") if learned_direction is not None \
        else None
    losses = []
    for start in range(0, len(grid), chunk):
        losses.append(trials(model, batch, base, direction, alphas[start:start + chunk], learned_base,
                             learned_direction))
    losses = torch.cat(losses)
    comm.all_reduce_([losses])
    k = _best_trial(losses)
    if k is None:
        return 0.0, math.inf
    if current is not None and current < float(losses[k]):
        return 0.0, float(current)
    alpha = float(grid[k])
    for layer, W0, D in zip(model.layers, base, direction):
        layer.weight.add_(D[:, :-1], alpha=alpha)
        layer.bias.add_(D[:, -1], alpha=alpha)
    if learned_direction is not None:
        for p, D in zip(learned, learned_direction):
            p.add_(D, alpha=alpha)
    return alpha, float(losses[k])


@torch.no_grad()
def learned_line_search(model: GeneratedPINN, batch: Batch, outputs: Mapping[str, torch.Tensor],
                        direction: torch.Tensor, grid: Sequence[float] = GRID, comm: Communicator = LOCAL,
                        current: float | None = None) -> tuple[float, float]:
    """Move the learned parameters κ to κ + β* δκ with the β* of ``grid`` that minimises the loss
    with the network held fixed: the residuals re-read from each term's output stack (N', S, m) in
    ``outputs`` (term -> stack, from the curvature pass), so the K trials cost the residual
    functions only. ``current``: the loss at κ (κ is left unchanged when no trial beats it or none
    is finite, β* = 0). Returns (β*, the loss there; ``current`` when κ stays, inf when every trial
    is non-finite and ``current`` is not given)."""
    base = _learned_base(model, direction, "direction")
    betas = torch.tensor(grid, dtype=base.dtype, device=base.device)
    K = len(grid)
    learned = _trial_learned(model, base, direction, betas)
    losses = betas.new_zeros(K)
    for term, points in batch.items():
        out = outputs[term]
        r = model.residual_of_output(term, points, out.expand(K, *out.shape), learned)   # (K, N, M)
        losses += 0.5 * r.pow(2).sum(dim=(1, 2)) / batch_total(batch, term)
    comm.all_reduce_([losses])
    k = _best_trial(losses)
    if k is None:   # κ stays; the layers' line search then compares with L at it
        return 0.0, math.inf if current is None else float(current)
    if current is not None and current < float(losses[k]):
        return 0.0, float(current)
    for p, D in zip(model.learned.values(), direction):
        p.add_(D, alpha=float(grid[k]))
    return float(grid[k]), float(losses[k])


def _best_trial(losses: torch.Tensor) -> int | None:
    """The index of the least finite trial loss, None when none is finite."""
    finite = torch.isfinite(losses)
    if not bool(finite.any()):
        return None
    return int(torch.where(finite, losses, torch.full_like(losses, math.inf)).argmin())


def _learned_base(model: GeneratedPINN, direction: torch.Tensor, name: str) -> torch.Tensor:
    """κ₀ (P,), the learned parameters' current values in ``model.learned``'s order, after checking
    that the direction ``name`` has one entry per parameter."""
    params = list(model.learned.values())
    if direction.shape != (len(params),):
        raise ValueError(f"{name} must have shape ({len(params)},), one entry per learned parameter, "
                         f"got {tuple(direction.shape)}")
    return torch.stack([p.detach() for p in params])


def _trial_learned(model: GeneratedPINN, base: torch.Tensor, direction: torch.Tensor,
                   steps: torch.Tensor) -> dict[str, torch.Tensor]:
    """Trial k's learned parameters κ₀ + s_k δκ for K step sizes s: name -> (K, 1), the values
    the residual functions take in place of ``model.learned``."""
    kappa = base + steps[:, None] * direction                                   # (K, P)
    return {name: kappa[:, i, None] for i, name in enumerate(model.learned)}
