"""Optional ``torch.compile`` of the loss and of the line search's trial pass (setting ``torch_compile``).

A generated module's forward pass is mostly chains of element-wise operations on the stacks (σ and
its derivatives, Faà di Bruno products, the residual's arithmetic); in eager mode each reads and
writes a whole (N, S, h) tensor. TorchInductor fuses them into a few loops. With the setting on,
two functions run compiled, each as one graph:

* :func:`pdec.loss.pinn_loss` (forward passes and residuals of every term, and its backward):
  every step of Adam, SGD and L-BFGS, and KFAC*'s trust check;
* the grid line search's 31 trial losses (:mod:`pdec.optim.line_search`): the steps of KFAC,
  ENGD and Hessian-free.

The curvature pass (forward, output gradients, Kronecker factors) stays eager: its factor
products are BLAS matrix products already, and compiling its forward and backward saved about 15 %
of that part on 4+1d heat (session measurement), not worth the extra code path.

Compiled code computes the same quantities in another order of floating-point operations: results
agree with eager mode to round-off (tests/test_torch_compile.py), not bit for bit. A run with
fixed point counts compiles each function once per grad mode at its first steps (seconds to tens of
seconds on a CPU; TorchInductor caches the result on disk for later runs). :func:`pdec.train`
clears torch.compile's in-process cache when a run starts with the setting on, so that every run
(each optimizer of ``pdec compare``) compiles its own graphs within its own clock and stays under
TorchDynamo's limit of 8 versions per function. ``benchmarks/torch_compile.py`` measures
both the compile's cost and the speed-up.
"""

from __future__ import annotations

from typing import Callable

import torch

from .errors import PdecError
from .runtime import GeneratedPINN

_COMPILED: dict[Callable, Callable] = {}   # function -> its torch.compile wrapper, made once


def use_torch_compile(model: GeneratedPINN, enabled: bool = True) -> GeneratedPINN:
    """Switch compiled execution of the model's loss and line-search trial pass on or off (in place).

    Sets ``model.torch_compiled``: when True, :func:`pdec.loss.pinn_loss` (without precomputed
    stacks) and the grid line search's trial pass go through :func:`compiled`. Compilation happens
    lazily, at the first call with a new shape or grad mode. Returns the model.
    """
    model.torch_compiled = bool(enabled)
    return model


def compiled(fn: Callable) -> Callable:
    """``torch.compile(fn)``, made once per process and function.

    Shapes start static; a second shape of the same function (other point counts, the line
    search's last, smaller chunk of trials) makes TorchInductor compile a version with dynamic
    sizes (torch.compile's default ``dynamic=None``), so a run whose point counts change does not
    compile once per count.
    """
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn)
    return _COMPILED[fn]


def is_compile_error(exc: BaseException) -> bool:
    """Whether an exception came from torch.compile (TorchDynamo or TorchInductor) rather than
    from the computation itself."""
    import torch._dynamo.exc   # loaded by torch.compile; imported here for a process that never compiled

    return isinstance(exc, torch._dynamo.exc.TorchDynamoException)


def check_torch_compile(device: torch.device | str) -> None:
    """Compile and run a two-operation function on ``device``; raise :class:`PdecError` if the
    toolchain fails (no C++ compiler for TorchInductor on a CPU, no Triton on a GPU), so that a
    run asked to compile fails before it starts rather than at its first step."""
    def probe(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) * 2 + 1

    x = torch.linspace(-1.0, 1.0, 8, dtype=torch.float64, device=device)
    try:
        y = torch.compile(probe, dynamic=False)(x)
    except Exception as exc:  # the backends raise many types (InductorError, BackendCompilerFailed, …)
        raise PdecError(f"torch_compile = true, but torch.compile failed on {torch.device(device)}: "
                        f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}\n"
                        f"TorchInductor needs a C++ compiler on a CPU (g++ or clang) and Triton on a GPU; "
                        f"or train without it (torch_compile = false, the default)") from exc
    if not torch.allclose(y, probe(x), rtol=1e-12, atol=1e-12):
        raise PdecError(f"torch.compile on {torch.device(device)} computed a wrong result in its probe; "
                        f"train without it (torch_compile = false)")
