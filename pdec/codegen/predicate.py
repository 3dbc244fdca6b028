"""The domain's ``where`` condition as torch code: the generated module's ``inside`` and the
samplers' test of a point.

Both come from :func:`predicate_code`, so the points a run trains on and the module that documents
the domain apply the same test to the same float64 coordinates.
"""

from __future__ import annotations

from typing import Callable

import sympy as sp
import torch

from ..spec import Problem
from .printer import print_torch

Predicate = Callable[[torch.Tensor], torch.Tensor]


def predicate_code(where: sp.Basic, variables: tuple[sp.Symbol, ...],
                   names: dict[sp.Symbol, str]) -> tuple[list[tuple[str, str]], str]:
    """``where`` as a torch expression of the points X (..., d).

    Args:
        where: a SymPy boolean (inequalities joined by And, Or, Not) in ``variables``.
        variables: the domain's variables in column order.
        names: the local name of each variable.

    Returns:
        ``([(name, "X[..., i]"), …], code)``: the variables the condition reads and the code of a
        (...,) bool tensor (``&``, ``|``, ``~`` of comparisons).
    """
    local = where.xreplace({v: sp.Symbol(names[v], real=True) for v in variables})
    assigns = [(names[v], f"X[..., {i}]") for i, v in enumerate(variables) if v in where.free_symbols]
    return assigns, _without_outer_parentheses(print_torch(local))


def _without_outer_parentheses(code: str) -> str:
    """``(a < b)`` -> ``a < b`` when the first parenthesis closes at the end."""
    if not (code.startswith("(") and code.endswith(")")):
        return code
    depth = 0
    for i, ch in enumerate(code):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i < len(code) - 1:
            return code
    return code[1:-1]


def domain_predicate(problem: Problem) -> Predicate | None:
    """The function ``inside(X) -> (...,) bool`` of the problem's ``where`` (None: the whole box).

    X: (..., d) points in the domain's column order; the result holds, per point, whether the
    condition holds there (the box's bounds are not tested).
    """
    where = problem.where
    if where is None or where is sp.true:
        return None
    names = {v: f"v{i}" for i, v in enumerate(problem.variables)}
    assigns, code = predicate_code(where, problem.variables, names)
    body = "".join(f"    {name} = {value}\n" for name, value in assigns)
    source = f"def inside(X):\n{body}    return {code}\n"
    namespace = {"torch": torch, "tanh": torch.tanh}
    exec(compile(source, f"<where of {problem.name}>", "exec"), namespace)
    return namespace["inside"]
