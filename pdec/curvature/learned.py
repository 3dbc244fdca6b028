"""Curvature of the learned PDE parameters κ ∈ R^P (``Learned`` in a spec): one exact dense block.

A learned parameter enters the residuals only (the compiler keeps it out of the propagated
stacks), so with the network's output stack fixed the residual is a cheap function of κ, and its
per-sample Jacobian

    J_{n,m,p} = ∂ r_{n,m} / ∂ κ_p                 (N, M, P)

comes from P forward-mode products through the generated residual function alone. From it

    ∂L_τ/∂κ = 1/N Σ_{n,m} r_{n,m} J_{n,m,:}       (P,)
    G_τ     = 1/N Σ_{n,m} J_{n,m,:}ᵀ J_{n,m,:}    (P, P)

the κ-block of the term's Gramian, exact: P is a handful, so no Kronecker factorisation is
needed. KFAC and KFAC* precondition κ with this block (block-diagonal next to the layers'
Kronecker blocks, MATH.md §5–§6), averaged and damped like the factors (:class:`LearnedBlock`);
ENGD and Hessian-free take J as κ's columns of the Jacobian.
"""

from __future__ import annotations

import warnings

import torch

from ..runtime import GeneratedPINN


def learned_jacobian(model: GeneratedPINN, term: str, X: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """J (N, M, P) = ∂ r_{n,m} / ∂ κ_p at the model's current κ, with the output stack ``out``
    (N', S, m) held fixed; X: the term's points as for :meth:`GeneratedPINN.residual`. P follows
    ``model.learned``'s order."""
    names = list(model.learned)
    values = tuple(p.detach() for p in model.learned.values())
    out = out.detach()

    def residual(*kappa: torch.Tensor) -> torch.Tensor:
        return model.residual_of_output(term, X, out, dict(zip(names, kappa)))

    columns = []
    with warnings.catch_warnings():
        # torch's own forward-AD set-up (make_dual) scripts a helper and warns that torch.jit.script
        # is deprecated (torch 2.13); nothing here calls it
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)
        for p in range(len(values)):
            tangents = tuple(torch.ones_like(v) if i == p else torch.zeros_like(v) for i, v in enumerate(values))
            _, column = torch.func.jvp(residual, values, tangents)
            columns.append(column)
    return torch.stack(columns, dim=-1)


def learned_loss_gradient(residual: torch.Tensor, jacobian: torch.Tensor, n: int) -> torch.Tensor:
    """∂/∂κ of the term's loss 1/(2N) Σ_n ‖r_n‖²: (P,) from r (N, M) and J (N, M, P); N = ``n``
    (the term's count over all ranks)."""
    return torch.einsum("n m, n m p -> p", residual, jacobian) / n


def learned_gramian(jacobian: torch.Tensor, n: int) -> torch.Tensor:
    """The term's Gramian block of κ, 1/N Σ_n J_nᵀ J_n: (P, P) from J (N, M, P)."""
    return torch.einsum("n m p, n m q -> p q", jacobian, jacobian) / n


class LearnedBlock:
    """The EMA'd Gramian block Ĝ of the learned parameters, with the factors' conventions:
    Ĝ ← β Ĝ + (1 − β) G, starting from I or 0, and the step −(Ĝ + λI)⁻¹ ∇_κ L.

    Args:
        P: number of learned parameters.
        ema, init: as the Kronecker factors' (β, "identity" or "zero").
        dtype, device: of the block.
    """

    def __init__(self, P: int, ema: float, init: str, dtype: torch.dtype, device: torch.device | str | None):
        self.ema = ema
        self.G = (torch.eye(P, dtype=dtype, device=device) if init == "identity"
                  else torch.zeros(P, P, dtype=dtype, device=device))

    def update(self, G: torch.Tensor) -> None:
        """Ĝ ← β Ĝ + (1 − β) G."""
        self.G.mul_(self.ema).add_(G, alpha=1.0 - self.ema)

    def direction(self, gradient: torch.Tensor, damping: float) -> torch.Tensor:
        """Δκ = −(Ĝ + λI)⁻¹ ∇_κ L: (P,), by the eigendecomposition of the symmetric Ĝ (as the
        factors' inverses are). A direction with eigenvalue 0 (a κ no residual of the batch reads,
        with init "zero" and λ = 0) gets no step rather than an infinite one."""
        lam, Q = torch.linalg.eigh(self.G)
        lam = lam + damping
        inverse = torch.where(lam > 0, 1.0 / torch.where(lam > 0, lam, 1.0), 0.0)
        return -(Q @ (inverse * (Q.mT @ gradient)))
