"""Short text for the lists that descriptions, comments and docstrings show (100 variables of a
100d problem would fill a line of 700 characters)."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from typing import Sequence

import sympy as sp
from sympy.printing.str import StrPrinter

_NUMBER = re.compile(r"\d+")


def _follows(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with every number one larger ("[2] ∂_x2 h" -> "[3] ∂_x3 h")."""
    na, nb = _NUMBER.findall(a), _NUMBER.findall(b)
    return (bool(na) and _NUMBER.sub("#", a) == _NUMBER.sub("#", b)
            and all(int(q) == int(p) + 1 for p, q in zip(na, nb)))


def name_list(items: Sequence[str], limit: int = 10, head: int = 3, tail: int = 1) -> str:
    """``items`` joined by ", ", each numbered run longer than ``limit`` (x1, x2, …: items that
    differ only by numbers one larger each) shortened to its first ``head``, "…" and its last ``tail``.
    Other items are never left out.

    >>> name_list(["t", *(f"x{i}" for i in range(1, 101))])
    't, x1, x2, x3, …, x100'
    """
    items = list(items)
    out: list[str] = []
    start = 0
    while start < len(items):
        end = start + 1
        while end < len(items) and _follows(items[end - 1], items[end]):
            end += 1
        run = items[start:end]
        out += run if len(run) <= limit else [*run[:head], "…", *run[len(run) - tail:]]
        start = end
    return ", ".join(out)


def terminates(q: int) -> bool:
    """Whether 1/q has a finite decimal expansion (q = 2^a 5^b): then p/q has an exact decimal."""
    for f in (2, 5):
        while q % f == 0:
            q //= f
    return q == 1


class _MathPrinter(StrPrinter):
    """SymPy's ``sstr``, but a fraction with an exact decimal that is shorter prints as that decimal
    (a parameter given as 0.123456789012345: not 24691357802469/200000000000000; 1/100: 0.01;
    1/4 and 1/3 stay fractions)."""

    def _print_Rational(self, expr):
        fraction = super()._print_Rational(expr)
        if expr.q == 1 or not terminates(expr.q):
            return fraction
        with localcontext() as ctx:
            ctx.prec = len(str(expr.p)) + len(str(expr.q)) + 2
            decimal = format(Decimal(expr.p) / Decimal(expr.q), "f")
        return decimal if len(decimal) < len(fraction) else fraction


def math_text(expr) -> str:
    """``expr`` as text for comments, docstrings and ``pdec inspect`` (see :class:`_MathPrinter`)."""
    return _MathPrinter().doprint(sp.sympify(expr))


def shorter_form(expr: sp.Expr) -> sp.Expr:
    """``expr`` factored where that takes fewer operations (x·y·(x − 1)·(y − 1), not its expanded
    sum), else as it is; expressions of more than 60 operations are left as they are."""
    expr = sp.sympify(expr)
    if not expr.free_symbols or sp.count_ops(expr) > 60:
        return expr
    factored = sp.factor(expr)
    return factored if sp.count_ops(factored) < sp.count_ops(expr) else expr
