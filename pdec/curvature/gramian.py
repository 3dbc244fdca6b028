"""The exact Gramian G = Σ_τ 1/N_τ J_τᵀ J_τ: matrix-free products and, for small nets, dense.

J_τ (N_τ·M_τ, D) is the Jacobian of term τ's residuals w.r.t. all parameters. Given a rank's
:class:`~pdec.parallel.Shard`, the torch.func functions below return that rank's part (divided by
the batch's totals, not summed over ranks); the ``linearized_*`` ones sum over ranks through
``comm``. Parameter-space vectors are lists of layer matrices W̃⁽ˡ⁾-shaped (h_l, h_{l-1}+1) (see
:mod:`.layout`); dense matrices use the column-stacking vec of :func:`.layout.flatten`.

Products (MATH.md §6, KFAC* and Hessian-free) need no matrix:

    vᵀ G w = Σ_τ 1/N_τ ⟨J_τ v, J_τ w⟩          (one Jacobian–vector product per term and vector)
    G v    = Σ_τ 1/N_τ J_τᵀ (J_τ v)            (a JVP, then a VJP)
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call, jvp, vjp

from ..parallel import LOCAL, Communicator, batch_total
from ..runtime import GeneratedPINN
from .jacobian import Linearization, linearize, per_sample_jacobians
from .layout import layer_matrices, matrices_to_params, vec

Batch = Mapping[str, torch.Tensor]


class _TermResidual(nn.Module):
    """``forward(X) = model.residual(term, X)``, so ``functional_call`` can swap the parameters."""

    def __init__(self, model: GeneratedPINN, term: str):
        super().__init__()
        self.model = model
        self.term = term

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.model.residual(self.term, X)


def residual_function(model: GeneratedPINN, term: str, X: torch.Tensor
                      ) -> Callable[[Sequence[torch.Tensor]], torch.Tensor]:
    """θ ↦ r_τ(θ): layer matrices [W̃⁽ˡ⁾ (h_l, h_{l-1}+1)] -> residual (N, M) at fixed points X.

    Pure function of its argument (``torch.func.functional_call``), usable with jvp/vjp/jacrev.
    """
    wrapper = _TermResidual(model, term)

    def f(mats: Sequence[torch.Tensor]) -> torch.Tensor:
        params = {f"model.{k}": v for k, v in matrices_to_params(model, list(mats)).items()}
        return functional_call(wrapper, params, (X,))

    return f


def residual_jvps(model: GeneratedPINN, batch: Batch, vector: Sequence[torch.Tensor]
                  ) -> dict[str, torch.Tensor]:
    """J_τ v for every term: term -> (N_τ, M_τ), one forward-mode pass per term.

    Args:
        model: a generated module.
        batch: term -> points (N_τ, d).
        vector: v as layer matrices (h_l, h_{l-1}+1).
    """
    theta = tuple(layer_matrices(model))
    tangent = tuple(v.detach() for v in vector)
    out = {}
    for term, X in batch.items():
        _, Jv = jvp(residual_function(model, term, X), (theta,), (tangent,))
        out[term] = Jv
    return out


def gramian_quadratic_forms(model: GeneratedPINN, batch: Batch,
                            vectors: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """The K × K matrix [v_iᵀ G v_j] = Σ_τ 1/N_τ ⟨J_τ v_i, J_τ v_j⟩, matrix-free.

    Args:
        vectors: K parameter-space vectors, each a list of layer matrices (h_l, h_{l-1}+1).

    Returns:
        (K, K), symmetric positive semi-definite. K JVPs per term.
    """
    K = len(vectors)
    jvps = [residual_jvps(model, batch, v) for v in vectors]
    first = next(iter(vectors[0]))
    out = torch.zeros(K, K, dtype=first.dtype, device=first.device)
    for term, X in batch.items():
        Jv = torch.stack([j[term].reshape(-1) for j in jvps])  # (k, n·m)
        out += Jv @ Jv.mT / batch_total(batch, term)
    return out


def gramian_quadratic_form(model: GeneratedPINN, batch: Batch,
                           vector: Sequence[torch.Tensor]) -> torch.Tensor:
    """vᵀ G v = Σ_τ 1/N_τ ‖J_τ v‖² (0-dim), one JVP per term."""
    return gramian_quadratic_forms(model, batch, [vector])[0, 0]


def gramian_matvec(model: GeneratedPINN, batch: Batch, vector: Sequence[torch.Tensor]
                   ) -> list[torch.Tensor]:
    """G v = Σ_τ 1/N_τ J_τᵀ (J_τ v) as layer matrices (h_l, h_{l-1}+1); a JVP and a VJP per term."""
    theta = tuple(layer_matrices(model))
    tangent = tuple(v.detach() for v in vector)
    out = [torch.zeros_like(t) for t in theta]
    for term, X in batch.items():
        f = residual_function(model, term, X)
        _, Jv = jvp(f, (theta,), (tangent,))
        _, pullback = vjp(f, theta)
        (JtJv,) = pullback(Jv / batch_total(batch, term))
        out = [o + g for o, g in zip(out, JtJv)]
    return out


def term_jacobian_matrix(model: GeneratedPINN, term: str, X: torch.Tensor) -> list[torch.Tensor]:
    """Exact per-layer Jacobians of a term, flattened: per layer (N·M, P_l), P_l = h_l (h_{l-1}+1),
    columns in the column-stacking vec of W̃⁽ˡ⁾ (from one :func:`~.jacobian.linearize`)."""
    lin = linearize(model, term, X)
    return [vec(J).reshape(-1, J.shape[-1] * J.shape[-2]) for J in per_sample_jacobians(lin)]


def dense_gramian_blocks(model: GeneratedPINN, batch: Batch) -> list[torch.Tensor]:
    """Layer-wise exact Gramian blocks G⁽ˡ⁾ = Σ_τ 1/N_τ J_τ⁽ˡ⁾ᵀ J_τ⁽ˡ⁾, each (P_l, P_l).

    Memory O(N·M·P_l): for small nets (ENGD, tests).
    """
    blocks = None
    for term, X in batch.items():
        Js = term_jacobian_matrix(model, term, X)
        contrib = [J.mT @ J / batch_total(batch, term) for J in Js]
        blocks = contrib if blocks is None else [a + b for a, b in zip(blocks, contrib)]
    return blocks or []


def dense_gramian(model: GeneratedPINN, batch: Batch) -> torch.Tensor:
    """Full exact Gramian G = Σ_τ 1/N_τ J_τᵀ J_τ, (D, D) in the order of :func:`.layout.flatten`.

    Memory O(N·M·D + D²): for small nets (ENGD, tests).
    """
    G = None
    for term, X in batch.items():
        J = torch.cat(term_jacobian_matrix(model, term, X), dim=1)  # (n·m, D)
        contrib = J.mT @ J / batch_total(batch, term)
        G = contrib if G is None else G + contrib
    return G


# --------------------------------------------------------------------------- from linearizations
# The per-sample Jacobian is J_{n,m} = Σ_l Σ_s g_{n,s,m} Z̃_{n,s}ᵀ (MATH.md §4), so products with J
# and Jᵀ need only the stacks and output gradients a curvature pass already holds: no extra
# forward or backward pass, and cost O(N S h_l h_{l-1}) per layer, like a forward pass.

def linearized_jvp(lin: Linearization, vector: Sequence[torch.Tensor]) -> torch.Tensor:
    """J v of one term, (N, M), from its linearization; ``vector`` as layer matrices (h_l, h_{l-1}+1),
    and for a model with learned parameters optionally then their part v_κ (P,): + J_κ v_κ."""
    out = None
    for Zt, g, V in zip(lin.inputs, lin.output_grads, vector):
        VZ = torch.einsum("nsi,oi->nso", Zt, V)
        part = torch.einsum("nmso,nso->nm", g, VZ)
        out = part if out is None else out + part
    if len(vector) == len(lin.inputs) + 1:
        out = out + torch.einsum("nmp,p->nm", _learned_jacobian(lin), vector[-1])
    return out


def linearized_vjp(lin: Linearization, weights: torch.Tensor, learned: bool = False) -> list[torch.Tensor]:
    """Jᵀ u of one term for u (N, M): layer matrices Σ_{n,m,s} u_{n,m} g_{n,s,m} Z̃_{n,s}ᵀ; with
    ``learned``, then the learned parameters' part J_κᵀ u (P,)."""
    out = [torch.einsum("nm,nmso,nsi->oi", weights, g, Zt) for Zt, g in zip(lin.inputs, lin.output_grads)]
    if learned:
        out.append(torch.einsum("nm,nmp->p", weights, _learned_jacobian(lin)))
    return out


def _learned_jacobian(lin: Linearization) -> torch.Tensor:
    if lin.learned_jacobian is None:
        raise ValueError(f"term {lin.term!r}: a vector with a learned parameters' part, but the model has none")
    return lin.learned_jacobian


def linearized_quadratic_forms(lins: Mapping[str, Linearization],
                               vectors: Sequence[Sequence[torch.Tensor]],
                               comm: Communicator = LOCAL) -> torch.Tensor:
    """[v_iᵀ G v_j] (K, K) with G = Σ_τ 1/N_τ J_τᵀ J_τ, from the terms' linearizations
    (summed over ranks when each holds a shard)."""
    out = None
    for lin in lins.values():
        Jv = torch.stack([linearized_jvp(lin, v).reshape(-1) for v in vectors])  # (K, N·M)
        part = Jv @ Jv.mT / lin.n_samples
        out = part if out is None else out + part
    comm.all_reduce_([out])
    return out


def linearized_matvec(lins: Mapping[str, Linearization], vector: Sequence[torch.Tensor],
                      comm: Communicator = LOCAL) -> list[torch.Tensor]:
    """G v = Σ_τ 1/N_τ J_τᵀ (J_τ v) as layer matrices (then the learned parameters' part (P,) when
    ``vector`` has one, see :func:`linearized_jvp`), from the terms' linearizations (summed over
    ranks when each holds a shard)."""
    out = None
    for lin in lins.values():
        learned = len(vector) == len(lin.inputs) + 1
        part = linearized_vjp(lin, linearized_jvp(lin, vector) / lin.n_samples, learned)
        out = part if out is None else [a + b for a, b in zip(out, part)]
    comm.all_reduce_(out)
    return out
