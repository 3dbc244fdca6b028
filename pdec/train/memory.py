"""Memory per rank, estimated before training from the net, the shard and the optimizer.

Parts (bytes; e = bytes per element, D parameters, per term τ: n_τ rows on this rank, S_τ
columns, M_τ residual components; per layer l: i = h_{l-1}+1 inputs, o = h_l outputs):

    parameters   D·e times the copies the optimizer keeps (θ, ∇L, momentum, directions, moments;
                 L-BFGS: 2 per remembered pair)
    stacks       Σ_τ Σ_l n_τ S_τ (i + M_τ o)·e: the kept Z̃⁽ˡ⁻¹⁾ and output gradients g of the
                 curvature pass (all terms: KFAC* and Hessian-free reuse them)
    graph        the autograd graph of the largest term's forward pass, ≈ 4 Σ_l n_τ S_τ o·e
    line search  the batched trial passes (chunked, see :mod:`pdec.optim.line_search`)
    factors      per term and layer A (i²) and B (o²), the fresh ones of a step, and the factored
                 inverse (P_A, P_B) with eigh's workspace (≈ 3 (i² + o²) per layer)
    gramian      ENGD: 3 Σ_b b² for the blocks (average, new, eigenvectors) and 2 n D for the
                 per-sample Jacobians

The estimate is checked in tests against the exact sizes of the tensors it predicts (the stacks
and factors); the graph and workspace terms are rules of thumb.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ..errors import PdecError
from ..optim.line_search import CHUNK_MB

_PARAM_COPIES = {"kfac": 5, "kfac-star": 5, "engd": 4, "engd-layerwise": 4, "hessian-free": 8,
                 "adam": 4, "sgd": 3, "lbfgs": 4}
_CURVATURE = ("kfac", "kfac-star", "engd", "engd-layerwise", "hessian-free")


@dataclass
class MemoryEstimate:
    """Estimated bytes per rank, by part (``parts``), and their ``total``."""

    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def summary(self) -> str:
        """One line: each part and the total, in MiB."""
        items = ", ".join(f"{k} {_mib(v)}" for k, v in self.parts.items() if v)
        return f"{items}; total {_mib(self.total)}"


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


def residual_components(model, term: str) -> int:
    """M_τ: the residual's components (one forward pass at one point)."""
    d = model.n_in + model.observed.get(term, 0)   # a data term's rows carry its observed values
    p = next(model.parameters())
    with torch.no_grad():
        return model.residual(term, torch.full((1, d), 0.5, dtype=p.dtype, device=p.device)).shape[1]


def estimate_memory(model, batch: Mapping[str, torch.Tensor], optimizer: str,
                    hyper: Mapping[str, Any] | None = None) -> MemoryEstimate:
    """Estimate the memory one rank needs to train ``model`` on its shard ``batch``.

    Args:
        model: a generated module.
        batch: this rank's points, term -> (n_τ, d).
        optimizer: registered optimizer name; ``hyper`` its hyperparameters (L-BFGS history).

    Returns:
        :class:`MemoryEstimate` with parts parameters, stacks, graph, line_search, factors, gramian.
    """
    hyper = hyper or {}
    p = next(model.parameters())
    e = p.element_size()
    widths = model.widths
    layers = list(zip(widths[:-1], widths[1:]))  # (h_{l-1}, h_l)
    D = sum(o * (i + 1) for i, o in layers)
    copies = _PARAM_COPIES.get(optimizer, 4)
    if optimizer == "lbfgs":
        copies += 2 * int(hyper.get("history_size", 100))
    parts = {"parameters": D * e * copies}

    stacks, graph, trial = 0, 0, 0
    for term, X in batch.items():
        # rows of the forward pass: a periodic term's points and their images
        n, S, M = model.forward_rows(term, X.shape[0]), model.S[term], residual_components(model, term)
        stacks += sum(n * S * ((i + 1) + M * o) for i, o in layers) if optimizer in _CURVATURE else 0
        graph = max(graph, 4 * sum(n * S * o for _, o in layers))
        trial += n * S * max(widths)
    parts["stacks"] = stacks * e
    parts["graph"] = graph * e
    if optimizer in _CURVATURE and optimizer != "kfac-star":
        chunk_cap = CHUNK_MB.get(p.device.type, CHUNK_MB["cuda"]) * 2**20
        parts["line_search"] = min(31 * 3 * trial * e, max(chunk_cap, 3 * trial * e))
    if optimizer in ("kfac", "kfac-star"):
        per_layer = sum((i + 1) ** 2 + o ** 2 for i, o in layers)
        parts["factors"] = (2 * len(batch) + 3) * per_layer * e
    if optimizer in ("engd", "engd-layerwise"):
        blocks = [o * (i + 1) for i, o in layers] if optimizer == "engd-layerwise" else [D]
        rows = sum(X.shape[0] * residual_components(model, t) for t, X in batch.items())
        parts["gramian"] = (3 * sum(b * b for b in blocks) + 2 * rows * D) * e
    return MemoryEstimate(parts)


def available_memory(device: torch.device) -> int | None:
    """Bytes free for one rank: the GPU's free memory, or MemAvailable shared by this node's ranks
    (LOCAL_WORLD_SIZE); None when unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: line.split()[1] for line in f}
        return int(info["MemAvailable"]) * 1024 // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    except (OSError, KeyError, ValueError):
        return None


def check_memory(estimate: MemoryEstimate, device: torch.device, available: int | None = None) -> None:
    """Refuse (PdecError, naming the sizes) an estimate above the memory free for one rank
    (``available`` bytes, default: :func:`available_memory`; unknown: no check)."""
    free = available if available is not None else available_memory(device)
    if free is not None and estimate.total > free:
        raise PdecError(f"this run needs ≈ {_mib(estimate.total)} per rank ({estimate.summary()}) but only "
                        f"{_mib(free)} is free on {device}; use fewer points per rank (more ranks, smaller "
                        f"n_interior), a smaller net, or kfac instead of engd (or set memory_check=false)")
