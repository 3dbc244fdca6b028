"""Activation functions σ and their derivatives σ^(k), from SymPy (one registry).

Built-ins: tanh (default), sin, sigmoid, softplus. A user may pass any SymPy expression of one
symbol, or a ``sp.Lambda``; its derivatives come from SymPy and it must be printable to torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .errors import PdecError
from .functions import is_supported_function, sigmoid, softplus

Z = sp.Symbol("z")

BUILTIN: dict[str, sp.Expr] = {
    "tanh": sp.tanh(Z),
    "sin": sp.sin(Z),
    "sigmoid": sigmoid(Z),
    "softplus": softplus(Z),
}


@dataclass(frozen=True)
class Activation:
    """σ as a SymPy expression of :data:`Z`, with a name used in headers and docstrings."""

    name: str
    expr: sp.Expr

    def derivatives(self, order: int) -> list[sp.Expr]:
        """[σ, σ', …, σ^(order)] as SymPy expressions of :data:`Z`."""
        out = [self.expr]
        for _ in range(order):
            out.append(sp.diff(out[-1], Z))
        return out


def _parse(text: str) -> sp.Expr:
    """A command-line or config activation that is not a built-in name: a SymPy expression of
    one symbol, e.g. ``"z*tanh(z)"``. A bare name (``"relu"``) is an unknown activation, not the
    identity."""
    unknown = PdecError(f"unknown activation {text!r}; built-ins: {', '.join(BUILTIN)}, or a SymPy "
                        "expression of one symbol such as 'z*tanh(z)'")
    try:
        expr = sp.parse_expr(text, local_dict={"sigmoid": sigmoid, "softplus": softplus, "z": Z})
    except Exception as exc:   # parse_expr raises SyntaxError, TokenError, TypeError, ...
        raise unknown from exc
    if not isinstance(expr, sp.Expr) or isinstance(expr, sp.Symbol):
        raise unknown
    return expr


def resolve_activation(activation: "str | sp.Expr | sp.Lambda") -> Activation:
    """Name or SymPy function of one variable -> :class:`Activation`.

    Raises:
        PdecError: unknown name, not a function of exactly one variable, or unprintable.
    """
    if isinstance(activation, str):
        if activation in BUILTIN:
            return Activation(activation, BUILTIN[activation])
        if activation.startswith("custom(") and activation.endswith(")"):   # an Activation's own name
            activation = activation[len("custom("):-1]
        activation = _parse(activation)
    if isinstance(activation, sp.Lambda):
        if len(activation.variables) != 1:
            raise PdecError("an activation Lambda must take exactly one variable")
        expr = activation.expr.xreplace({activation.variables[0]: Z})
    elif isinstance(activation, sp.Expr):
        free = activation.free_symbols
        if len(free) != 1:
            raise PdecError(f"an activation expression needs exactly one free symbol, got {activation}")
        expr = activation.xreplace({next(iter(free)): Z})
    else:
        raise PdecError(f"activation must be a name or a SymPy expression, got {type(activation).__name__}")
    for f in expr.atoms(sp.Function):
        if not is_supported_function(f):
            raise PdecError(f"activation uses {type(f).__name__}, which has no torch equivalent")
    return Activation(f"custom({sp.sstr(expr)})", expr)
