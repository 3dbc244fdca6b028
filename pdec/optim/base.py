"""One interface for every optimizer: ``step(batch) -> StepInfo``.

An optimizer owns the model's parameters and any curvature state; the training loop only calls
:meth:`PINNOptimizer.step` with a batch (term name -> points) and logs what it returns.
Hyperparameters are declared once per class in ``HYPERPARAMETERS`` (name -> :class:`Hyper`),
which gives defaults, range checks, and the keys ``--set`` accepts.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import torch

from ..errors import PdecError
from ..loss import Batch, pinn_loss
from ..parallel import LOCAL, Communicator
from ..runtime import GeneratedPINN


@dataclass(frozen=True)
class Hyper:
    """A hyperparameter: default, kind, allowed range [lo, hi] (None: unbounded), help text."""

    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple | None = None

    def check(self, name: str, value: Any, owner: str) -> Any:
        if self.choices is not None:
            if value not in self.choices:
                raise PdecError(f"{owner}: {name} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
            return value
        if isinstance(self.default, bool):
            words = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
            if isinstance(value, str) and value.strip().lower() in words:   # --set trust=off
                return words[value.strip().lower()]
            if type(value) is int and value in (0, 1):   # --set trust=0
                return bool(value)
            if not isinstance(value, bool):
                raise PdecError(f"{owner}: {name} must be true or false, got {value!r}")
            return value
        if isinstance(self.default, (int, float)):
            try:
                value = type(self.default)(value) if not (isinstance(self.default, int) and isinstance(value, float)
                                                          and not value.is_integer()) else value
            except (TypeError, ValueError):
                raise PdecError(f"{owner}: {name} must be a number, got {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise PdecError(f"{owner}: {name} must be finite, got {value!r}")
            if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
                raise PdecError(f"{owner}: {name} = {value} is out of range "
                                f"({'>' if self.lo_open else '≥'} {self.lo}{f', ≤ {self.hi}' if self.hi is not None else ''})")
            if self.hi is not None and value > self.hi:
                raise PdecError(f"{owner}: {name} = {value} is out of range (≤ {self.hi})")
        return value


@dataclass
class StepInfo:
    """What one step reports: the loss at the parameters it started from, per-term losses, and
    the step size it used (learning rate or line-search α), plus optimizer-specific extras."""

    loss: float
    losses: dict[str, float]
    lr: float
    extra: dict[str, float] = field(default_factory=dict)


class PINNOptimizer(ABC):
    """Base class. Subclasses set ``name``, ``HYPERPARAMETERS`` and implement :meth:`step`.

    Args:
        model: the generated module whose parameters are optimised in place.
        comm: data parallel: each rank passes its :class:`~pdec.parallel.Shard` to :meth:`step`,
            and every sum over samples is all-reduced through ``comm``, so all ranks take the same
            step as one process on the whole batch (default: a single process).
        **hyper: hyperparameters (see ``HYPERPARAMETERS``).
    """

    name: ClassVar[str] = ""
    HYPERPARAMETERS: ClassVar[Mapping[str, Hyper]] = {}
    #: keys of :attr:`StepInfo.extra` that the training loop writes to metrics.csv, one column each
    METRICS: ClassVar[tuple[str, ...]] = ()
    #: whether the optimizer trains a spec's learned parameters (``model.learned``) with the layers
    #: (every built-in one does); an optimizer that works on the layers' matrices alone leaves it
    #: false and refuses such a model, rather than leave the parameters at their start
    TRAINS_LEARNED: ClassVar[bool] = False

    def __init__(self, model: GeneratedPINN, comm: Communicator = LOCAL, **hyper: Any):
        self.model = model
        self.comm = comm
        learned = list(getattr(model, "learned", {}))
        if learned and not self.TRAINS_LEARNED:
            from . import OPTIMIZERS   # the registry, to name the optimizers that can

            able = sorted(n for n, c in OPTIMIZERS.items() if c.TRAINS_LEARNED)
            raise PdecError(f"{self.name} does not train learned parameters ({', '.join(learned)}): it works "
                            f"on the network's layers only; use {', '.join(able)}")
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.hyper = self.resolve(hyper)

    @classmethod
    def defaults_for(cls, model: GeneratedPINN) -> dict[str, Any]:
        """Defaults that depend on the model's loss, in place of ``HYPERPARAMETERS``' for the keys it
        returns (none here); a value a file, an override or ``--set`` gives wins over them
        (:func:`pdec.train` applies them)."""
        return {}

    @classmethod
    def resolve(cls, hyper: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``hyper``; unknown keys and out-of-range values are errors."""
        unknown = set(hyper) - set(cls.HYPERPARAMETERS)
        if unknown:
            from difflib import get_close_matches

            key = sorted(unknown)[0]
            close = get_close_matches(key, cls.HYPERPARAMETERS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PdecError(f"{cls.name}: unknown hyperparameter {key!r}{hint} "
                            f"(valid: {', '.join(sorted(cls.HYPERPARAMETERS))})")
        out = {}
        for k, h in cls.HYPERPARAMETERS.items():
            out[k] = h.check(k, hyper.get(k, h.default), cls.name)
        return out

    @abstractmethod
    def step(self, batch: Batch) -> StepInfo:
        """One optimisation step on ``batch`` (term name -> points (N_τ, d))."""

    # -------------------------------------------------------------- helpers for subclasses
    def loss_at(self, batch: Batch) -> float:
        """L(θ) at the current parameters, forward only (no graph), over every rank's shard."""
        return self.losses_at(batch)[0]

    @torch.no_grad()
    def losses_at(self, batch: Batch) -> tuple[float, dict[str, float]]:
        """L(θ) and each term's loss at the current parameters, forward only, over every rank's
        shard (one collective)."""
        total, losses = pinn_loss(self.model, batch)
        values = torch.stack([total, *losses.values()]).clone()
        self.comm.all_reduce_([values])
        return float(values[0]), dict(zip(losses, values[1:].tolist()))

    def state_dict(self) -> dict:
        """Everything needed to resume (subclasses extend)."""
        return {"hyper": dict(self.hyper)}

    def load_state_dict(self, state: dict) -> None:
        pass
