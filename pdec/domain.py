"""The domain of a box cut by ``Box(..., where=…)``: the test of a point and rejection sampling.

Used by the training samplers (:mod:`pdec.train.sampling`) and by ``pdec check``; the generated
module's ``inside`` prints the same code (:func:`pdec.codegen.predicate.predicate_code`).
"""

from __future__ import annotations

import functools
from typing import Callable

import sympy as sp
import torch

from .codegen.predicate import predicate_code, without_outer_parentheses
from .errors import PdecError
from .spec import Problem

Predicate = Callable[[torch.Tensor], torch.Tensor]

#: Rejection sampling gives up when fewer than this fraction of at least 10⁶ candidates lie in
#: the domain (sampling costs grow as 1/fraction).
MIN_ACCEPTED = 1e-4


def domain_predicate(problem: Problem) -> Predicate | None:
    """The function ``inside(X) -> (...,) bool`` of the problem's ``where`` (None: the whole box).

    X: (..., d) points in the domain's column order; the result holds, per point, whether the
    condition holds there (the box's bounds are not tested; a comparison with NaN, e.g. the
    square root of a negative number, is False, and ``~`` is applied to the inequalities
    themselves, so such a point is outside however the condition is written).
    """
    where = problem.where
    return None if where is None else _compiled_predicate(where, problem.variables)


@functools.lru_cache(maxsize=64)
def _compiled_predicate(where: sp.Basic, variables: tuple[sp.Symbol, ...]) -> Predicate:
    """``where`` compiled once per condition (samplers ask for it at every batch)."""
    names = {v: f"v{i}" for i, v in enumerate(variables)}
    assigns, code = predicate_code(where, variables, names)
    body = "".join(f"    {name} = {value}\n" for name, value in assigns)
    source = f"def inside(X):\n{body}    return {without_outer_parentheses(code)}\n"
    namespace = {"torch": torch, "tanh": torch.tanh}
    exec(compile(source, f"<where {where}>", "exec"), namespace)
    return namespace["inside"]


def where_text(problem: Problem) -> str:
    """The condition as the spec writes it, with its substituted form when parameters change it."""
    raw, where = sp.sympify(problem.domain.where), problem.where
    return str(raw) if raw == where else f"{raw} ({where} with the spec's parameters)"


def keep_inside(problem: Problem, draw: Callable[[int], torch.Tensor], n: int, what: str,
                on_face: str | None = None, test: Predicate | None = None) -> torch.Tensor:
    """n of the points ``draw(m)`` yields (each (m, d), on the CPU) that satisfy the domain's
    ``where``, in the order drawn: rejection sampling, so uniform candidates give uniform points
    in the domain (or on the part of a face inside it). Without ``where``: ``draw(n)``.

    Args:
        what: names the points in errors, e.g. "interior points".
        on_face: the face the candidates lie on, e.g. "face x = min" (for the error's advice).
        test: the test of a row of ``draw``'s output (default: the domain's predicate, for rows
            that are points).

    Raises PdecError when fewer than :data:`MIN_ACCEPTED` of at least 10⁶ candidates pass (none:
    after 10⁵).
    """
    if problem.where is None:
        return draw(n)
    inside = test or domain_predicate(problem)
    kept, accepted, drawn = [], 0, 0
    while accepted < n:
        rate = accepted / drawn if drawn else 1.0
        if drawn >= 1_000_000 and rate < MIN_ACCEPTED or drawn >= 100_000 and not accepted:
            raise PdecError(outside_message(problem, what, accepted, drawn, on_face))
        m = min(int(1.2 * (n - accepted) / max(rate, MIN_ACCEPTED)) + 16, 1_000_000)
        X = draw(m)
        X = X[inside(X)]
        kept.append(X)
        accepted += X.shape[0]
        drawn += m
    return torch.cat(kept)[:n]


def outside_message(problem: Problem, what: str, accepted: int, drawn: int, on_face: str | None) -> str:
    """Why sampling gave up: how few candidates passed, and what to change."""
    head = (f"{problem.source or f'problem {problem.name!r}'}: {what}: {accepted} of {drawn} random points "
            f"lie in the domain, the part of the box where {where_text(problem)}")
    if on_face and not accepted:
        return (f"{head}. If the domain's edge runs along the {on_face}, write that inequality with >= or <= "
                f"(a strict one excludes the face itself); otherwise give these points with Sampler(fn)")
    if not accepted:
        return (f"{head}: the domain is empty, or below {MIN_ACCEPTED:g} of the box; is the condition right, "
                f"and the box drawn closely around it?")
    return (f"{head}: the domain is below {MIN_ACCEPTED:g} of the box; draw a box closer around it "
            f"(sampling costs grow as the box's volume over the domain's)")
