"""The domain's ``where`` condition printed as torch code: the generated module's ``inside`` and
the samplers' test of a point (:mod:`pdec.domain`) come from :func:`predicate_code`, so both apply
the same test to the same float64 coordinates."""

from __future__ import annotations

import sympy as sp

from .printer import print_torch


def predicate_code(where: sp.Basic, variables: tuple[sp.Symbol, ...],
                   names: dict[sp.Symbol, str]) -> tuple[list[tuple[str, str]], str]:
    """``where`` as a torch expression of the points X (..., d).

    Args:
        where: a SymPy boolean (inequalities joined by And, Or, Not) in ``variables``.
        variables: the domain's variables in column order.
        names: the local name of each variable.

    Returns:
        ``([(name, "X[..., i]"), …], code)``: the variables the condition reads and the code of a
        (...,) bool tensor (``&``, ``|``, ``~`` of comparisons), in parentheses, so that it may be
        broken over lines.
    """
    # negations pushed onto the inequalities (~(a > 0) is a <= 0), so that a comparison with NaN
    # (the square root of a negative number) is False, and outside, however the condition is written
    where = sp.logic.boolalg.to_nnf(where, simplify=False)
    local = where.xreplace({v: sp.Symbol(names[v], real=True) for v in variables})
    assigns = [(names[v], f"X[..., {i}]") for i, v in enumerate(variables) if v in where.free_symbols]
    code = print_torch(local)
    return assigns, code if _enclosed(code) else f"({code})"


def without_outer_parentheses(code: str) -> str:
    """``(a < b)`` -> ``a < b`` when the first parenthesis closes at the end."""
    return code[1:-1] if _enclosed(code) else code


def _enclosed(code: str) -> bool:
    """Whether the code is one parenthesised expression, ``( … )``."""
    if not (code.startswith("(") and code.endswith(")")):
        return False
    depth = 0
    for i, ch in enumerate(code):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i < len(code) - 1:
            return False
    return True
