"""SymPy -> PyTorch expression printer (a subclass, no global patching).

Constants are folded to the correctly rounded float64 value (``2*pi**2`` prints as
``19.739208802178716``), except a rational factor of a term without a short decimal
(``u_xxt/3``, not ``0.3333333333333333*u_xxt``; ``0.25*u_xx`` stays); element-wise functions map to torch through
:data:`pdec.functions.TORCH_FUNCTIONS`.
"""

from __future__ import annotations

from typing import Iterable

import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from ..functions import TORCH_FUNCTIONS
from ..text import terminates


def float_literal(value: sp.Expr) -> str:
    """The shortest repr of the float64 nearest to a real constant (integers stay integers)."""
    value = sp.sympify(value)
    if value.is_Integer:
        return str(int(value))
    f = float(sp.N(value, 30))
    return repr(f)


class TorchPrinter(PythonCodePrinter):
    """Prints element-wise expressions of torch tensors (one sample per row)."""

    def __init__(self, settings=None):
        super().__init__(dict(settings or {}, fully_qualified_modules=True))
        for cls, name in TORCH_FUNCTIONS.items():
            self.known_functions[cls.__name__] = name

    def _print(self, expr, **kwargs):
        if isinstance(expr, sp.Expr) and expr.is_number and not expr.is_Integer and not expr.free_symbols:
            return float_literal(expr)
        return super()._print(expr, **kwargs)

    def _print_Mul(self, expr):
        if expr.free_symbols:
            coeff, rest = expr.as_independent(*expr.free_symbols, as_Add=False)
            if coeff != 1 and coeff.is_number and not coeff.is_Integer:
                sign = "-" if coeff.is_extended_negative else ""
                body = self.parenthesize(rest, PRECEDENCE["Mul"], strict=True)
                if coeff.is_Rational and not terminates(coeff.q):   # u_xxt/3, not 0.3333333333333333*u_xxt
                    p, q = abs(coeff.p), coeff.q
                    return f"{sign}{'' if p == 1 else f'{p}*'}{body}/{q}"
                return f"{sign}{float_literal(abs(coeff))}*{body}"
        return super()._print_Mul(expr)

    def _print_Pow(self, expr, rational=False):
        return self._hprint_Pow(expr, rational=rational, sqrt="torch.sqrt")

    def _print_Function(self, expr):
        name = TORCH_FUNCTIONS.get(type(expr))
        if name is None:
            for cls, n in TORCH_FUNCTIONS.items():
                if isinstance(expr, cls):
                    name = n
                    break
        if name is None:
            raise ValueError(f"no torch function for {type(expr).__name__}")
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    # the domain's `where`: element-wise logic on bool tensors (Python's and/or/not would ask for
    # one truth value)
    def _print_And(self, expr):
        return "(" + " & ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " | ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr):
        return f"~{self._print(expr.args[0])}"

    _print_Abs = _print_Function
    _print_exp = _print_Function
    _print_log = _print_Function
    _print_sin = _print_Function
    _print_cos = _print_Function
    _print_tan = _print_Function
    _print_sinh = _print_Function
    _print_cosh = _print_Function
    _print_tanh = _print_Function
    _print_asin = _print_Function
    _print_acos = _print_Function
    _print_atan = _print_Function
    _print_erf = _print_Function


def print_torch(expr: sp.Expr) -> str:
    """Print one expression as torch code."""
    return TorchPrinter().doprint(expr)


def print_with_cse(exprs: list[sp.Expr], prefix: str = "c",
                   exclude: Iterable[str] = ()) -> tuple[list[tuple[str, str]], list[str]]:
    """Common-subexpression elimination, then printing.

    Args:
        exprs: the expressions.
        prefix: of the temporaries' names (``c0``, ``c1``, …).
        exclude: names the temporaries must not take (the function's other locals, e.g. a
            variable named ``c0`` or one that another block of the function reads).

    Returns:
        (assignments, results): ``[(name, code), ...]`` for the shared subexpressions, in order,
        and the code of each expression.
    """
    symbols = sp.numbered_symbols(prefix, exclude=[sp.Symbol(n) for n in exclude])
    replacements, reduced = sp.cse(exprs, symbols=symbols, optimizations="basic", order="canonical")
    p = TorchPrinter()
    return [(str(s), p.doprint(e)) for s, e in replacements], [p.doprint(e) for e in reduced]
