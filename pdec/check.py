"""Checking a problem's exact solution against its PDE: ``check_problem(problem) -> CheckReport``.

Every exact solution pdec ships must satisfy its interior residual(s) and every condition (see
MATH.md §7: the paper's printed Fokker–Planck solution does not). For each term the exact solution
is substituted (each unknown and each ``Derivative`` of it is replaced by the corresponding
derivative of its exact expression) and the result is

1. simplified symbolically along a chain of increasingly expensive rewrites (``expand``,
   ``cancel(together(.))``, ``trigsimp``, ``simplify``; the expensive ones are skipped on large
   expressions so the check cannot hang). A result that is identically 0 is a *symbolic* pass.
   Conditions hold only on their region, so for regions made of box faces (``Boundary``,
   ``SpatialBoundary``, ``Face``, ``Initial``) the face's variable is fixed to its exact bound
   first and every face is checked. A ``Periodic(x)`` condition's residual q is checked as
   q(x = lo) − q(x = hi). A condition on ``Data`` holds measurements, not an equation: it is
   skipped, and its message says how far the exact solution lies from the observed values;
2. otherwise evaluated *numerically* with ``digits`` significant digits (mpmath via ``evalf``) at
   ``n_points`` random points of the term's region, and passes when
   ``max |r| <= 10^(-digits/2) * max(1, size of the terms)``, where the size of the terms is the
   largest ``|a_k|`` of the summands ``r = Σ_k a_k`` at that point (so that a cancellation of large
   terms is judged relative to their size).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import sympy as sp
import torch
from sympy.core.function import AppliedUndef

from .domain import domain_predicate, keep_inside
from .errors import PdecError
from .functions import sigmoid, softplus
from .spec import Boundary, Combined, Data, Face, Initial, Periodic, Problem, Region, Sampler, SpatialBoundary
from .user_points import sampler_points

#: Largest ``count_ops`` on which ``trigsimp`` / ``simplify`` are attempted.
MAX_SIMPLIFY_OPS = 400


@dataclass
class TermCheck:
    """Outcome of checking one term (the interior residual or a condition).

    Attributes:
        term: ``"interior"`` (``"interior[i]"`` for systems) or the condition's name
            (``"name[i]"`` for a condition of several components).
        passed: whether the exact solution satisfies the term.
        method: ``"symbolic"`` (the residual simplified to 0), ``"numeric"``, or ``"skipped"``
            (the term involves an unknown without an exact solution, or it is a condition on
            observed values; ``passed`` is then True).
        max_abs: the largest |residual| over the sampled points (numeric checks), else None.
        message: a short human-readable explanation.
    """

    term: str
    passed: bool
    method: str
    max_abs: float | None = None
    message: str = ""


@dataclass
class CheckReport:
    """Per-term results of :func:`check_problem`.

    Attributes:
        problem: name of the checked problem.
        results: one :class:`TermCheck` per term, interior first, then conditions in order.
    """

    problem: str
    results: list[TermCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every term passed."""
        return all(r.passed for r in self.results)

    def __str__(self) -> str:
        lines = []
        for r in self.results:
            if r.method == "skipped":
                lines.append(f"SKIP {r.term}: {r.message}")
                continue
            status = "PASS" if r.passed else "FAIL"
            extra = f" max|r| = {r.max_abs:.3e}" if r.max_abs is not None else ""
            msg = f" ({r.message})" if r.message else ""
            lines.append(f"{status} {r.term}: {r.method}{extra}{msg}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- substitution


def substitute_exact(expr: sp.Expr, exact: dict[sp.Expr, sp.Expr]) -> sp.Expr:
    """Replace every unknown and every derivative of one by the exact solution's.

    Args:
        expr: a residual in the unknowns, their derivatives and the variables.
        exact: unknown (applied function) -> exact expression.

    Returns:
        The residual as an expression of the variables alone (derivatives evaluated).
    """
    by_func = {u.func: (u, e) for u, e in exact.items()}
    rules: dict[sp.Basic, sp.Expr] = {}
    for d in expr.atoms(sp.Derivative):
        if isinstance(d.expr, AppliedUndef) and d.expr.func in by_func:
            rules[d] = sp.diff(by_func[d.expr.func][1], *d.variable_count)
    for f in expr.atoms(AppliedUndef):
        if f.func in by_func:
            rules[f] = by_func[f.func][1]
    # xreplace matches a Derivative node before descending into its unknown
    return expr.xreplace(rules).doit()


def _is_zero(expr: sp.Expr) -> bool | None:
    """True if ``expr`` rewrites to 0 symbolically, None if inconclusive."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    if not expr.free_symbols and expr.is_zero is False:
        return None  # a nonzero constant: no rewrite will help; let numerics report it
    steps = (sp.expand, lambda e: sp.cancel(sp.together(e)), sp.trigsimp, sp.simplify)
    current = expr
    for i, step in enumerate(steps):
        if i >= 2 and sp.count_ops(current) > MAX_SIMPLIFY_OPS:
            break
        try:
            current = step(current)
        except Exception:  # a rewrite failing is not a verdict
            continue
        if current == 0:
            return True
    return None


# --------------------------------------------------------------------------- regions


def _faces(problem: Problem, region: Region) -> list[tuple[sp.Symbol, sp.Expr]] | None:
    """The faces ``(var, exact bound)`` making up a face-type region, or None (Sampler)."""
    dom = problem.domain
    bound = dom.face_bound
    if isinstance(region, Boundary):
        return [(v, bound(v, s)) for v in dom.variables for s in ("min", "max")]
    if isinstance(region, SpatialBoundary):
        return [(v, bound(v, s)) for v in dom.spatial for s in ("min", "max")]
    if isinstance(region, Face):
        return [(region.var, bound(region.var, region.side))]
    if isinstance(region, Periodic):   # the points' face (the residual is already the pair's difference)
        return [(region.var, bound(region.var, "min"))]
    if isinstance(region, Initial):
        return [(dom.time, bound(dom.time, "min"))]
    if isinstance(region, Combined):
        parts = [_faces(problem, part) for part in region.parts]
        return None if any(p is None for p in parts) else [f for p in parts for f in p]
    return None


def _points(problem: Problem, region: Region | None, n: int, seed: int,
            digits: int) -> list[dict[sp.Symbol, sp.Expr]]:
    """``n`` random points of a region (of each part of a combined one) as substitution dicts (face
    coordinates kept exact)."""
    variables = problem.domain.variables
    gen = torch.Generator().manual_seed(seed)
    if isinstance(region, Combined):   # n points on every part, so each part is checked
        return [pt for i, part in enumerate(region.parts) for pt in _points(problem, part, n, seed + i, digits)]
    if isinstance(region, Sampler):
        X = sampler_points(problem, region, n, torch.Generator().manual_seed(seed))
        return [{v: sp.Float(float(val), digits) for v, val in zip(variables, row.tolist())}
                for row in X]
    lo, hi = (torch.tensor(b, dtype=torch.float64) for b in problem.domain.corners)
    faces = _faces(problem, region) or [(None, None)]
    index = {v: i for i, v in enumerate(variables)}

    def draw(m: int) -> torch.Tensor:
        """m candidates (m, d + 1): the point (face coordinates as floats), then its face's index."""
        X = lo + (hi - lo) * torch.rand(m, len(variables), generator=gen, dtype=torch.float64)
        which = torch.randint(len(faces), (m,), generator=gen)
        for k, (var, value) in enumerate(faces):
            if var is not None:
                X[which == k, index[var]] = float(value)
        return torch.cat([X, which[:, None].double()], dim=1)

    what = "pdec check's points of the " + (region.describe() if region is not None else "interior")
    inside = domain_predicate(problem)
    keep = (lambda X: inside(X[:, :-1])) if inside is not None else None
    rows = keep_inside(problem, draw, n, what, region.describe() if region is not None else None, keep)
    points = []
    for row in rows.tolist():
        pt: dict[sp.Symbol, sp.Expr] = {v: sp.Float(val, digits) for v, val in zip(variables, row)}
        var, value = faces[int(row[-1])]
        if var is not None:
            pt[var] = value   # the face's coordinate, exact
        points.append(pt)
    return points


# --------------------------------------------------------------------------- numerics


def _evaluable(expr: sp.Expr) -> sp.Expr:
    """Rewrite pdec's own functions (which have no mpmath evaluation) in terms of exp/log."""
    return expr.replace(lambda e: isinstance(e, (sigmoid, softplus)),
                        lambda e: e.rewrite(sp.exp))


FLOAT64_TOLERANCE = sp.Float("1e-12")   # about 4 500 ulps: float64 constants, not a wrong solution


def _float_constants(expr: sp.Expr) -> list[sp.Float]:
    """The constants of ``expr`` that came from Python floats (53-bit, such as math.pi)."""
    return [f for f in expr.atoms(sp.Float) if f._prec <= 53 and not f.is_integer]


def _relative_tolerance(expr: sp.Expr, digits: int) -> sp.Float:
    """10^(-digits/2), or 1e-12 when float64 constants limit the residual's own precision."""
    rel = sp.Float(10) ** (-sp.Rational(digits, 2))
    return max(rel, FLOAT64_TOLERANCE) if _float_constants(expr) else rel


def _numeric(expr: sp.Expr, points: list[dict], digits: int, rel: sp.Float) -> tuple[bool, float, float, str]:
    """Evaluate at the points with the tolerance rel · max(1, |largest term|); returns (passed,
    max |r|, tolerance used, message)."""
    expr = _evaluable(expr)
    terms = sp.Add.make_args(expr)
    worst, worst_tol, ok, bad, worst_bad = 0.0, float(rel), True, "", 0.0
    for pt in points:
        value = expr.evalf(digits, subs=pt)
        if not value.is_number or value.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or value.free_symbols:
            return False, float("nan"), float(rel), f"residual does not evaluate to a number: {value}"
        if len(terms) > 1:
            scale = max(abs(complex(t.evalf(digits, subs=pt))) for t in terms)
        else:
            scale = 0.0
        tol = float(rel) * max(1.0, scale)
        r = abs(complex(value))
        if r > tol and r > worst_bad:   # name the point of the largest failing |r|
            worst_bad = r
            bad = (f"|r| = {r:.3e} at " + ", ".join(f"{v}={float(x):.6g}" for v, x in pt.items())
                   + f", above the tolerance there ({tol:.1e})")
            ok = False
        worst = max(worst, r)
        worst_tol = max(worst_tol, tol)
    return ok, worst, worst_tol, bad


# --------------------------------------------------------------------------- the check


def _check_term(problem: Problem, name: str, residual: sp.Expr, region: Region | None,
                exact: dict, n_points: int, seed: int, digits: int) -> TermCheck:
    given = {u.func for u in exact}
    without = sorted({str(f) for f in sp.sympify(residual).atoms(AppliedUndef) if f.func not in given})
    if without:
        return TermCheck(name, True, "skipped",
                         message=f"not checked, it involves {', '.join(without)}, which has no exact solution")
    try:
        r = substitute_exact(residual, exact)
    except Exception as exc:  # pragma: no cover - defensive
        return TermCheck(name, False, "symbolic", message=f"substitution failed: {exc}")
    if isinstance(region, Periodic):   # r = q(x = lo) − q(x = hi)
        lo, hi = (problem.domain.face_bound(region.var, side) for side in ("min", "max"))
        r = r.subs(region.var, lo) - r.subs(region.var, hi)
    if _is_zero(r):
        return TermCheck(name, True, "symbolic", message="residual simplifies to 0")
    faces = _faces(problem, region) if region is not None else None
    if faces:
        if all(_is_zero(r.subs(var, value)) for var, value in faces):
            where = region.describe() if region is not None else "region"
            on = f"on the {where}" if len(faces) == 1 else f"on each face ({where})"
            return TermCheck(name, True, "symbolic", message=f"residual simplifies to 0 {on}")
    points = _points(problem, region, n_points, seed, digits)
    rel = _relative_tolerance(r, digits)
    ok, worst, tol, why = _numeric(r, points, digits, rel)
    where = "interior" if region is None else region.describe()
    msg = f"{len(points)} points in the {where}, {digits} digits, tol {float(rel):.0e} x max(1, |largest term|)"
    msg = f"{why}; {msg} at each point" if not ok else f"{msg} (≤ {tol:.1e})"
    floats = _float_constants(r)
    if floats:
        msg += (f"; the tolerance allows for float constants such as {min(floats, key=lambda f: len(str(f)))}, "
                f"which hold float64 precision only (sp.pi, sp.E and sp.Rational are exact)")
    return TermCheck(name, ok, "numeric", max_abs=worst, message=msg)


def check_problem(problem: Problem, n_points: int = 5, seed: int = 0,
                  digits: int = 30) -> CheckReport:
    """Verify that a problem's exact solution satisfies its interior residual(s) and conditions.

    An ansatz (hard constraint) is checked on each face of the box where it fixes its unknown
    whatever the network's output: the value it fixes must be the exact solution's there.
    Learned parameters take their true values (``Learned(..., exact=...)``); a term with one
    whose true value is not given is skipped. Each term is first simplified symbolically (a
    residual that rewrites to 0 is a ``"symbolic"`` pass); if that is inconclusive it is
    evaluated with ``digits`` significant digits at
    ``n_points`` random points of its region and passes when
    ``max |r| <= 10^(-digits/2) * max(1, largest |summand|)`` (``"numeric"``).

    Args:
        problem: the problem; it must have an exact solution.
        n_points: random points per term (per part of a combined region) for the numeric fallback.
        seed: seed of the random points (and of a :class:`~pdec.spec.Sampler`'s generator).
        digits: working precision (significant digits) of the numeric evaluation.

    Returns:
        A :class:`CheckReport` with one :class:`TermCheck` per term (interior first).

    Raises:
        PdecError: the problem has no exact solution to check.
    """
    if isinstance(n_points, bool) or not isinstance(n_points, numbers.Integral) or n_points < 1:
        raise PdecError(f"the check needs at least one point per term, got n_points = {n_points!r} "
                        "(pdec check --points N, N ≥ 1)")
    exact = problem.exact_solution
    if not exact:
        where = problem.source or f"problem {problem.name!r}"
        raise PdecError(f"{where}: no exact solution to check (give Problem(..., exact={{u: ...}}))")
    if problem.where is not None:   # an empty domain, or a face it does not meet, is an error here too
        for region in [None, *(c.on for c in problem.condition_items.values() if not isinstance(c.on, Data))]:
            _points(problem, region, 1, seed, digits)
    report = CheckReport(problem.name)
    # learned parameters at their true values; a residual with one whose value is not given is skipped
    truth = problem.true_values
    unknown_values = set(problem.learned) - set(truth)

    def unchecked(label: str, r: sp.Expr) -> TermCheck | None:
        missing = sorted(map(str, sp.sympify(r).free_symbols & unknown_values))
        if not missing:
            return None
        return TermCheck(label, True, "skipped", message=f"it involves the learned parameter(s) {', '.join(missing)}, "
                                                         f"whose true value is not given (Learned(..., exact=...))")

    residuals = [sp.sympify(r).subs(truth) for r in problem.interior_residuals]
    system = isinstance(problem.interior, (list, tuple))
    for i, r in enumerate(residuals):
        name = f"interior[{i}]" if system else "interior"
        report.results.append(unchecked(name, r) or _check_term(problem, name, r, None, exact, n_points, seed, digits))
    for name, cond in problem.condition_items.items():
        for i, r in enumerate(cond.residuals):
            label = cond.component_label(name, i)
            r = sp.sympify(r).subs(truth)
            skipped = unchecked(label, r)
            if skipped is not None:
                report.results.append(skipped)
            elif isinstance(cond.on, Data):
                report.results.append(_check_data(problem, name, label, i, r, exact))
            else:
                report.results.append(_check_term(problem, label, r, cond.on, exact, n_points, seed, digits))
    for u in problem.ansatz_items:
        report.results.extend(_check_ansatz(problem, u, exact, n_points, seed, digits))
    return report


def _check_ansatz(problem: Problem, u: sp.Expr, exact: dict, n_points: int, seed: int,
                  digits: int) -> list[TermCheck]:
    """The faces of the box on which u's ansatz fixes u whatever the network's output
    (:meth:`~pdec.spec.Problem.ansatz_faces`), each checked against the exact solution: the value
    the ansatz holds u to must be u*'s. One skipped result when it fixes u on no face, or when u
    has no exact solution."""
    label = f"ansatz {u.func.__name__}"
    if u not in exact:
        return [TermCheck(label, True, "skipped", message=f"{u.func.__name__} has no exact solution")]
    results = []
    for (var, side), value in problem.ansatz_faces(u).items():
        name = f"{label} on {var} = {problem.domain.face_bound(var, side)}"
        check = _check_term(problem, name, value - u, Face(var, side), exact, n_points, seed, digits)
        fixed = f"fixes {u.func.__name__} there " + ("to u*" if check.passed else "to other values than u*'s")
        check.message = f"{fixed}: {check.message}"
        results.append(check)
    if not results:
        results.append(TermCheck(label, True, "skipped",
                                 message="the ansatz fixes the unknown on none of the box's faces (on a curved "
                                         "boundary, or not at all): nothing to compare with u*"))
    return results


def _check_data(problem: Problem, name: str, label: str, i: int, q: sp.Expr, exact: dict) -> TermCheck:
    """A data condition's component i: measurements, so nothing to prove; the message says how far
    the exact solution's q lies from the observed values (float64, at every point)."""
    given = {u.func for u in exact}
    without = sorted({str(f) for f in sp.sympify(q).atoms(AppliedUndef) if f.func not in given})
    if without:
        return TermCheck(label, True, "skipped", message=f"observed values, and it involves {', '.join(without)}, "
                                                         f"which has no exact solution")
    table = problem.data_table(name)
    d = len(problem.variables)
    try:
        f = sp.lambdify(problem.variables, _evaluable(substitute_exact(q, exact)), ["math", "mpmath"])
        misfit = [abs(float(f(*row[:d])) - row[d + i]) for row in table.tolist()]
    except Exception as exc:   # e.g. the exact solution undefined at an observed point
        return TermCheck(label, True, "skipped", message=f"observed values, not an equation; the exact solution "
                                                         f"could not be evaluated at them ({type(exc).__name__}: {exc})")
    rms = (sum(m * m for m in misfit) / len(misfit)) ** 0.5
    return TermCheck(label, True, "skipped",
                     message=f"observed values, not an equation; the exact solution differs from them by "
                             f"max {max(misfit):.2e}, RMS {rms:.2e} over {len(misfit)} points")
