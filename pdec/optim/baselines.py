"""First-order and quasi-Newton baselines: SGD, Adam, L-BFGS (torch's implementations).

Defaults are the paper's best runs on 2d Poisson with the 2-64-1 net (appendix A.2).
"""

from __future__ import annotations

import torch

from ..loss import Batch, pinn_loss
from .base import Hyper, PINNOptimizer, StepInfo


class _TorchOptimizer(PINNOptimizer):
    """Wraps a ``torch.optim`` optimizer built by :meth:`make`. It trains every parameter of the
    model, the spec's learned parameters (``model.learned``) included."""

    TRAINS_LEARNED = True

    def __init__(self, model, **hyper):
        super().__init__(model, **hyper)
        self.inner = self.make()

    def make(self) -> torch.optim.Optimizer:  # pragma: no cover - overridden
        raise NotImplementedError

    def loss_and_gradient(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss (1-element tensor) and per-term losses; ``p.grad`` holds ∇L. With several
        ranks, both are summed over the ranks' shards (one all-reduce)."""
        self.inner.zero_grad(set_to_none=False)
        total, losses = pinn_loss(self.model, batch)
        total.backward()
        values = torch.stack([total.detach(), *(v.detach() for v in losses.values())])
        self.comm.all_reduce_([values, *(p.grad for p in self.params if p.grad is not None)])
        return values[:1], dict(zip(losses, values[1:].tolist()))

    def step(self, batch: Batch) -> StepInfo:
        total, losses = self.loss_and_gradient(batch)
        self.inner.step()
        return StepInfo(float(total), losses, self.hyper["lr"])

    def state_dict(self) -> dict:
        return {**super().state_dict(), "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state["inner"])


class SGD(_TorchOptimizer):
    """Stochastic gradient descent with momentum (torch.optim.SGD)."""

    name = "sgd"
    HYPERPARAMETERS = {
        "lr": Hyper(1.805015e-2, "learning rate", lo=0, lo_open=True),
        "momentum": Hyper(0.99, "momentum", lo=0, hi=1),
    }

    def make(self):
        return torch.optim.SGD(self.params, lr=self.hyper["lr"], momentum=self.hyper["momentum"])


class Adam(_TorchOptimizer):
    """Adam (torch.optim.Adam)."""

    name = "adam"
    HYPERPARAMETERS = {
        "lr": Hyper(1.692339e-3, "learning rate", lo=0, lo_open=True),
        "beta1": Hyper(0.9, "first-moment decay", lo=0, hi=1),
        "beta2": Hyper(0.999, "second-moment decay", lo=0, hi=1),
        "eps": Hyper(1e-8, "denominator regulariser", lo=0, lo_open=True),
    }

    def make(self):
        h = self.hyper
        return torch.optim.Adam(self.params, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"])


class LBFGS(_TorchOptimizer):
    """L-BFGS (torch.optim.LBFGS) with strong-Wolfe line search (or none); one step = one
    ``torch.optim.LBFGS.step`` call of at most ``max_iter`` inner iterations."""

    name = "lbfgs"
    HYPERPARAMETERS = {
        "lr": Hyper(0.5, "initial step length", lo=0, lo_open=True),
        # torch's strong-Wolfe L-BFGS with one inner iteration per call stalled on 2d Poisson
        # (loss stuck at 29.9 from step 4), and without a line search it diverged on a small net;
        # 20 inner iterations per step with strong Wolfe descend steadily on both
        "max_iter": Hyper(20, "inner iterations per step", lo=1),
        "history_size": Hyper(150, "curvature pairs kept", lo=1),
        "line_search": Hyper("strong_wolfe", "line search", choices=("strong_wolfe", "none")),
    }

    def make(self):
        h = self.hyper
        return torch.optim.LBFGS(self.params, lr=h["lr"], max_iter=h["max_iter"], history_size=h["history_size"],
                                 line_search_fn=None if h["line_search"] == "none" else "strong_wolfe")

    def step(self, batch: Batch) -> StepInfo:
        record = {}

        def closure():
            total, losses = self.loss_and_gradient(batch)
            if not record:
                record.update(total=float(total), losses=losses)
            return total[0]

        self.inner.step(closure)
        return StepInfo(record["total"], record["losses"], self.hyper["lr"])
