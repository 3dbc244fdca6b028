"""The spec format: what a user writes in ``specs/<name>.py`` (the public contract).

A spec is a Python file that builds one :class:`Problem` from plain SymPy and binds it to the
module-level name ``problem``::

    t, x = sp.symbols("t x", real=True)
    u = sp.Function("u")(t, x)
    problem = Problem(
        name="heat1d",
        domain=Box({t: (0, 1), x: (0, 1)}, time=t),
        unknowns=[u],
        interior=u.diff(t) - kappa * u.diff(x, 2),
        conditions={"initial": Condition(u - sp.sin(sp.pi * x), on=Initial()),
                    "boundary": Condition(u, on=SpatialBoundary())},
        parameters={kappa: sp.Rational(1, 4)},
        exact={u: sp.exp(-sp.pi**2 * t / 4) * sp.sin(sp.pi * x)},
    )

Residuals are expressions that vanish at the solution. Points are rows ``x[n, :]`` ordered as
the domain's variables. :meth:`Problem.validate` checks everything a later stage relies on and
raises :class:`~pdec.errors.SpecError` naming the spec file and the offending term.
"""

from __future__ import annotations

import hashlib
import keyword
import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Sequence, Union

import sympy as sp
from sympy.core.function import AppliedUndef

from .errors import PdecWarning, SpecError
from .functions import is_supported_function

if TYPE_CHECKING:
    import torch

# --------------------------------------------------------------------------- domain and regions


@dataclass(frozen=True)
class Box:
    """Axis-aligned box ``Π_i [lo_i, hi_i]`` over named variables (their order = input order),
    optionally cut to the part where a condition holds.

    Args:
        bounds: mapping variable symbol -> (lo, hi); insertion order fixes the column order of x.
        time: optional variable among ``bounds`` that plays the role of time (for
            :class:`Initial` and :class:`SpatialBoundary`).
        where: optional SymPy inequality (or ``&``, ``|``, ``~`` of inequalities) in the variables
            and parameters: the domain is the part of the box where it holds, e.g. the unit disk
            ``where=x**2 + y**2 < 1`` in the box [-1, 1]². Interior and evaluation points are drawn
            uniformly in it (by rejection from the box); a :class:`Face` or :class:`Initial` region
            keeps its points where it holds; the rest of the boundary takes a :class:`Sampler`.
    """

    bounds: Mapping[sp.Symbol, tuple]
    time: sp.Symbol | None = None
    where: sp.Basic | None = None

    @property
    def variables(self) -> tuple[sp.Symbol, ...]:
        """The variables in input-column order."""
        return tuple(self.bounds)

    @property
    def spatial(self) -> tuple[sp.Symbol, ...]:
        """The variables other than time."""
        return tuple(v for v in self.bounds if v != self.time)

    def interval(self, var: sp.Symbol) -> tuple[float, float]:
        """``(lo, hi)`` of ``var`` as floats."""
        lo, hi = self.bounds[var]
        return float(lo), float(hi)

    def face_bound(self, var: sp.Symbol, side: str) -> sp.Expr:
        """The face ``var`` = its lower (``side`` "min") or upper ("max") bound, as SymPy
        (:func:`exact_bound`: 0.5 as 1/2)."""
        return exact_bound(self.bounds[var][0 if side == "min" else 1])

    def describe(self) -> str:
        """The box as text: ``x in [-1, 1], y in [0, 2]``, or ``x1, …, x100 in [0, 1]`` when more
        than three variables share one interval."""
        intervals = [self.interval(v) for v in self.variables]
        if len(intervals) > 3 and len(set(intervals)) == 1:
            (lo, hi), first, last = intervals[0], self.variables[0], self.variables[-1]
            return f"{first}, …, {last} in [{lo:g}, {hi:g}]"
        return ", ".join(f"{v} in [{lo:g}, {hi:g}]" for v, (lo, hi) in zip(self.variables, intervals))

    @property
    def corners(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(lo, hi)``: the lower and the upper bound of every variable as floats, in
        input-column order (one entry per column of the points X)."""
        intervals = [self.interval(v) for v in self.variables]
        return tuple(a for a, _ in intervals), tuple(b for _, b in intervals)


@dataclass(frozen=True)
class Region:
    """Where a condition's points live. Subclasses are the supported regions.

    ``a | b`` is :class:`Combined`: one condition term over both regions.
    """

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def __or__(self, other: "Region") -> "Combined":
        if not isinstance(other, Region):
            return NotImplemented
        return Combined(self, other)


@dataclass(frozen=True)
class Boundary(Region):
    """The whole boundary of the box (all faces, area-weighted)."""

    def describe(self) -> str:
        return "whole boundary"


@dataclass(frozen=True)
class SpatialBoundary(Region):
    """The faces of the spatial variables, for all times (the lateral boundary)."""

    def describe(self) -> str:
        return "spatial boundary"


@dataclass(frozen=True)
class Face(Region):
    """One face of the box: ``var = lo`` (side="min") or ``var = hi`` (side="max")."""

    var: sp.Symbol
    side: str = "min"

    def describe(self) -> str:
        return f"face {self.var} = {self.side}"

    def __repr__(self) -> str:
        return f"Face({self.var}, {self.side!r})"


@dataclass(frozen=True)
class Initial(Region):
    """The initial slice ``t = t0`` (t0 = lower bound of the time variable)."""

    def describe(self) -> str:
        return "initial slice"


@dataclass(frozen=True)
class Periodic(Region):
    """Periodicity in one variable: the face ``var = lo`` paired with the face ``var = hi``.

    ``Condition(q, on=Periodic(x))`` draws its points x_n on the face x = lo, and its residual is
    r_n = q(x_n) − q(x_n'), with x_n' the same point moved to x = hi. ``q`` is what must agree
    across the two faces: for a PDE of order p in x, the unknown and its x-derivatives up to p − 1,
    such as ``Condition([u, u.diff(x)], on=Periodic(x))`` for a second-order one. The domain must
    be the whole box (no ``where``), and ``var`` may not be the time variable.
    """

    var: sp.Symbol

    def describe(self) -> str:
        return f"paired faces {self.var} = min, max"

    def __repr__(self) -> str:
        return f"Periodic({self.var})"


@dataclass(frozen=True)
class Sampler(Region):
    """User-supplied points: ``fn(n, generator) -> Tensor (n, d)`` in the domain's column order."""

    fn: Callable
    description: str = "user sampler"

    def describe(self) -> str:
        return self.description


@dataclass(frozen=True)
class Learned:
    """A PDE parameter fitted together with the network (an inverse problem):
    ``parameters={kappa: Learned(0.1)}`` keeps κ a symbol of the residuals, and the generated
    module holds it as a trainable scalar, ``model.learned["kappa"]``, that starts at ``initial``.

    Args:
        initial: the value training starts from (a finite real number).
        exact: the true value, when it is known (a manufactured problem): the exact solution is
            written with the symbol and evaluated at this value, training logs the parameter's
            error, and ``pdec check`` substitutes it. None (default): unknown.
        description: free text shown by ``pdec inspect``.

    The data that determines κ is the user's to supply (usually a :class:`Data` condition):
    the boundary and initial values alone often admit a solution for every κ. A learned
    parameter may enter the residuals of the interior and of the conditions, not the domain's
    bounds or ``where``.
    """

    initial: float
    exact: float | None = None
    description: str = ""

    def describe(self) -> str:
        text = f"learned, starts at {float(self.initial):g}"
        if self.exact is not None:
            text += f" (exact {float(self.exact):g})"
        return f"{text}: {self.description}" if self.description else text


@dataclass(frozen=True, eq=False)
class Data(Region):
    """Observed values at given points: ``Condition(q, on=Data(points, values))`` has the residual
    r_n = q(x_n) − y_n, so the network's q is fitted to the measurements y (data assimilation: a
    PDE whose initial or boundary values are unknown, completed by measurements inside).

    Args:
        points: where the values were observed: an array (N, d) whose columns are the domain's
            variables in order (for one variable also (N,)), or a dict variable -> array (N,),
            keyed by the variables or their names (tensors, NumPy arrays or lists, read in float64).
        values: the observations, (N,) or (N, M): one column per component of the condition's
            residual (``Condition([u, v], on=Data(X, np.stack([u_obs, v_obs], 1)))``).
        description: free text shown by ``pdec inspect``, e.g. the file the data came from.
        holdout: observations kept out of training to validate on: a fraction (0 < h < 1 of N,
            rounded to the nearest count) or a count (an integer ≥ 1); 0 (default) trains on
            all. Which ones is a fixed draw (a permutation seeded with 0); training logs their
            RMS misfit as ``heldout_rms_<condition>``, the measure of a fit when no exact
            solution is known.

    Every batch holds all training observations (they are not re-sampled; data-parallel ranks
    take a block of rows each) and the condition's points do not count in ``n_condition``. The
    data and the split enter the problem's fingerprint, so a run does not resume on other data.
    A data term's points in the generated module are rows of the d coordinates, then the M
    observed values.
    """

    points: object
    values: object
    description: str = ""
    holdout: float = 0

    def describe(self) -> str:
        n = _length(self.points)
        text = f"{n} observed point{'s' if n != 1 else ''}" if n is not None else "observed points"
        if self.holdout and n is not None:
            try:
                text += f", {self.heldout_count(n)} held out"
            except ValueError:   # an invalid holdout: validation says so
                pass
        return f"{text} ({self.description})" if self.description else text

    def heldout_count(self, n: int) -> int:
        """How many of n observations ``holdout`` keeps out of training: a fraction 0 ≤ h < 1 of
        n, rounded to the nearest count (halves up), or a count (an integer, also NumPy's or
        SymPy's). ValueError for anything else, or when it keeps none out or leaves none in."""
        h = self.holdout
        if isinstance(h, bool) or not isinstance(h, (numbers.Real, sp.Number)):
            raise ValueError(f"holdout must be a fraction 0 ≤ h < 1 or a count of observations, got {h!r}")
        value = float(h)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"holdout must be a fraction 0 ≤ h < 1 or a count of observations, got {h!r}")
        if value < 1:
            k = math.floor(value * n + 0.5)
            if value > 0 and k == 0:
                raise ValueError(f"holdout={h!r} of {n} observations keeps none out"
                                 + (": give a count (holdout=1)" if n > 1 else ""))
        elif isinstance(h, (numbers.Integral, sp.Integer)):
            k = int(h)
        else:
            raise ValueError(f"holdout={h!r} is neither a fraction below 1 nor a count (a count is an integer, "
                             f"such as holdout={int(value)})" if value.is_integer() else
                             f"holdout={h!r} is neither a fraction below 1 nor a count (an integer)")
        if k >= n:
            raise ValueError(f"holdout keeps {k} of {n} observations out, which leaves none to train on")
        return k

    def heldout_rows(self, n: int) -> "torch.Tensor":
        """The row indices (sorted) of the held-out observations among n: a permutation seeded
        with 0, so the split is the same in every run of the spec."""
        import torch

        k = self.heldout_count(n)
        return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:k].sort().values

    def __repr__(self) -> str:
        return f"Data({self.describe()})"

    def table(self, variables: Sequence[sp.Symbol], components: int) -> "torch.Tensor":
        """The observations as one float64 tensor (N, d + M): the points' coordinates in the order
        of ``variables``, then the M = ``components`` observed values. Raises ValueError with a
        message for the user on arrays of the wrong shape, non-finite numbers or (for a dict of
        points) variables that are missing or not the domain's."""
        import torch

        d = len(variables)
        if isinstance(self.points, Mapping):
            columns = [_float64(self.points[key], f"points[{v}]")
                       for v, key in zip(variables, _point_keys(self.points, variables))]
            if any(c.dim() != 1 for c in columns) or len({c.shape[0] for c in columns}) != 1:
                raise ValueError("the points' arrays must be one-dimensional and of one length, got shapes "
                                 + ", ".join(f"{v}: {tuple(c.shape)}" for v, c in zip(variables, columns)))
            X = torch.stack(columns, dim=1)
        else:
            X = _float64(self.points, "points")
            if X.dim() == 1 and d == 1:   # one variable: the points may be a plain array (N,)
                X = X[:, None]
            if X.dim() != 2 or X.shape[1] != d:
                raise ValueError(f"points have shape {tuple(X.shape)}; expected (N, {d}): one row per point, "
                                 f"columns {', '.join(map(str, variables))} (or a dict variable -> array)")
        Y = given = _float64(self.values, "values")
        if Y.dim() == 1:
            Y = Y[:, None]
        if Y.dim() != 2 or Y.shape[1] != components:
            want = "(N,) or (N, 1)" if components == 1 else f"(N, {components})"
            raise ValueError(f"values have shape {tuple(given.shape)}; expected {want}: one column per "
                             f"component of the condition's residual")
        if X.shape[0] < 1 or Y.shape[0] != X.shape[0]:
            raise ValueError(f"{X.shape[0]} points and {Y.shape[0]} values: give one value row per point "
                             f"(and at least one point)")
        table = torch.cat([X, Y], dim=1)
        bad = int((~torch.isfinite(table)).any(dim=1).sum())
        if bad:
            raise ValueError(f"{bad} of the {X.shape[0]} rows hold a non-finite point or value (NaN or inf): "
                             f"drop the missing measurements")
        return table


def _float64(array, what: str) -> "torch.Tensor":
    """An array of real numbers as a float64 tensor: a tensor or NumPy array (integers or floats,
    converted without rounding), or nested lists of numbers, SymPy numbers included (read in
    float64 directly, not through torch's float32 default)."""
    import torch

    if isinstance(array, torch.Tensor) or hasattr(array, "__array__"):
        try:
            t = torch.as_tensor(array.detach() if isinstance(array, torch.Tensor) else array)
        except (TypeError, ValueError, RuntimeError):   # e.g. a NumPy array of SymPy numbers
            t = None
        if t is not None:
            if t.is_complex() or t.dtype == torch.bool:
                raise ValueError(f"{what} must be real numbers, got {t.dtype}")
            return t.to(torch.float64)
        array = array.tolist()
    try:
        return torch.as_tensor(array, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        pass
    try:   # SymPy numbers (sp.pi, sp.Rational(1, 2)) and other objects float() reads
        return torch.tensor(_floats(array), dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{what} is not an array of real numbers ({exc})") from None


def _floats(array):
    """Nested lists with every entry read by float()."""
    if isinstance(array, (list, tuple)):
        return [_floats(a) for a in array]
    return float(array)


def _point_keys(points: Mapping, variables: Sequence[sp.Symbol]) -> list:
    """The key of ``points`` for each variable: the variable itself or its name as a string. A
    missing variable, a key of no variable, and a symbol that has a variable's name but other
    SymPy assumptions are ValueErrors."""
    keys = []
    for v in variables:
        found = [k for k in (v, str(v)) if k in points]
        keys.append(found[0] if found else None)
    missing = [str(v) for v, k in zip(variables, keys) if k is None]
    extra = [k for k in points if k not in keys]
    if missing or extra:
        twins = sorted(str(k) for k in extra if str(k) in missing)
        raise ValueError("the points' dict must have one array per domain variable ("
                         + ", ".join(map(str, variables)) + ")"
                         + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; not a domain variable: {', '.join(map(str, extra))}" if extra else "")
                         + (f" ({', '.join(twins)} has the name of a domain variable but other SymPy assumptions, "
                            f"e.g. real=True on one and not the other: use the domain's own symbols, or their "
                            f"names as strings)" if twins else ""))
    return keys


def _length(array) -> int | None:
    """Rows of an array given as points (a dict's first column), or None when it has no length."""
    if isinstance(array, Mapping):
        array = next(iter(array.values()), None)
    try:
        return len(array)
    except TypeError:
        return None


@dataclass(frozen=True, init=False)
class Combined(Region):
    """Several regions as ONE condition term, ``Initial() | SpatialBoundary()``.

    The term's points are split evenly over the parts (in order; the first parts take one more when
    the count does not divide), and its loss is one mean over all of them, 1/(2N) Σ_n r(x_n)². This
    is how the paper writes the heat equation's initial and boundary data (§A.6): one condition
    term, so KFAC has two Kronecker pairs, interior and condition, and needs no merging. Two
    separate conditions instead weight each part by its own 1/N_c.
    """

    parts: tuple[Region, ...]

    def __init__(self, *parts: Region):
        flat: list[Region] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, Combined) else [part])
        object.__setattr__(self, "parts", tuple(flat))

    def describe(self) -> str:
        return " + ".join(p.describe() for p in self.parts)

    def split(self, n: int) -> list[int]:
        """Points per part for n points in all: even, the first parts one more when n does not divide."""
        base, extra = divmod(n, len(self.parts))
        return [base + (i < extra) for i in range(len(self.parts))]

    def __repr__(self) -> str:
        return " | ".join(repr(p) for p in self.parts)


@dataclass(frozen=True)
class Condition:
    """A condition residual (vanishes at the solution) and the region its points live on.

    ``residual`` is one expression, or a list of them for a condition on several components (a
    system's ``[u - g_u, v - g_v]``): one loss term whose residual has one column per entry.

    ``weight`` (default 1, a positive number) multiplies the term's loss:
    weight · 1/(2N) Σ_n ‖r_n‖². The generated residual is scaled by √weight, so every optimizer,
    the Kronecker factors, the line search and the logged loss of the term include it;
    ``pdec check`` checks the unscaled residual."""

    residual: sp.Expr | Sequence[sp.Expr]
    on: Region | None = None
    weight: float = 1

    @property
    def residuals(self) -> list[sp.Expr]:
        """The residual's components (length M of its term)."""
        return list(self.residual) if isinstance(self.residual, (list, tuple)) else [self.residual]

    @property
    def is_vector(self) -> bool:
        return isinstance(self.residual, (list, tuple))

    @property
    def parts(self) -> tuple[Region, ...]:
        """The regions its points lie on: a combined region's parts, else its one region."""
        return self.on.parts if isinstance(self.on, Combined) else (self.on,)

    def component_label(self, name: str, i: int) -> str:
        """``name`` or, for a list, ``name[i]``: how messages name component i."""
        return f"{name}[{i}]" if self.is_vector else name


# --------------------------------------------------------------------------- the problem

Expr = Union[sp.Expr, int, float]

#: modules that pdec and its generated code import: a problem of that name would shadow them
SHADOWED_MODULES = frozenset({"pdec", "torch", "sympy", "numpy", "jinja2", "networkx", "tqdm", "matplotlib"})


@dataclass
class Problem:
    """A PDE problem for a PINN.

    Args:
        name: identifier; names the generated module ``generated/<name>.py``.
        domain: the :class:`Box`.
        unknowns: applied functions, e.g. ``[sp.Function("u")(t, x)]``; network output m is
            unknown m.
        interior: interior residual, or a list of them (a system); M = number of residuals.
        interior_weight: multiplies the interior term's loss, as a :class:`Condition`'s ``weight``
            multiplies its term's (default 1).
        conditions: name -> :class:`Condition` (or a ``(residual, region)`` tuple).
        parameters: symbol -> number, substituted exactly before analysis, or -> :class:`Learned`,
            a parameter fitted with the network (it stays a symbol of the residuals).
        exact: optional exact solution, unknown -> expression of the variables; it may give some
            unknowns only (errors are then measured on those).
        description: free text shown by ``pdec inspect`` and ``pdec list``.
        source: path of the spec file (set by :func:`pdec.load_spec`); used in error messages.
        ansatz: optional hard constraints, unknown -> an expression of the variables and ONE new
            function of all of them, the network's output for that unknown: ``{u: x*(1 - x)*v}``
            with ``v = sp.Function("v")(x)`` makes u = x(1 − x)·v, zero at x = 0 and x = 1 whatever
            the network learns. The residuals are written in the unknowns; pdec substitutes the
            ansatz and trains the network's outputs. No derivatives of the network's function, no
            learned parameters in an ansatz.
    """

    name: str
    domain: Box
    unknowns: Sequence[sp.Expr]
    interior: Union[Expr, Sequence[Expr]]
    conditions: Mapping[str, Union[Condition, tuple]] = field(default_factory=dict)
    parameters: Mapping[sp.Symbol, Expr] = field(default_factory=dict)
    exact: Mapping[sp.Expr, Expr] | None = None
    description: str = ""
    source: str | None = None
    interior_weight: float = 1
    ansatz: Mapping[sp.Expr, Expr] | None = None

    # ------------------------------------------------------------------ normalised views
    @property
    def variables(self) -> tuple[sp.Symbol, ...]:
        return self.domain.variables

    @property
    def learned(self) -> dict[sp.Symbol, Learned]:
        """The learned parameters, symbol -> :class:`Learned`, in the order ``parameters`` gives them."""
        if not isinstance(self.parameters, Mapping):
            return {}
        return {k: v for k, v in self.parameters.items() if isinstance(v, Learned)}

    @property
    def true_values(self) -> dict[sp.Symbol, sp.Expr]:
        """The learned parameters whose true value the spec gives (``Learned(..., exact=...)``):
        symbol -> that value, exact (a float read as the rational it prints as)."""
        return {k: _exact_number(v.exact) for k, v in self.learned.items() if v.exact is not None}

    @property
    def ansatz_items(self) -> dict[sp.Expr, tuple[sp.Expr, sp.Expr]]:
        """The hard constraints: unknown -> (the network's function for it, the unknown's expression
        in it, fixed parameters substituted), in the order of ``unknowns``; {} without an ansatz."""
        if not self.ansatz or not isinstance(self.ansatz, Mapping):
            return {}
        out = {}
        for u in self.unknowns:
            if u in self.ansatz:
                expr = self._substitute(sp.sympify(self.ansatz[u]))
                out[u] = (_network_function(expr, set(self.unknowns)), expr)
        return out

    def ansatz_faces(self, u: sp.Expr) -> dict[tuple[sp.Symbol, str], sp.Expr]:
        """The faces of the box on which u's ansatz fixes u whatever the network's output:
        (variable, "min" | "max") -> the value there (an expression of the other variables),
        in the domain's order. {} when u has no ansatz."""
        if u not in self.ansatz_items:
            return {}
        f, expr = self.ansatz_items[u]
        out = {}
        for var in self.variables:
            for side in ("min", "max"):
                value = _fixed_value(expr.subs(var, self.domain.face_bound(var, side)), f)   # v(t, x) -> v(1, x)
                if value is not None:
                    out[(var, side)] = value
        return out

    @property
    def ansatz_shown(self) -> dict[sp.Expr, sp.Expr]:
        """Each ansatz as it reads: unknown -> its expression with the network's function as a plain
        symbol of its name (``v*x*(1 - x)``, not ``v(x)*x*(1 - x)``), for docstrings and inspect."""
        return {u: e.xreplace({f: sp.Symbol(f.func.__name__)}) for u, (f, e) in self.ansatz_items.items()}

    @property
    def outputs(self) -> list[sp.Expr]:
        """The network's outputs, one per unknown in order: the unknown itself, or the function its
        ansatz is written in. The compiled residuals are expressions of these."""
        items = self.ansatz_items
        return [items[u][0] if u in items else u for u in self.unknowns]

    def network_form(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` (in the unknowns) with every unknown that has an ansatz replaced by it and the
        derivatives carried out by the product and chain rules: an expression of the network's
        outputs (:attr:`outputs`). Without an ansatz, ``expr`` itself."""
        items = self.ansatz_items
        if not items:
            return expr
        expr = sp.sympify(expr).subs({u: e for u, (_, e) in items.items()})
        return expr.replace(lambda node: isinstance(node, sp.Derivative), lambda node: node.doit())

    @property
    def interior_residuals(self) -> list[sp.Expr]:
        """The interior residuals with the fixed parameters substituted (length M); learned
        parameters stay symbols."""
        return [self._substitute(sp.sympify(r)) for r in self._interior_items()]

    def _interior_items(self) -> list:
        """The interior residual(s) as written: a list of M entries."""
        return list(self.interior) if isinstance(self.interior, (list, tuple)) else [self.interior]

    @property
    def weights(self) -> dict[str, float]:
        """term -> the weight that multiplies its loss ("interior" first, then the conditions)."""
        return {"interior": float(self.interior_weight),
                **{name: c.weight for name, c in self.condition_items.items()}}

    @property
    def condition_items(self) -> dict[str, Condition]:
        """Conditions as ``name -> Condition`` with parameters substituted."""
        out = {}
        for name, cond in self.conditions.items():
            c = _as_condition(name, cond, self.source)
            parts = [self._substitute(sp.sympify(r)) for r in c.residuals]
            out[name] = Condition(parts if c.is_vector else parts[0], c.on, float(c.weight))
        return out

    @property
    def data_conditions(self) -> dict[str, int]:
        """The conditions on :class:`Data` regions: name -> M, the observed values per point."""
        return {name: len(c.residuals) for name, c in self.condition_items.items() if isinstance(c.on, Data)}

    @property
    def exact_solution(self) -> dict[sp.Expr, sp.Expr] | None:
        """Exact solution per unknown (parameters substituted, learned ones at their exact
        values), or None."""
        if not self.exact:
            return None
        return {u: self._substitute(sp.sympify(e), learned=True) for u, e in self.exact.items()}

    def fingerprint(self) -> str:
        """A hash of what the problem computes: name, domain (variables in their order, bounds as
        numbers, ``where``), unknowns, residuals, conditions and their regions, exact solution
        (parameters substituted), the ansatz, a :class:`Data` region's points and values, and each learned
        parameter's start and true value. Comments and formatting of the spec file do not change
        it; a :class:`Sampler` region counts by its description only (its function is not hashed).
        Hex digest (16 characters)."""
        parts = [self.name, repr([(str(v), self.domain.interval(v)) for v in self.variables]),
                 str(self.domain.time), repr([sp.srepr(u) for u in self.unknowns]),
                 *([f"where {sp.srepr(self.where)}"] if self.where is not None else []),
                 repr([sp.srepr(r) for r in self.interior_residuals])]
        if self.interior_weight != 1:
            parts.append(f"interior weight {float(self.interior_weight)!r}")
        for name, c in self.condition_items.items():
            parts.append(f"{name}: {[sp.srepr(r) for r in c.residuals] if c.is_vector else sp.srepr(c.residual)} "
                         f"on {c.on.describe()}" + (f" weight {c.weight!r}" if c.weight != 1 else ""))
            if isinstance(c.on, Data):   # the observations themselves, and which are held out
                table = self.data_table(name).contiguous().numpy()
                held = c.on.heldout_rows(len(table)).tolist()
                parts.append(f"{name} data {hashlib.sha256(table.tobytes()).hexdigest()} held out {held}")
        for u, (_, e) in self.ansatz_items.items():
            parts.append(f"ansatz {sp.srepr(u)} = {sp.srepr(e)}")
        for k, v in self.learned.items():   # where training starts, and what it is measured against
            parts.append(f"learned {sp.srepr(k)} from {float(v.initial)!r}"
                         + (f" exact {float(v.exact)!r}" if v.exact is not None else ""))
        if self.exact_solution:
            parts.append(repr(sorted((sp.srepr(u), sp.srepr(e)) for u, e in self.exact_solution.items())))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    @property
    def where(self) -> sp.Basic | None:
        """The domain's ``where`` condition with parameters substituted (None: the whole box)."""
        if self.domain.where is None:
            return None
        return self._substitute(sp.sympify(self.domain.where))

    def _substitute(self, expr: sp.Expr, learned: bool = False) -> sp.Expr:
        """``expr`` with the fixed parameters' values; ``learned=True`` also puts in the learned
        parameters' exact values (those that have one)."""
        if not self.parameters or not isinstance(self.parameters, Mapping):
            return expr
        values = {k: _exact_number(v) for k, v in self.parameters.items() if not isinstance(v, Learned)}
        if learned:
            values.update(self.true_values)
        return expr.subs(values) if values else expr

    # ------------------------------------------------------------------ validation
    def validate(self) -> "Problem":
        """Check the problem; raise :class:`SpecError` naming the file and the term. Returns self."""
        src = self.source or f"problem {self.name!r}"

        def fail(msg: str, term: str | None = None) -> None:
            raise SpecError(msg, spec=src, term=term)

        if not isinstance(self.name, str) or not self.name.isidentifier() or keyword.iskeyword(self.name):
            fail(f"name {self.name!r} must be a Python identifier (it names the generated module)")
        if self.name in SHADOWED_MODULES:
            fail(f"name {self.name!r} is taken: generated/{self.name}.py would shadow the module {self.name} "
                 f"that pdec and its generated code import; choose another name")
        if not isinstance(self.domain, Box):
            fail("domain must be a pdec.Box")
        if not isinstance(self.domain.bounds, Mapping):
            fail(f"Box takes a dict variable -> (lo, hi), such as Box({{x: (0, 1), y: (0, 1)}}), got "
                 f"{type(self.domain.bounds).__name__}")
        if isinstance(self.domain.time, str):
            fail(f"time must be the variable's Symbol (time=t), not the string {self.domain.time!r}")
        variables = self.domain.variables
        if not variables:
            fail("the domain declares no variables")
        for v, bounds in self.domain.bounds.items():
            if not isinstance(v, sp.Symbol):
                fail(f"domain variable {v!r} is not a SymPy Symbol")
            if not _plain_name(v.name):
                fail(f"variable name {v.name!r} must be a plain Python identifier, such as x1 or xi "
                     "(it names a local variable of the generated code)")
            try:
                lo, hi = (float(sp.sympify(b)) for b in bounds)
            except (TypeError, ValueError):
                symbols = sorted(map(str, sp.Tuple(*bounds).free_symbols)) if isinstance(bounds, (tuple, list)) else []
                fail(f"bounds of {v} must be two numbers, got {bounds!r}"
                     + (f" (the domain takes numbers, not the symbol(s) {', '.join(symbols)}: parameters "
                        f"are substituted into the residuals only; write the value, e.g. a Python "
                        f"variable)" if symbols else ""))
            if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
                fail(f"bounds of {v} must be finite with lo < hi, got {bounds!r}")
        if self.domain.time is not None and self.domain.time not in self.domain.bounds:
            fail(f"time variable {self.domain.time} is not a domain variable")

        if not isinstance(self.parameters, Mapping):
            fail(f"parameters must be a dict symbol -> value, such as {{k: 2}}, got "
                 f"{type(self.parameters).__name__}")
        for k, v in self.parameters.items():
            if not isinstance(k, sp.Symbol):
                fail(f"parameter key {k!r} is not a SymPy Symbol")
            if k in variables:
                fail(f"parameter {k} is also a domain variable")
            if v is Learned:
                fail(f"parameter {k}: Learned takes the value training starts from, such as "
                     f"Learned(1.0)", term=str(k))
            if isinstance(v, Learned):
                self._check_learned(k, v, src)
                continue
            try:
                value = complex(sp.sympify(v))
            except (TypeError, ValueError):
                fail(f"parameter {k} = {v!r} is not a number")
            if value.imag != 0 or not math.isfinite(value.real):
                fail(f"parameter {k} = {v!r} must be a finite real number", term=str(k))

        self._check_where(src)

        if isinstance(self.unknowns, sp.Basic) or not isinstance(self.unknowns, (list, tuple)):
            fail(f"unknowns must be a list, such as unknowns=[{self.unknowns}]")
        if not self.unknowns:
            fail("no unknowns declared")
        names = set()
        for u in self.unknowns:
            if not isinstance(u, AppliedUndef):
                fail(f"unknown {u!r} must be an applied function such as sp.Function('u')(x, y)")
            bad = [a for a in u.args if a not in variables]
            if bad:
                hint = ""
                same_name = [a for a in bad if str(a) in {str(v) for v in variables}]
                if same_name:   # sp.Symbol("x") is not sp.Symbol("x", real=True)
                    hint = (f" ({', '.join(map(str, same_name))} has the name of a domain variable but other "
                            f"SymPy assumptions, e.g. real=True on one and not the other: use the same symbol)")
                fail(f"unknown {u} is applied to undeclared variable(s) "
                     f"{', '.join(map(str, bad))}; declared: {', '.join(map(str, variables))}{hint}",
                     term=str(u))
            missing = [v for v in variables if v not in u.args]
            if missing:
                fail(f"unknown {u} does not depend on {', '.join(map(str, missing))}, but pdec's network maps "
                     f"every domain variable to every unknown, so it would; declare it as "
                     f"{u.func.__name__}({', '.join(map(str, variables))})", term=str(u))
            name = u.func.__name__
            if name in names:
                fail(f"unknown {name} declared twice")
            if not _plain_name(name):
                fail(f"unknown name {name!r} must be a plain Python identifier, such as u or phi "
                     "(it names a local variable of the generated code)", term=str(u))
            if name in {str(v) for v in variables} | {str(k) for k in self.parameters}:
                fail(f"unknown {u} has the name of a variable or parameter; rename one of them",
                     term=str(u))
            names.add(name)
        self._check_ansatz(src)

        if isinstance(self.interior, (list, tuple)) and not self.interior:
            fail("interior is an empty list")
        constrained = set()   # the unknowns some residual reads

        def reads_unknowns(expr: sp.Expr, label: str) -> None:
            read = {u for u in self.unknowns if sp.sympify(expr).has(u)}
            if not read:
                fail("the residual contains no unknown, so no network output changes it (a constant "
                     "term of the loss; note that SymPy turns a derivative of an unknown w.r.t. a "
                     "variable it does not depend on into 0)", term=label)
            constrained.update(read)

        for i, r in enumerate(self.interior_residuals):
            label = "interior" if not isinstance(self.interior, (list, tuple)) else f"interior[{i}]"
            self._check_expr(r, label, src, allow_unknowns=True)
            reads_unknowns(r, label)

        _check_weight(self.interior_weight, "interior", "interior_weight", src)
        if not isinstance(self.conditions, Mapping):
            fail("conditions must be a dict name -> Condition(residual, on=region)")
        for name, cond in self.conditions.items():
            if not isinstance(name, str) or not name.isidentifier():
                fail(f"condition name {name!r} must be an identifier")
            if name == "interior":
                fail("a condition may not be named 'interior': that is the PDE's own term", term=name)
            c = _as_condition(name, cond, src)
            self._check_region(name, c.on, src)
            if isinstance(c.on, Data):
                self._check_data(name, c, src)
            _check_weight(c.weight, f"condition {name}", "weight", src)
            if c.is_vector and not c.residuals:
                fail("the condition's residual is an empty list", term=f"condition {name}")
            for i, r in enumerate(c.residuals):
                label = f"condition {c.component_label(name, i)}"
                residual = self._substitute(_sympify(r, label, src))
                self._check_expr(residual, label, src, allow_unknowns=True)
                reads_unknowns(residual, label)
        if self.ansatz_items:   # what the compiler receives: derivatives of the ansatz carried out
            terms = [("interior", r) for r in self.interior_residuals]
            terms += [(f"condition {name}", r) for name, c in self.condition_items.items() for r in c.residuals]
            for label, r in terms:
                self._check_expr(self.network_form(r), label, src, allow_unknowns=True, functions=self.outputs,
                                 what="the residual with the ansatz put in")
        free = [u for u in self.unknowns if u not in constrained]
        if free:
            fail(f"unknown {', '.join(map(str, free))} appears in no residual or condition, so nothing "
                 f"determines it (its network output would be arbitrary)")
        read = set().union(*(sp.sympify(r).free_symbols for r in self.interior_residuals),
                           *(r.free_symbols for c in self.condition_items.values() for r in c.residuals))
        for k in self.learned:
            if k not in read:
                fail(f"the learned parameter {k} appears in no residual, so no loss term determines it "
                     f"(a parameter of the exact solution only is a fixed one: give it a number)", term=str(k))

        if self.exact is not None and not isinstance(self.exact, Mapping):
            fail(f"exact must be a dict unknown -> expression, such as {{{self.unknowns[0]}: ...}}, "
                 f"got {type(self.exact).__name__}")
        if self.exact:
            unknown_set = set(self.unknowns)
            for u, e in self.exact.items():
                if u not in unknown_set:
                    fail(f"exact solution given for {u}, which is not a declared unknown", term=str(u))
                self._check_expr(self._substitute(sp.sympify(e), learned=True), f"exact[{u}]", src,
                                 allow_unknowns=False)
        for message in self.doubts():   # one place, so each prints once however often validate runs
            warnings.warn(f"{src}: {message}", PdecWarning, stacklevel=1)
        return self

    def doubts(self) -> list[str]:
        """What in a valid problem is likely not what its author meant (``validate`` warns each):
        no condition (and no ansatz), fewer interior residuals than unknowns, ``Boundary()`` on a
        domain with time (it holds the final time's face too), an evolution equation (a time
        derivative) with no condition at the initial time (and no ansatz), one of order k ≥ 2 in
        time given fewer than k initial values (:meth:`_few_initial_values`), a combined region that
        holds a face twice, a condition on the faces a periodic one pairs, a condition the ansatz
        already holds, observed points outside a cut domain, a parameter that appears nowhere."""
        out = []
        # the faces on which an ansatz fixes each unknown (none for an unknown without one)
        fixed = {u: set(self.ansatz_faces(u)) for u in self.unknowns}
        loose = [u for u in self.unknowns if not fixed[u]]
        if not self.conditions and loose:
            which = (f" ({', '.join(map(str, loose))} has no ansatz that fixes it on a face)"
                     if self.ansatz_items else "")
            out.append("no conditions: without boundary or initial values most PDEs have many solutions, "
                       f"and the network learns one of them; add conditions={{...}}{which}")
        if len(self.interior_residuals) < len(self.unknowns):
            out.append(f"{len(self.interior_residuals)} interior residual(s) for {len(self.unknowns)} unknowns: "
                       f"the interior does not determine every unknown")
        time = self.domain.time
        regions = [p for c in self.condition_items.values()
                   for p in c.parts]
        evolves = time is not None and any(v == time for r in self.interior_residuals
                                           for d in sp.sympify(r).atoms(sp.Derivative) for v, _ in d.variable_count)
        initial = any(isinstance(p, (Initial, Boundary, Sampler, Data)) or (isinstance(p, Face) and p.var == time)
                      for p in regions)   # a Sampler's or the data's points may hold the initial values
        if self.ansatz_items and time is not None:   # ansatzes may hold every unknown's initial values
            initial = initial or all((time, "min") in fixed[u] for u in self.unknowns)
        if (self.conditions or self.ansatz_items) and evolves and not initial:
            out.append(f"no condition on the initial slice {time} = {self.domain.interval(time)[0]:g}: an "
                       f"evolution equation needs its initial values (Condition(u - u0, on=Initial())), or "
                       f"measurements of the solution (Data(points, values))")
        elif evolves and initial:
            out += self._few_initial_values()
        for name, c in self.condition_items.items():
            parts = c.parts
            if time is not None and any(isinstance(p, Boundary) for p in parts):
                lo, hi = self.domain.interval(time)
                usual = "on=Initial() | SpatialBoundary()" if self.domain.spatial else "on=Initial()"
                out.append(f"condition {name!r} is on Boundary(), every face of the box, so also on the final "
                           f"time {time} = {hi:g}; an initial value problem has {usual} (if the final time is "
                           f"meant, name the faces: ... | Face({time}, 'max'))")
            twice = self._face_held_twice(parts)
            if twice:
                (var, side), first, second = twice
                out.append(f"condition {name!r} holds the face {var} = {side} twice, in {first!r} and in "
                           f"{second!r}, so its points weigh double there")
        if self.ansatz_items:
            for name, c in self.condition_items.items():
                held, clash = self._held_by_ansatz(c)
                if clash:
                    out.append(f"condition {name!r} disagrees with the ansatz: on {clash[0]} the ansatz fixes its "
                               f"residual to {clash[1]}, not 0, whatever the network learns; correct one of them")
                elif held:
                    out.append(f"condition {name!r} is held by the ansatz on its faces ({held}): its residual there "
                               f"does not depend on the network, so the term trains nothing; drop it")
        periodic = {}   # variable -> the condition that pairs its faces
        for name, c in self.condition_items.items():
            if isinstance(c.on, Periodic):
                periodic.setdefault(c.on.var, name)
        for name, c in self.condition_items.items():
            parts = c.parts
            held = sorted({v for p in parts for v, _ in self._region_faces(p) if v in periodic}, key=str)
            if held:
                v = held[0]
                out.append(f"condition {name!r} also holds values on the faces of {v} that condition "
                           f"{periodic[v]!r} pairs (Periodic({v})); a periodic problem has none there "
                           f"(SpatialBoundary() and Boundary() include those faces: name the others with "
                           f"Face(...))")
        if self.domain.where is not None and self.data_conditions:
            from .domain import domain_predicate, where_text   # the domain's test (that module reads specs)

            inside = domain_predicate(self)
            for name in self.data_conditions:
                X = self.data_table(name)[:, :len(self.variables)]
                outside = int((~inside(X)).sum())
                if outside:
                    out.append(f"{outside} of the {len(X)} observed points of condition {name!r} lie outside the "
                               f"domain ({where_text(self)} is false there): the network is fitted to them where "
                               f"the PDE is not imposed")
        used = set().union(*(sp.sympify(e).free_symbols for e in self._raw_expressions()),
                           sp.sympify(self.domain.where).free_symbols if self.domain.where is not None else set())
        unused = [str(k) for k in self.parameters if k not in used]
        if unused:
            out.append(f"parameter(s) {', '.join(unused)} appear in no residual, condition or exact solution")
        return out

    def _few_initial_values(self) -> list[str]:
        """For each unknown of order k ≥ 2 in time (u_tt: a wave equation), a doubt when the spec
        gives fewer than k of u, ∂_t u, …, ∂_t^(k−1) u at the initial time: the orders its ansatz
        fixes there (the derivative at t = t0 reads no network output) plus the components of the
        conditions on the initial face that read u. No doubt where a condition's points are no box
        face (a Sampler's or data points may hold them)."""
        time = self.domain.time
        t0 = self.domain.face_bound(time, "min")
        conditions = self.condition_items.values()
        if any(not self._region_faces(p) and not isinstance(p, Periodic) for c in conditions for p in c.parts):
            return []
        out = []
        for u in self.unknowns:
            order = max((sum(n for v, n in d.variable_count if v == time)
                         for r in self.interior_residuals for d in sp.sympify(r).atoms(sp.Derivative)
                         if d.expr == u), default=0)
            if order < 2:
                continue
            given = sum(len([r for r in c.residuals if sp.sympify(r).has(u)]) for c in conditions
                        if any((time, "min") in self._region_faces(p) for p in c.parts))
            if u in self.ansatz_items:
                f, expr = self.ansatz_items[u]
                given += sum(_fixed_value(sp.diff(expr, time, j).subs(time, t0), f) is not None for j in range(order))
            if given < order:
                name = u.func.__name__
                out.append(f"{name} is of order {order} in {time}: its initial values are {name} and its first "
                           f"{order - 1} derivative(s) in {time} at {time} = {t0}, and the conditions on the initial "
                           f"face and the ansatz give {given} of them; add e.g. Condition({name}.diff({time}) - "
                           f"{name}1, on=Initial()), or write the ansatz's network term with the factor "
                           f"{time}**{order}")
        return out

    def _region_faces(self, region: Region) -> list[tuple]:
        """The box faces ``(variable, "min" | "max")`` a region covers ([] for a Sampler)."""
        faces = [(v, side) for v in self.variables for side in ("min", "max")]
        if isinstance(region, Boundary):
            return faces
        if isinstance(region, SpatialBoundary):
            return [f for f in faces if f[0] != self.domain.time]
        if isinstance(region, Initial):
            return [(self.domain.time, "min")]
        if isinstance(region, Face):
            return [(region.var, region.side)]
        return []

    def _held_by_ansatz(self, c: Condition) -> tuple[str, tuple[str, sp.Expr] | None]:
        """For a condition on box faces whose residual, the ansatz put in and each face's variable
        at its bound, reads no network output on any of them: (the faces as text, None) when it is
        0 there, or ("", (a face, the residual's value there)) when the ansatz fixes it to
        something else; ("", None) otherwise."""
        parts = c.parts
        if any(not self._region_faces(p) for p in parts):
            return "", None   # a part that is no box face (Sampler, Data, Periodic)
        faces = [face for p in parts for face in self._region_faces(p)]
        functions = {f.func for f in self.outputs}
        values = []
        for var, side in faces:
            for r in c.residuals:   # SymPy's own evaluation only (x(1 − x)·v is 0 at x = 0)
                value = self.network_form(r).subs(var, self.domain.face_bound(var, side))
                if _reads(value, functions):
                    return "", None
                values.append((f"{var} = {side}", value))
        for face, value in values:   # all fixed: they must be 0
            if not self._vanishes(value):
                return "", (face, value)
        return ", ".join(f"{var} = {side}" for var, side in faces), None

    def _vanishes(self, value: sp.Expr) -> bool:
        """Whether an expression of the variables is 0: symbolically where that is cheap, else at
        the box's corners and centre to 1e-12 (a bound such as math.pi is a float, and sin of it is
        1.2e-16)."""
        if value == 0 or (sp.count_ops(value) <= _SIMPLIFY_OPS and sp.simplify(value) == 0):
            return True
        lo, hi = self.domain.corners
        points = [lo, hi, tuple((a + b) / 2 for a, b in zip(lo, hi))]
        try:
            return all(abs(complex(value.subs(dict(zip(self.variables, p))).evalf())) <= 1e-12 for p in points)
        except (TypeError, ValueError):
            return False

    def _face_held_twice(self, parts) -> tuple | None:
        """The first box face two parts of a combined region both cover, with the two parts."""
        seen: dict[tuple, Region] = {}
        for part in parts:
            for face in self._region_faces(part):
                if face in seen:
                    return face, seen[face], part
                seen[face] = part
        return None

    def _raw_expressions(self) -> list:
        """Every residual, exact-solution and ansatz expression as written (parameters not
        substituted)."""
        items = self._interior_items()
        for name, cond in self.conditions.items():
            items += _as_condition(name, cond, self.source).residuals
        return items + list((self.exact or {}).values()) + list((self.ansatz or {}).values())

    def _check_where(self, src: str) -> None:
        """The domain's ``where``: inequalities of the variables (and parameters), joined by
        ``&``, ``|``, ``~``, that hold somewhere."""
        if self.domain.where is None:
            return
        term = "domain where"

        def fail(msg: str) -> None:
            raise SpecError(msg, spec=src, term=term)

        raw = self.domain.where
        if isinstance(raw, bool):
            fail(f"where={raw} is a Python constant (a comparison of numbers, or `and`/`or` between inequalities?); "
                 f"write a condition on the variables, such as where=x**2 + y**2 < 1, joining several with "
                 f"& and |, or leave where out for the whole box")
        if raw is sp.true or raw is sp.false:
            fail(f"where is {raw} for every real value of the variables (SymPy evaluated it): "
                 + ("the domain would be empty" if raw is sp.false else "leave where out for the whole box"))
        if isinstance(raw, sp.Expr) or not isinstance(raw, sp.logic.boolalg.Boolean):
            fail(f"where={raw!r} is not a condition: write an inequality of the variables, such as "
                 f"where=x**2 + y**2 < 1 (join several with &, |, ~)")
        where = self.where
        if where is sp.true or where is sp.false:
            fail(f"where={raw} is {where} everywhere once the parameters are substituted: "
                 + ("the domain would be empty" if where is sp.false else "leave where out for the whole box"))
        for f in sorted(where.atoms(AppliedUndef), key=str):
            fail(f"where must not contain the unknown {f}: it is a condition on the variables")
        learned = sorted(map(str, set(self.learned) & where.free_symbols))
        if learned:
            fail(f"where contains the learned parameter(s) {', '.join(learned)}: the domain is fixed while "
                 f"training, so it takes numbers (or fixed parameters)")
        for leaf in _boolean_leaves(where):
            if isinstance(leaf, sp.logic.boolalg.BooleanFunction):
                fail(f"{type(leaf).__name__} in where: join inequalities with & (And), | (Or) and ~ (Not)")
            if isinstance(leaf, (sp.Eq, sp.Ne)):
                fail(f"{leaf} in where: an equation holds on a surface (or everywhere but one), not on a region "
                     f"of the box; write inequalities (a boundary's points come from Sampler(fn))")
            if not isinstance(leaf, sp.core.relational.Relational):
                fail(f"{leaf} in where is not an inequality: each part of a condition joined by &, |, ~ compares "
                     f"two expressions, such as x > 0")
        for rel in where.atoms(sp.core.relational.Relational):
            self._check_expr(rel.lhs - rel.rhs, term, src, allow_unknowns=False)

    def _check_region(self, name: str, region: Region | None, src: str) -> None:
        term = f"condition {name}"
        if region is None:
            raise SpecError("condition has no region: write Condition(residual, on=Boundary()) "
                            "(or Initial(), SpatialBoundary(), Face(x, 'min'), Periodic(x), Sampler(fn), Data(points, "
                            "values))",
                            spec=src, term=term)
        if isinstance(region, type) and issubclass(region, Region):
            call = {"Face": "Face(x, 'min')", "Periodic": "Periodic(x)", "Sampler": "Sampler(fn)",
                    "Data": "Data(points, values)"}.get(
                region.__name__, f"{region.__name__}()")
            raise SpecError(f"on={region.__name__} is the class; write on={call}", spec=src, term=term)
        if not isinstance(region, Region):
            hint = (": combine regions with |, such as on=Initial() | SpatialBoundary()"
                    if isinstance(region, (list, tuple)) and region and all(isinstance(r, Region) for r in region)
                    else ": the residual comes first, Condition(residual, on=region)"
                    if isinstance(region, (sp.Basic, list, tuple)) else
                    " (Boundary(), SpatialBoundary(), Initial(), Face(x, 'min'), Periodic(x), Sampler(fn), "
                    "Data(points, values))")
            raise SpecError(f"region {region!r} is not a pdec region{hint}", spec=src, term=term)
        if isinstance(region, Combined):
            if len(region.parts) < 2:
                raise SpecError("Combined needs at least two regions", spec=src, term=term)
            alone = {Data: "its points and values are given", Periodic: "its residual pairs two points"}
            for part in region.parts:
                why = alone.get(type(part))
                if why:
                    raise SpecError(f"{part!r} cannot be combined with other regions: {why}; give it a condition "
                                    f"of its own", spec=src, term=term)
                self._check_region(name, part, src)
            return
        if isinstance(region, Periodic):
            self._check_region_variable(region, f"Periodic({region.var})", "periodic", src, term)
            if region.var == self.domain.time:
                raise SpecError(f"Periodic({region.var}): {region.var} is the time variable; periodicity pairs "
                                f"the faces of a spatial variable", spec=src, term=term)
            if self.domain.where is not None:
                raise SpecError(f"Periodic({region.var}) needs the whole box, but the domain is the part of the box "
                                f"where {self.domain.where} (a point's image on the other face might lie outside)",
                                spec=src, term=term)
            return
        needs_time = isinstance(region, (Initial, SpatialBoundary))
        if needs_time and self.domain.time is None:
            raise SpecError(f"{region.describe()} needs a time variable: Box(..., time=t)",
                            spec=src, term=term)
        if isinstance(region, (Boundary, SpatialBoundary)) and self.domain.where is not None:
            raise SpecError(f"{type(region).__name__}() is the box's boundary, but the domain is the part of the box "
                            f"where {self.domain.where}: give the boundary's points with Sampler(fn) (Face(x, 'min') "
                            f"and Initial() keep the points of their face inside the domain)", spec=src, term=term)
        if isinstance(region, SpatialBoundary) and not self.domain.spatial:
            raise SpecError("spatial boundary of a domain without spatial variables", spec=src, term=term)
        if isinstance(region, Face):
            self._check_region_variable(region, f"Face({region.var}, {region.side!r})", "face", src, term)
            if region.side not in ("min", "max"):
                raise SpecError(f"face side must be 'min' or 'max', got {region.side!r}", spec=src, term=term)
        if isinstance(region, Sampler) and not callable(region.fn):
            raise SpecError("Sampler needs a callable fn(n, generator) -> Tensor (n, d)", spec=src, term=term)

    def data_table(self, name: str) -> "torch.Tensor":
        """Condition ``name``'s observations (its region is :class:`Data`), all of them: float64
        (N, d + M), the points' coordinates in the domain's variable order, then the M observed
        values."""
        c = self.condition_items[name]
        return c.on.table(self.variables, len(c.residuals))

    def data_split(self, name: str) -> tuple["torch.Tensor", "torch.Tensor | None"]:
        """Condition ``name``'s observations as (training rows, held-out rows or None), each
        (·, d + M) as in :meth:`data_table`, the rows in their given order."""
        import torch

        table = self.data_table(name)
        held = self.condition_items[name].on.heldout_rows(len(table))
        if not len(held):
            return table, None
        keep = torch.ones(len(table), dtype=torch.bool)
        keep[held] = False
        return table[keep], table[held]

    def _check_data(self, name: str, c: Condition, src: str) -> None:
        """A :class:`Data` region's arrays: shapes, finite numbers, points inside the box."""
        term = f"condition {name}"
        try:
            table = c.on.table(self.variables, len(c.residuals))
            c.on.heldout_count(len(table))
        except ValueError as exc:
            raise SpecError(f"Data: {exc}", spec=src, term=term) from None
        d = len(self.variables)
        lo, hi = (table.new_tensor(b) for b in self.domain.corners)
        slack = 1e-12 * (hi - lo).clamp(min=1.0)
        X = table[:, :d]
        outside = (X < lo - slack) | (X > hi + slack)
        if bool(outside.any()):
            rows = int(outside.any(dim=1).sum())
            column = int(outside.any(dim=0).nonzero()[0])
            raise SpecError(f"Data: {rows} of the {X.shape[0]} points lie outside the domain's box "
                            f"({self.domain.describe()}), e.g. in column {column} ({self.variables[column]}); "
                            f"the columns are the domain's variables in order "
                            f"({', '.join(map(str, self.variables))})", spec=src, term=term)

    def _check_ansatz(self, src: str) -> None:
        """Each ansatz: for a declared unknown, an expression of the variables and one new function
        of all of them (the network's output), no derivative of it, no unknown, no learned
        parameter; the functions of different ansatzes distinct, and named apart from the
        variables, parameters and unknowns."""
        if self.ansatz is None:
            return
        if not isinstance(self.ansatz, Mapping):
            raise SpecError(f"ansatz must be a dict unknown -> expression, such as {{{self.unknowns[0]}: "
                            f"x*(1 - x)*v}}, got {type(self.ansatz).__name__}", spec=src)
        variables = self.domain.variables
        taken = {str(v) for v in variables} | {str(k) for k in self.parameters} | {u.func.__name__ for u in self.unknowns}
        seen = {}
        for u, raw in self.ansatz.items():
            label = f"ansatz[{u}]"

            def fail(msg: str) -> None:
                raise SpecError(msg, spec=src, term=label)

            if u not in set(self.unknowns):
                fail(f"ansatz given for {u}, which is not a declared unknown "
                     f"(declared: {', '.join(map(str, self.unknowns))})")
            expr = self._substitute(_sympify(raw, label, src))
            if not isinstance(expr, sp.Expr):
                fail(f"{expr!r} is not a SymPy expression")
            if expr.atoms(sp.Derivative):
                fail(f"the ansatz {expr} contains a derivative; it must be algebraic in the network's function "
                     f"(such as g + d·v), whose derivatives pdec then propagates")
            used = [f for f in expr.atoms(AppliedUndef) if f.func in {w.func for w in self.unknowns}]
            if used:
                fail(f"the ansatz of {u} contains the unknown {used[0]}: write it in a new function, the "
                     f"network's output, such as {u} = x*(1 - x)*v with v = sp.Function('v')({', '.join(map(str, variables))})")
            functions = sorted(expr.atoms(AppliedUndef), key=str)
            if len(functions) != 1:
                fail(f"the ansatz of {u} must contain exactly one function, the network's output for {u} "
                     f"(such as v = sp.Function('v')({', '.join(map(str, variables))})), found "
                     f"{len(functions)}{': ' + ', '.join(map(str, functions)) if functions else ''}")
            v = functions[0]
            if tuple(v.args) != tuple(variables):
                fail(f"the network's function {v} must be applied to the domain's variables in their order, "
                     f"{v.func.__name__}({', '.join(map(str, variables))})")
            name = v.func.__name__
            if not _plain_name(name):
                fail(f"the network's function name {name!r} must be a plain Python identifier "
                     f"(it names a local variable of the generated code)")
            if name in taken:
                fail(f"the network's function {v} has the name of a variable, parameter or unknown; rename it")
            if name in seen:
                fail(f"the ansatzes of {seen[name]} and {u} share the function {v}; each unknown needs its own "
                     f"network output")
            seen[name] = u
            learned = sorted(map(str, expr.free_symbols & set(self.learned)))
            if learned:
                fail(f"the ansatz of {u} contains the learned parameter(s) {', '.join(learned)}; an ansatz may use "
                     f"the variables and fixed parameters only")
            self._check_expr(expr, label, src, allow_unknowns=True, functions=[v], what="the ansatz")

    def _ansatz_owner(self, f: sp.Expr) -> sp.Expr | None:
        """The unknown whose ansatz is written in the function ``f`` (None: no ansatz holds it)."""
        if not isinstance(self.ansatz, Mapping):
            return None
        for u, raw in self.ansatz.items():
            try:
                if _reads(sp.sympify(raw), {f.func}):
                    return u
            except (sp.SympifyError, TypeError, ValueError, AttributeError):
                continue
        return None

    def _check_learned(self, k: sp.Symbol, v: Learned, src: str) -> None:
        """A learned parameter: a plain name (it keys ``model.learned``) that is no attribute of
        ``nn.ParameterDict`` and no other's error column, a finite real start and exact value, a
        string description. (That a residual reads it is checked with the residuals.)"""
        def fail(msg: str) -> None:
            raise SpecError(msg, spec=src, term=str(k))

        if not _plain_name(str(k)):
            fail(f"learned parameter name {str(k)!r} must be a plain Python identifier, such as kappa "
                 f"(it names the trainable parameter and a local of the generated code)")
        from torch import nn   # the container of the generated module's learned parameters

        if hasattr(nn.ParameterDict(), str(k)):
            fail(f"learned parameter name {str(k)!r} is taken: the generated module keeps its learned parameters "
                 f"in a torch.nn.ParameterDict, which has an attribute of that name; rename it (e.g. {k}_0)")
        twin = str(k).removeprefix("err_")
        if twin != str(k) and any(str(p) == twin and q.exact is not None for p, q in self.learned.items()):
            fail(f"learned parameters {twin} and {k}: metrics.csv's learned_err_{twin}, the error of {twin}, "
                 f"would also be the value of {k} (learned_{k}); rename {k}")
        for field_name in ("initial", "exact"):
            value = getattr(v, field_name)
            if value is None and field_name == "exact":
                continue
            try:
                number = complex(sp.sympify(value))
            except (TypeError, ValueError, sp.SympifyError):
                fail(f"Learned({field_name}={value!r}) is not a number")
            if number.imag != 0 or not math.isfinite(number.real):
                fail(f"Learned({field_name}={value!r}) must be a finite real number")
        if not isinstance(v.description, str):
            fail(f"Learned(description=...) must be a string, got {type(v.description).__name__}")

    def _check_region_variable(self, region: Region, call: str, kind: str, src: str, term: str) -> None:
        """A :class:`Face`'s or :class:`Periodic`'s variable: the domain's Symbol (``call``: how the
        region is written with it, for the message)."""
        if isinstance(region.var, str):
            raise SpecError(f"{type(region).__name__} takes the variable's Symbol, {call}, not the string "
                            f"{region.var!r}", spec=src, term=term)
        if region.var not in self.domain.bounds:
            raise SpecError(f"{kind} variable {region.var} is not a domain variable", spec=src, term=term)

    def _check_expr(self, expr: sp.Expr, term: str, src: str, *, allow_unknowns: bool,
                    functions: Sequence[sp.Expr] | None = None, what: str = "") -> None:
        """That ``expr`` is something pdec can compile: supported nodes and functions, the
        unknowns (or ``functions``, the applied functions it may hold) at the term's own point, no
        stray symbols. ``what`` names the expression in messages (the ansatz, or a residual with
        it put in)."""
        variables = set(self.domain.variables)
        unknowns = {u.func: u for u in (self.unknowns if functions is None else functions)}

        def fail(msg: str) -> None:
            raise SpecError(msg, spec=src, term=term)

        if isinstance(expr, sp.Equality):
            fail(f"{expr} is an equation; write its residual, lhs - rhs: {expr.lhs - expr.rhs}")
        if not isinstance(expr, sp.Expr):
            fail(f"{expr!r} is not a SymPy expression")
        if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            fail(f"non-finite constant in {what + ' ' if what else ''}{expr}")
        if expr.has(sp.I):
            fail(f"complex constant I in {expr}: residuals must be real (write a complex equation "
                 "as a system of its real and imaginary parts)")
        # what pdec can analyse and print: sums, products, powers, numbers, the variables, the
        # unknowns and their derivatives, and the functions of pdec.functions. Outermost first, so
        # a Piecewise is named, not the conditions inside it. Anything else (Max, Integral, Sum,
        # Subs, …) is refused here, not left to fail in codegen.
        for node in sp.preorder_traversal(expr):
            if isinstance(node, sp.Function) and not isinstance(node, AppliedUndef) and not is_supported_function(node):
                fail(f"unsupported function {type(node).__name__} in {node}"
                     + (f", in {what}: {expr} (an ansatz must be smooth in the network's output)" if what
                        else f" (supported: {_FUNCTIONS})"))
            if isinstance(node, (sp.Function, *_ALLOWED_NODES)):
                continue
            if what:   # e.g. sign(x), from the derivative of an ansatz with Abs
                fail(f"unsupported {type(node).__name__} in {node}, in {what}: {expr}")
            hint = (": write it with Abs, e.g. Max(a, b) = (a + b + Abs(a - b))/2"
                    if isinstance(node, (sp.Max, sp.Min)) else
                    " (pdec takes sums, products, powers, numbers, the variables, the unknowns, "
                    f"their derivatives and the functions {_FUNCTIONS})")
            fail(f"unsupported {type(node).__name__} in {node}{hint}")
        for f in sorted(expr.atoms(AppliedUndef), key=str):   # the same message every run
            owner = self._ansatz_owner(f) if functions is None else None
            if owner is not None and not allow_unknowns:
                fail(f"{f} is the network's output in the ansatz of {owner}: {term} must be an expression "
                     f"of the variables")
            if owner is not None:
                fail(f"{f} is the network's output in the ansatz of {owner}: write the residual in the "
                     f"unknown {owner}, and pdec puts the ansatz in")
            if f.func not in unknowns:
                fail(f"{f} is not a declared unknown (declared: "
                     f"{', '.join(str(u) for u in self.unknowns)})")
            if not allow_unknowns:
                fail(f"{f}: an exact solution must not contain unknowns")
            if f.args != unknowns[f.func].args:
                bad = [a for a in f.args if a not in variables]
                if bad and not all(isinstance(a, sp.Symbol) for a in bad):   # u(t, 0), u(x + 1, y)
                    moved = [v for v, a in zip(unknowns[f.func].args, f.args) if a != v]
                    var = moved[0] if len(moved) == 1 else "x"
                    fail(f"{f} evaluates the unknown away from its term's own point: a residual holds the "
                         f"unknown at each point of its region only, {unknowns[f.func]} and its derivatives. "
                         f"A value on a face is Condition({unknowns[f.func]} - g, on=Face({var}, 'min')); "
                         f"periodicity (equal values on the faces {var} = min and {var} = max) is "
                         f"Condition({unknowns[f.func]}, on=Periodic({var})); nonlocal conditions cannot be "
                         f"written")
                if bad:
                    fail(f"unknown {f} is applied to undeclared variable(s) {', '.join(map(str, bad))}")
                fail(f"{f} must be applied to the same variables as its declaration "
                     f"{unknowns[f.func]}")
        for d in expr.atoms(sp.Derivative):
            if not isinstance(d.expr, AppliedUndef):
                fail(f"derivative {d} must be of an unknown; expand it (sp.expand / .doit())")
            for v, _ in d.variable_count:
                if v not in variables:
                    fail(f"derivative {d} is taken w.r.t. undeclared variable {v}")
        stray = {s for s in expr.free_symbols if s not in variables}
        if allow_unknowns:   # a residual: the learned parameters are its symbols too
            stray -= set(self.learned)
        elif stray & set(self.learned):
            names = ", ".join(sorted(map(str, stray & set(self.learned))))
            fail(f"{term} contains the learned parameter(s) {names}, whose true value is not given: write "
                 f"Learned(initial, exact=value) to measure errors against the solution at that value")
        if stray:
            declared = {str(k) for k in self.parameters} | {str(v) for v in variables}
            twins = sorted(str(s) for s in stray if str(s) in declared)
            fail(f"undeclared symbol(s) {', '.join(sorted(map(str, stray)))}: declare them as "
                 "domain variables or give them a value in parameters"
                 + (f" ({', '.join(twins)} has the name of a declared variable or parameter but other SymPy "
                    f"assumptions, e.g. positive=True on one and not the other: use the same symbol)"
                    if twins else ""))


_FUNCTIONS = "exp, log, sin, cos, tan, sinh, cosh, tanh, asin, acos, atan, Abs, erf, sigmoid, softplus"
# SymPy node types a residual may consist of, besides the functions of pdec.functions
_ALLOWED_NODES = (sp.Add, sp.Mul, sp.Pow, sp.Symbol, sp.Number, sp.NumberSymbol, sp.Derivative,
                  sp.Tuple, AppliedUndef)


#: largest ``count_ops`` the spec's face tests simplify (larger expressions are taken as they are)
_SIMPLIFY_OPS = 400


def exact_bound(value) -> sp.Expr:
    """A box bound as SymPy: a float as the short rational it was written as (0.5 -> 1/2, 0.1 ->
    1/10) when that rational rounds to it; else the float itself (2 * math.pi stays a 53-bit Float,
    so a numeric check allows for its precision, not a nearby rational that is neither it nor 2π)."""
    value = sp.sympify(value)
    if not isinstance(value, sp.Float):
        return value
    simple = sp.nsimplify(value)
    return simple if float(simple) == float(value) else value


def _fixed_value(value: sp.Expr, f: sp.Expr) -> sp.Expr | None:
    """``value`` (an ansatz, or a derivative of it, at a bound) as the ansatz fixes it whatever the
    network's output ``f``: simplified where it still reads f and is small (u = b/v or log(v)·b at
    b = 0 gives 0; large values are not tried); None where it still reads f, or is undefined there
    (sin(x)/x·v at x = 0 is nan, and its limit holds v)."""
    if _reads(value, {f.func}) and sp.count_ops(value) <= _SIMPLIFY_OPS:
        value = sp.simplify(value)
    if _reads(value, {f.func}) or value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        return None
    return value


def _reads(expr: sp.Expr, functions: set) -> bool:
    """Whether ``expr`` applies one of ``functions`` (SymPy function classes) anywhere, at any
    arguments (v(1, x) as well as v(t, x))."""
    return any(g.func in functions for g in expr.atoms(AppliedUndef))


def _network_function(expr: sp.Expr, unknowns: set) -> sp.Expr:
    """The one applied function of an ansatz that is not an unknown (validated)."""
    return next(f for f in sorted(expr.atoms(AppliedUndef), key=str) if f not in unknowns)


def _boolean_leaves(expr: sp.Basic) -> list[sp.Basic]:
    """The operands under And, Or and Not (inequalities, in a valid ``where``)."""
    if isinstance(expr, (sp.And, sp.Or, sp.Not)):
        return [leaf for a in expr.args for leaf in _boolean_leaves(a)]
    return [expr]


def _exact_number(value):
    """A parameter's value for substitution: a float as the rational it prints as (0.25 -> 1/4),
    anything else as given."""
    return sp.nsimplify(value) if isinstance(value, float) else value


def _plain_name(name: str) -> bool:
    """Whether a SymPy name is a Python identifier (a keyword such as ``lambda`` is: the generated
    code names its local ``v_lambda``)."""
    return name.isidentifier()


def _sympify(value, label: str, src: str) -> sp.Basic:
    """``sp.sympify(value)``; a value SymPy cannot read is a SpecError naming ``label``."""
    try:
        return sp.sympify(value)
    except (sp.SympifyError, TypeError, ValueError) as exc:
        raise SpecError(f"{value!r} is not a SymPy expression ({type(exc).__name__})", spec=src,
                        term=label) from exc


def _check_weight(weight, term: str, key: str, src) -> None:
    """A term's weight (``key``: "weight" or "interior_weight") must be a finite positive number."""
    try:
        value = complex(sp.sympify(weight)) if not isinstance(weight, (bool, str)) else None
    except (TypeError, ValueError, sp.SympifyError):
        value = None
    if value is None or value.imag != 0 or not math.isfinite(value.real) or value.real <= 0:
        raise SpecError(f"{key} must be a positive number, such as {key}=10, got {weight!r} (it "
                        "multiplies the term's loss)", spec=src or "spec", term=term)


def _as_condition(name: str, cond, src) -> Condition:
    if isinstance(cond, Condition):
        return cond
    if isinstance(cond, tuple) and len(cond) == 2:
        return Condition(cond[0], cond[1])
    raise SpecError("condition has no region: write Condition(residual, on=Boundary())",
                    spec=src or "spec", term=f"condition {name}")
