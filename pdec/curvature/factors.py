"""Kronecker factors A (input side) and B (output side) of a term's Gramian, per layer.

A term's loss is 1/(2N) Σ_n ‖r_n‖², so its Gramian is G = 1/N Σ_n J_nᵀ J_n with the per-sample
Jacobian J_{n,m} = Σ_s g_{n,m,s} Z̃_{n,s}ᵀ (see :mod:`.jacobian`). In the vec convention of
:mod:`.layout`, G⁽ˡ⁾ ≈ A ⊗ B = ``torch.kron(A, B)``.

KFAC-expand (MATH.md §5; Eschenhagen et al. 2023): drop the s ≠ s' cross terms, then apply the
expectation approximation over the N·S (sample, shared) pairs:

    A = 1/(N S) Σ_{n,s} Z̃_{n,s} Z̃_{n,s}ᵀ,         B = 1/N Σ_{n,m,s} g_{n,m,s} g_{n,m,s}ᵀ.

KFAC-reduce (Eschenhagen et al. 2023, §3; same convention as curvlinops): average the inputs and
sum the output gradients over the shared axis, then one expectation approximation over n:

    A = 1/N Σ_n z̄_n z̄_nᵀ,  z̄_n = 1/S Σ_s Z̃_{n,s}   (= 1/(N S²) Σ_n (Σ_s Z̃)(Σ_s Z̃)ᵀ),
    B = 1/N Σ_{n,m} ḡ_{n,m} ḡ_{n,m}ᵀ,  ḡ_{n,m} = Σ_s g_{n,m,s}.

The 1/S² keeps the scale of A independent of S: if every column Z̃_{n,s} equals z̄_n, then
J_{n,m} = ḡ_{n,m} z̄_nᵀ exactly (so A ⊗ B is the exact Gramian for N = 1, M = 1). Both
approximations coincide for S = 1 (condition terms on the value). A periodic term's sample joins
its two points' stacks (S = 2 for a value; :mod:`.jacobian`), where reduce is the cruder one: it
approximates J = g₁z₁ᵀ + g₂z₂ᵀ by (g₁ + g₂)(z₁ + z₂)ᵀ/2, and g₂ ≈ −g₁ (the image's gradient
carries the difference's minus sign), so its B nearly cancels; expand (the default) keeps both.
The vector-residual (M-component) form sums the B contributions over m (Λ = I, squared loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

import torch

from ..parallel import LOCAL, Communicator, batch_total
from ..runtime import GeneratedPINN
from .jacobian import Linearization, linearize, loss_gradient
from .learned import learned_gramian, learned_loss_gradient

Approximation = Literal["expand", "reduce"]


@dataclass
class KronFactors:
    """One layer's factors: A ((h_{l-1}+1)², input side) and B (h_l², output side); G ≈ A ⊗ B."""

    A: torch.Tensor
    B: torch.Tensor

    def to_dense(self) -> torch.Tensor:
        """A ⊗ B as a dense (P, P) matrix, P = h_l (h_{l-1}+1), in the column-stacking vec."""
        return torch.kron(self.A, self.B)


def expand_factors(Zt: torch.Tensor, g: torch.Tensor, n_total: int | None = None) -> KronFactors:
    """KFAC-expand factors of one layer.

    Args:
        Zt: bias-augmented input stack Z̃ (N, S, h_{l-1}+1).
        g: output gradients (N, M, S, h_l).
        n_total: the divisor N when Z̃, g hold one rank's shard of the batch (default: N rows).

    Returns:
        A = 1/(N S) Σ_{n,s} Z̃ Z̃ᵀ and B = 1/N Σ_{n,m,s} g gᵀ.
    """
    S = Zt.shape[1]
    N = n_total or Zt.shape[0]
    A = torch.einsum("n s i, n s j -> i j", Zt, Zt) / (N * S)
    B = torch.einsum("n m s o, n m s p -> o p", g, g) / N
    return KronFactors(A, B)


def reduce_factors(Zt: torch.Tensor, g: torch.Tensor, n_total: int | None = None) -> KronFactors:
    """KFAC-reduce factors of one layer.

    Args:
        Zt: bias-augmented input stack Z̃ (N, S, h_{l-1}+1).
        g: output gradients (N, M, S, h_l).
        n_total: the divisor N when Z̃, g hold one rank's shard of the batch (default: N rows).

    Returns:
        A = 1/(N S²) Σ_n (Σ_s Z̃)(Σ_s Z̃)ᵀ and B = 1/N Σ_{n,m} (Σ_s g)(Σ_s g)ᵀ.
    """
    N = n_total or Zt.shape[0]
    z_mean = Zt.mean(dim=1)  # (n, i)
    g_sum = g.sum(dim=2)  # (n, m, o)
    A = torch.einsum("n i, n j -> i j", z_mean, z_mean) / N
    B = torch.einsum("n m o, n m p -> o p", g_sum, g_sum) / N
    return KronFactors(A, B)


def term_factors(lin: Linearization, approximation: Approximation = "expand") -> list[KronFactors]:
    """Factors of every layer for one term's :class:`~.jacobian.Linearization`."""
    if approximation == "expand":
        rule = expand_factors
    elif approximation == "reduce":
        rule = reduce_factors
    else:
        raise ValueError(f"approximation must be 'expand' or 'reduce', got {approximation!r}")
    return [rule(Zt, g, lin.n_samples) for Zt, g in zip(lin.inputs, lin.output_grads)]


@dataclass
class CurvaturePass:
    """What one forward + backward pass per term yields.

    Attributes:
        losses: term -> 1/(2N_τ) Σ_n ‖r_n‖² (0-dim).
        gradient: ∂L/∂W̃⁽ˡ⁾ of the total loss over the batch's terms, per layer (h_l, h_{l-1}+1).
        factors: term -> per-layer :class:`KronFactors`.
        linearizations: term -> its :class:`Linearization` (for Gramian products without a new pass).
        learned_gradient: ∂L/∂κ (P,) of the total loss, for a model with learned parameters (else None).
        learned_gramians: term -> that term's exact Gramian block of κ (P, P) (empty without them).
    """

    losses: dict[str, torch.Tensor]
    gradient: list[torch.Tensor]
    factors: dict[str, list[KronFactors]]
    linearizations: dict[str, Linearization]
    learned_gradient: torch.Tensor | None = None
    learned_gramians: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def loss(self) -> torch.Tensor:
        """Total loss Σ_τ L_τ (0-dim)."""
        return sum(self.losses.values())


def curvature_pass(model: GeneratedPINN, batch: Mapping[str, torch.Tensor],
                   approximation: Approximation = "expand", comm: Communicator = LOCAL) -> CurvaturePass:
    """Losses, loss gradient and Kronecker factors of every term, one forward + backward per term.

    Args:
        model: a generated module (parameters requiring grad).
        batch: term name -> points X (N_τ, d), or a rank's :class:`~pdec.parallel.Shard`.
        approximation: "expand" (the paper's) or "reduce".
        comm: with several ranks, the losses, gradients, factors and learned blocks (each a sum
            over samples divided by the batch's total N_τ) are summed over ranks in one all-reduce; the
            linearizations stay local (Gramian products reduce their own results).

    Returns:
        :class:`CurvaturePass`.
    """
    losses, factors, gradient, lins = {}, {}, None, {}
    learned_gradient, gramians = None, {}
    for term, X in batch.items():
        lin = linearize(model, term, X, batch_total(batch, term))
        lins[term] = lin
        losses[term] = lin.loss
        factors[term] = term_factors(lin, approximation)
        grads = loss_gradient(lin)
        gradient = grads if gradient is None else [a + b for a, b in zip(gradient, grads)]
        if lin.learned_jacobian is not None:   # the learned parameters' exact block
            g = learned_loss_gradient(lin.residual, lin.learned_jacobian, lin.n_samples)
            learned_gradient = g if learned_gradient is None else learned_gradient + g
            gramians[term] = learned_gramian(lin.learned_jacobian, lin.n_samples)
    gradient = gradient or []
    if comm.distributed:
        comm.all_reduce_([*losses.values(), *gradient,
                          *(M for fs in factors.values() for f in fs for M in (f.A, f.B)),
                          *([learned_gradient] if learned_gradient is not None else []), *gramians.values()])
    return CurvaturePass(losses, gradient, factors, lins, learned_gradient, gramians)


def compute_factors(model: GeneratedPINN, batch: Mapping[str, torch.Tensor],
                    approximation: Approximation = "expand") -> dict[str, list[KronFactors]]:
    """Kronecker factors of every term in ``batch`` (term -> per-layer :class:`KronFactors`)."""
    return curvature_pass(model, batch, approximation).factors
