"""Optimizers behind one interface (:class:`~pdec.optim.base.PINNOptimizer`); one registry."""

from __future__ import annotations

from ..errors import PdecError
from .base import Hyper, PINNOptimizer, StepInfo
from .baselines import LBFGS, SGD, Adam
from .engd import ENGD, HessianFree, LayerwiseENGD
from .kfac import KFAC, KFACStar

OPTIMIZERS: dict[str, type[PINNOptimizer]] = {
    cls.name: cls for cls in (KFAC, KFACStar, ENGD, LayerwiseENGD, HessianFree, Adam, SGD, LBFGS)}


def register(cls: type[PINNOptimizer]) -> type[PINNOptimizer]:
    """Add an optimizer class to the registry (by its ``name``)."""
    OPTIMIZERS[cls.name] = cls
    return cls


def get_optimizer(name: str) -> type[PINNOptimizer]:
    """The optimizer class registered as ``name``; unknown names suggest the closest one."""
    if name not in OPTIMIZERS:
        from difflib import get_close_matches

        close = get_close_matches(name, OPTIMIZERS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise PdecError(f"unknown optimizer {name!r}{hint} (available: {', '.join(sorted(OPTIMIZERS))})")
    return OPTIMIZERS[name]


__all__ = ["OPTIMIZERS", "PINNOptimizer", "StepInfo", "Hyper", "get_optimizer", "register"]
