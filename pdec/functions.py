"""The SymPy functions pdec can print to PyTorch: one table, used by spec validation and codegen.

A spec may use any of these (applied to expressions of the variables, parameters and unknowns);
anything else is rejected at load time with a message naming the term.
"""

from __future__ import annotations

import sympy as sp

#: SymPy function class -> name of the element-wise torch function that evaluates it (names
#: without "torch." come from :mod:`pdec.runtime`, which generated modules import them from).
TORCH_FUNCTIONS: dict[type, str] = {
    sp.exp: "torch.exp",
    sp.log: "torch.log",
    sp.sin: "torch.sin",
    sp.cos: "torch.cos",
    sp.tan: "torch.tan",
    sp.sinh: "torch.sinh",
    sp.cosh: "torch.cosh",
    sp.tanh: "tanh",  # pdec.runtime.tanh: torch.tanh, or a faster form without autograd on a CPU
    sp.asin: "torch.asin",
    sp.acos: "torch.acos",
    sp.atan: "torch.atan",
    sp.Abs: "torch.abs",
    sp.erf: "torch.erf",
}


class sigmoid(sp.Function):
    """Logistic function 1/(1+e^{-z}); its derivative stays in terms of itself (stable in float)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return 1 / (1 + sp.exp(-z))


class softplus(sp.Function):
    """log(1 + e^z), with derivative :class:`sigmoid`."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return sp.log(1 + sp.exp(z))


TORCH_FUNCTIONS[sigmoid] = "torch.sigmoid"
TORCH_FUNCTIONS[softplus] = "torch.nn.functional.softplus"


def is_supported_function(f: sp.Basic) -> bool:
    """Whether an applied function node ``f`` (e.g. ``sin(x)``) can be printed to torch."""
    return type(f) in TORCH_FUNCTIONS or any(isinstance(f, cls) for cls in TORCH_FUNCTIONS)
