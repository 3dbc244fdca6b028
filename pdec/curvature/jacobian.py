"""Output gradients g and the exact per-sample Jacobians of a term's residual (MATH.md §4).

For linear layer l with W̃ = (W b) and bias-augmented input stack Z̃⁽ˡ⁻¹⁾_n (S, h_{l-1}+1)
(appended feature 1 on the value column s = 0, 0 on every derivative column):

    Z⁽ˡ⁾_{n,s} = W̃ Z̃⁽ˡ⁻¹⁾_{n,s},     g_{n,m,s} = ∂ r_{n,m} / ∂ Z⁽ˡ⁾_{n,s}  (h_l),
    ∂ r_{n,m} / ∂ W̃ = Σ_s g_{n,m,s} Z̃⁽ˡ⁻¹⁾_{n,s}ᵀ                        (h_l, h_{l-1}+1).

g comes from one backward pass of Σ_n r_{n,m} per residual component m (not of the loss): the
samples do not interact, so the gradient of the sum w.r.t. Z⁽ˡ⁾_n is sample n's own gradient.

A periodic term's residual r_n = q(x_n) − q(x_n') reads the network at two points, so its sample
n has the stacks of both: they are joined along the shared axis, S' = 2S columns (x_n's, then
x_n''s), and every formula above holds with s running over both points (g carries the minus sign
of x_n'). The factors then treat the pair as weight sharing over 2S positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..loss import term_loss
from ..runtime import GeneratedPINN
from .learned import learned_jacobian


@dataclass
class Linearization:
    """A term's forward + backward pass: everything the factors and gradients are built from.

    Attributes:
        term: the term name.
        residual: r (N, M), detached.
        inputs: per layer, the bias-augmented input stack Z̃⁽ˡ⁻¹⁾ (N, S, h_{l-1}+1), detached.
        output_grads: per layer, g (N, M, S, h_l) = ∂ r_{n,m} / ∂ Z⁽ˡ⁾_{n,s}, detached.
        n_total: the term's point count over all ranks (data parallel); None: this pass's N.
        learned_jacobian: J (N, M, P) = ∂ r_{n,m} / ∂ κ_p for a model with learned parameters
            (:mod:`pdec.curvature.learned`), else None.
        output: the network's output stack (N', S, m), detached, for a model with learned
            parameters (their line search re-evaluates the residual at other κ from it), else None.
    """

    term: str
    residual: torch.Tensor
    inputs: list[torch.Tensor]
    output_grads: list[torch.Tensor]
    n_total: int | None = None
    learned_jacobian: torch.Tensor | None = None
    output: torch.Tensor | None = None

    @property
    def n_samples(self) -> int:
        """N, the number of points of the term in the whole batch (every averages divides by it)."""
        return self.n_total or self.residual.shape[0]

    @property
    def loss(self) -> torch.Tensor:
        """The term's loss 1/(2N) Σ_n ‖r_n‖² (0-dim; this rank's part in a data-parallel run)."""
        return term_loss(self.residual, self.n_samples)


def augment(Z: torch.Tensor, values: tuple[int, ...] = (0,)) -> torch.Tensor:
    """Append the bias feature to a stack: Z (N, S, h) -> Z̃ (N, S, h+1).

    The new feature is 1 on the value column (s = 0; ``values``: the value columns, (0, S/2) for a
    periodic pair's joined stack) and 0 on the derivative columns, because the bias enters only
    the value (derivatives of a constant vanish).
    """
    bias = torch.zeros(*Z.shape[:-1], 1, dtype=Z.dtype, device=Z.device)
    bias[:, list(values)] = 1.0
    return torch.cat([Z, bias], dim=-1)


def output_gradients(residual: torch.Tensor, outputs: Sequence[torch.Tensor],
                     retain_graph: bool = False) -> list[torch.Tensor]:
    """g_{n,m,s} = ∂ r_{n,m} / ∂ Z⁽ˡ⁾_{n,s} for every layer, one backward pass per component m.

    Args:
        residual: r (N, M), still attached to the graph that produced ``outputs``.
        outputs: the output stacks Z⁽ˡ⁾ (N, S, h_l) of every layer, as stored by ``propagate``.
        retain_graph: keep the graph after the last backward pass.

    Returns:
        Per layer, g (N, M, S, h_l), detached (zeros where r does not depend on a stack).
    """
    N, M = residual.shape
    per_m = []
    for m in range(M):
        if not residual.requires_grad:
            per_m.append([torch.zeros_like(Z) for Z in outputs])
            continue
        grads = torch.autograd.grad(residual[:, m].sum(), list(outputs),
                                    retain_graph=retain_graph or m < M - 1,
                                    allow_unused=True, materialize_grads=True)
        per_m.append(grads)
    # per_m[m][l]: (N, S, h_l) -> per layer (N, M, S, h_l); one component needs no copy
    if M == 1:
        return [g.detach()[:, None] for g in per_m[0]]
    return [torch.stack([per_m[m][l] for m in range(M)], dim=1).detach() for l in range(len(outputs))]


def linearize(model: GeneratedPINN, term: str, X: torch.Tensor, n_total: int | None = None) -> Linearization:
    """One forward pass of a term and M backward passes of its residual.

    Args:
        model: a generated module; its parameters must require grad.
        term: one of ``model.term_names``.
        X: points (N, d).
        n_total: the term's count over all ranks when X is one rank's shard (default N).

    Returns:
        :class:`Linearization` with r (N, M), Z̃ (N, S, h_{l-1}+1) and g (N, M, S, h_l) per layer
        (S' = 2S for a periodic term), and J (N, M, P) of the learned parameters if the model has any.
    """
    with torch.enable_grad():
        stacks = model.propagate(term, X)
        if not all(Z.requires_grad for Z in stacks.outputs):
            raise RuntimeError("linearize needs the model's parameters to require grad")
        r = model.residual(term, X, stacks)
        grads = output_gradients(r, stacks.outputs)
    J_learned = learned_jacobian(model, term, X, stacks.outputs[-1]) if len(model.learned) else None
    output = stacks.outputs[-1].detach() if len(model.learned) else None
    if term not in model.periodic:
        inputs = [augment(Z.detach()) for Z in stacks.inputs]
    else:   # rows n and N + n are one sample's two points: (2N, S, ·) -> (N, 2S, ·)
        S = stacks.inputs[0].shape[1]
        inputs = [augment(join_pairs(Z.detach(), dim=1), values=(0, S)) for Z in stacks.inputs]
        grads = [join_pairs(g, dim=2) for g in grads]
    return Linearization(term, r.detach(), inputs, grads, n_total, J_learned, output)


def join_pairs(T: torch.Tensor, dim: int) -> torch.Tensor:
    """A periodic term's rows as pairs: T (2N, …) whose rows n and N + n belong to sample n ->
    (N, …) with the two halves concatenated along ``dim`` (the shared axis S)."""
    n = T.shape[0] // 2
    return torch.cat([T[:n], T[n:]], dim=dim)


def per_sample_jacobians(lin: Linearization) -> list[torch.Tensor]:
    """Exact J_{n,m} = ∂ r_{n,m} / ∂ W̃⁽ˡ⁾ = Σ_s g_{n,m,s} Z̃_{n,s}ᵀ for every layer.

    Memory is N·M·h_l·(h_{l-1}+1) per layer: meant for tests and small nets.

    Returns:
        Per layer, J (N, M, h_l, h_{l-1}+1).
    """
    return [torch.einsum("n m s o, n s i -> n m o i", g, Zt)
            for g, Zt in zip(lin.output_grads, lin.inputs)]


def loss_gradient(lin: Linearization) -> list[torch.Tensor]:
    """Gradient of the term's loss 1/(2N) Σ_n ‖r_n‖² w.r.t. every W̃⁽ˡ⁾, without forming J.

    ∂L/∂W̃ = 1/N Σ_{n,m} r_{n,m} Σ_s g_{n,m,s} Z̃_{n,s}ᵀ.

    Returns:
        Per layer, (h_l, h_{l-1}+1).
    """
    r, N = lin.residual, lin.n_samples
    return [torch.einsum("n m, n m s o, n s i -> o i", r, g, Zt) / N
            for g, Zt in zip(lin.output_grads, lin.inputs)]
