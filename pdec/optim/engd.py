"""Energy natural gradient descent (Müller & Zeinhofer 2023) and Hessian-free (truncated CG).

ENGD: Δ = −(Ĝ + λI)⁺ ∇L with the exact Gramian G = Σ_τ 1/N_τ J_τᵀ J_τ (full D × D, or its
layer-wise block diagonal), an EMA Ĝ ← β Ĝ + (1 − β) G initialised to I, and the logarithmic grid
line search. Feasible only for small D: the memory is estimated first and a net whose Gramian
will not fit is refused with the size.

Learned parameters κ (a spec's ``Learned``) add P columns ∂r/∂κ to J: the full Gramian couples
them with the layers, and its direction moves both along one line search; the layer-wise Gramian
gets one more block, and κ moves first with a line search of its own (as KFAC's).

Hessian-free: truncated conjugate gradients on (G + λI) d = −∇L with matrix-free Gramian–vector
products (one JVP and one VJP per term per iteration), then the same line search; learned
parameters join the products through their columns of J and move with the layers.
"""

from __future__ import annotations

import torch

from ..curvature import (flatten, layer_shapes, learned_loss_gradient, linearize, linearized_matvec, loss_gradient,
                         per_sample_jacobians, unflatten, vec)
from ..errors import PdecError
from ..loss import Batch
from ..parallel import batch_total
from .base import Hyper, PINNOptimizer, StepInfo
from .line_search import grid_line_search, learned_line_search


def _psd_solve(G: torch.Tensor, g: torch.Tensor, rcond: float = 1e-14) -> torch.Tensor:
    """(G)⁺ g for symmetric positive semi-definite G via eigh (eigenvalues ≤ rcond·max dropped)."""
    lam, V = torch.linalg.eigh(G)
    keep = lam > rcond * lam.abs().max()
    inv = torch.where(keep, 1.0 / torch.where(keep, lam, torch.ones_like(lam)), torch.zeros_like(lam))
    return V @ (inv * (V.mT @ g))


class ENGD(PINNOptimizer):
    """ENGD with the full Gramian (``layerwise=False``) or its layer-wise blocks."""

    name = "engd"
    layerwise = False
    TRAINS_LEARNED = True
    HYPERPARAMETERS = {
        "damping": Hyper(1e-10, "λ added to the Gramian", lo=0),
        "ema": Hyper(0.3, "β of the Gramian moving average (0: none)", lo=0, hi=0.999999),
        "init": Hyper("identity", "initial Ĝ for the EMA", choices=("identity", "zero")),
        "max_memory_gb": Hyper(4.0, "refuse nets whose Gramian and Jacobians need more", lo=0, lo_open=True),
    }

    def __init__(self, model, **hyper):
        super().__init__(model, **hyper)
        p = next(model.parameters())
        self.shapes = layer_shapes(model)
        sizes = [o * i for o, i in self.shapes]
        self.P = len(model.learned)   # learned parameters: P more columns of J, after the layers'
        self.D = sum(sizes) + self.P
        blocks = (sizes + ([self.P] if self.P else [])) if self.layerwise else [self.D]
        self._check_memory(sum(b * b for b in blocks) * 3, "the Gramian, its average and its eigenvectors")
        make = (lambda k: torch.eye(k, dtype=p.dtype, device=p.device)) if self.hyper["init"] == "identity" \
            else (lambda k: torch.zeros(k, k, dtype=p.dtype, device=p.device))
        self.G = [make(b) for b in blocks]

    def _check_memory(self, entries: int, what: str) -> None:
        need = entries * next(self.model.parameters()).element_size() / 2**30
        if need > self.hyper["max_memory_gb"]:
            raise PdecError(f"{self.name}: {what} for D = {self.D} parameters need ≈ {need:.1f} GiB, more than "
                            f"max_memory_gb = {self.hyper['max_memory_gb']}; use kfac, or a smaller net")

    def gramian(self, batch: Batch):
        """Exact Gramian (blocks), loss gradient (layer matrices, then ∂L/∂κ (P,) when the model has
        learned parameters), total and per-term losses. With learned parameters the terms' output
        stacks are kept in ``self.outputs`` (the layer-wise step's line search over κ reads them)."""
        n_rows = sum(X.shape[0] for X in batch.values())
        self._check_memory(2 * n_rows * self.D, "the per-sample Jacobians")
        blocks = None
        grad, losses = None, {}
        self.outputs = {}
        for term, X in batch.items():
            lin = linearize(self.model, term, X, batch_total(batch, term))
            losses[term] = lin.loss.reshape(1)
            g = loss_gradient(lin)
            Js = [vec(J).reshape(-1, J.shape[-1] * J.shape[-2]) for J in per_sample_jacobians(lin)]
            if self.P:   # rows n·M + m, as the layers' rows
                g = g + [learned_loss_gradient(lin.residual, lin.learned_jacobian, lin.n_samples)]
                Js.append(lin.learned_jacobian.reshape(-1, self.P))
                self.outputs[term] = lin.output
            grad = g if grad is None else [a + b for a, b in zip(grad, g)]
            if not self.layerwise:
                Js = [torch.cat(Js, dim=1)]
            contrib = [J.mT @ J / lin.n_samples for J in Js]
            blocks = contrib if blocks is None else [a + b for a, b in zip(blocks, contrib)]
        self.comm.all_reduce_([*losses.values(), *grad, *blocks])  # data parallel: sum over ranks
        return blocks, grad, {k: float(v) for k, v in losses.items()}

    def direction(self, batch: Batch):
        """Δ = −(Ĝ + λI)⁺ ∇L as layer matrices, after the EMA update; also the losses. With learned
        parameters their part Δκ (P,) is left in ``self.learned_delta``."""
        blocks, grad, losses = self.gramian(batch)
        beta, lam = self.hyper["ema"], self.hyper["damping"]
        for Gh, G in zip(self.G, blocks):
            Gh.mul_(beta).add_(G, alpha=1.0 - beta)
        g = flatten([G_.detach() for G_ in grad[:len(self.shapes)]])
        if self.P:
            g = torch.cat([g, grad[-1].detach()])
        if self.layerwise:
            parts, start = [], 0
            for Gh in self.G:
                k = Gh.shape[0]
                eye = torch.eye(k, dtype=g.dtype, device=g.device)
                parts.append(_psd_solve(Gh + lam * eye, g[start:start + k]))
                start += k
            d = torch.cat(parts)
        else:
            eye = torch.eye(self.D, dtype=g.dtype, device=g.device)
            d = _psd_solve(self.G[0] + lam * eye, g)
        self.learned_delta = -d[self.D - self.P:] if self.P else None
        return unflatten(-d[:self.D - self.P], self.shapes), losses

    def step(self, batch: Batch) -> StepInfo:
        delta, losses = self.direction(batch)
        loss = current = sum(losses.values())
        joint = None
        if self.learned_delta is not None and self.comm.distributed:   # one κ step on every rank
            self.comm.broadcast_([self.learned_delta], src=0)
        if self.learned_delta is not None and self.layerwise:   # κ's block alone: its own line search first
            _, current = learned_line_search(self.model, batch, self.outputs, self.learned_delta, comm=self.comm,
                                             current=loss)
        elif self.learned_delta is not None:   # the full Gramian's direction moves κ with the layers
            joint = self.learned_delta
        alpha, _ = grid_line_search(self.model, batch, delta, comm=self.comm, current=current,
                                    learned_direction=joint)
        return StepInfo(loss, losses, alpha)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "G": [G.clone() for G in self.G]}

    def load_state_dict(self, state: dict) -> None:
        for G, saved in zip(self.G, state["G"]):
            G.copy_(saved)


class LayerwiseENGD(ENGD):
    """ENGD with the block-diagonal (one block per layer) Gramian."""

    name = "engd-layerwise"
    layerwise = True
    HYPERPARAMETERS = {**ENGD.HYPERPARAMETERS,
                       "damping": Hyper(0.0, "λ added to the Gramian blocks", lo=0),
                       "ema": Hyper(0.9, "β of the Gramian moving average (0: none)", lo=0, hi=0.999999)}


class HessianFree(PINNOptimizer):
    """Truncated CG on the damped Gramian (GGN; matrix-free), then the grid line search.

    With ``adaptive_damping`` (Martens 2010, Levenberg–Marquardt), λ shrinks by 2/3 when the
    quadratic model predicts the achieved decrease well (ρ > 3/4) and grows by 3/2 when it does not
    (ρ < 1/4); ρ = (L(θ + d) − L(θ)) / (m(d) − L(θ)) for the step d taken.
    """

    name = "hessian-free"
    TRAINS_LEARNED = True   # κ's columns of J join the Gramian products; one direction, one line search
    METRICS = ("cg_iterations", "damping")
    HYPERPARAMETERS = {
        "damping": Hyper(500.0, "initial λ in (G + λI) d = −∇L", lo=0),
        "adaptive_damping": Hyper(True, "Levenberg–Marquardt adaptation of λ"),
        "cg_iterations": Hyper(300, "maximum CG iterations per step", lo=1),
        "cg_tolerance": Hyper(1e-10, "stop CG at relative residual below this", lo=0),
    }

    def __init__(self, model, **hyper):
        super().__init__(model, **hyper)
        self.damping = self.hyper["damping"]

    def state_dict(self) -> dict:
        return {**super().state_dict(), "damping": self.damping}

    def load_state_dict(self, state: dict) -> None:
        self.damping = state["damping"]

    def step(self, batch: Batch) -> StepInfo:
        grad, losses, lins = None, {}, {}
        P = len(self.model.learned)   # learned parameters: the last P entries of the flat vectors
        for term, X in batch.items():
            lin = lins[term] = linearize(self.model, term, X, batch_total(batch, term))
            losses[term] = lin.loss.reshape(1)
            g = loss_gradient(lin)
            if P:
                g.append(learned_loss_gradient(lin.residual, lin.learned_jacobian, lin.n_samples))
            grad = g if grad is None else [a + b for a, b in zip(grad, g)]
        self.comm.all_reduce_([*losses.values(), *grad])  # data parallel: sum over ranks
        losses = {k: float(v) for k, v in losses.items()}
        shapes = layer_shapes(self.model)
        D = sum(o * i for o, i in shapes)

        def split(v: torch.Tensor) -> list[torch.Tensor]:   # flat (D + P,) -> layer matrices [, κ part]
            return unflatten(v[:D], shapes) + ([v[D:]] if P else [])

        def join(parts: list[torch.Tensor]) -> torch.Tensor:
            return torch.cat([flatten(parts[:len(shapes)]), *parts[len(shapes):]])

        b = -join([g.detach() for g in grad])
        lam = self.damping

        def A(v: torch.Tensor) -> torch.Tensor:
            return join(linearized_matvec(lins, split(v), self.comm)) + lam * v

        x = torch.zeros_like(b)
        r = b.clone()
        p = r.clone()
        rr = r @ r
        b_norm = b.norm()
        iterations = 0
        for iterations in range(1, self.hyper["cg_iterations"] + 1):
            Ap = A(p)
            pAp = p @ Ap
            if pAp <= 0:
                break
            a = rr / pAp
            x = x + a * p
            r = r - a * Ap
            rr_new = r @ r
            if rr_new.sqrt() <= self.hyper["cg_tolerance"] * b_norm:
                break
            p = r + (rr_new / rr) * p
            rr = rr_new
        loss = sum(losses.values())
        if P and self.comm.distributed:   # one κ step on every rank
            self.comm.broadcast_([x], src=0)
        alpha, new_loss = grid_line_search(self.model, batch, unflatten(x[:D], shapes), comm=self.comm,
                                           current=loss, learned_direction=x[D:] if P else None)
        if self.hyper["adaptive_damping"] and alpha == 0:
            self.damping *= 1.5  # no trial lowered the loss (θ unchanged): as a poor model fit
        elif self.hyper["adaptive_damping"]:
            d = alpha * x
            Gd = join(linearized_matvec(lins, split(d), self.comm))
            predicted = float(-(d @ b) + 0.5 * (d @ Gd))  # m(d) − L = dᵀ∇L + ½ dᵀGd
            rho = (new_loss - loss) / predicted if predicted < 0 else 0.0
            if rho > 0.75:
                self.damping *= 2 / 3
            elif rho < 0.25:
                self.damping *= 1.5
        return StepInfo(loss, losses, alpha, {"cg_iterations": iterations, "damping": self.damping})
