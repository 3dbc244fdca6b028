"""Propagation plans: which quantities every layer carries, and the cheapest exact mode.

A plan is per loss term. Its *columns* are the quantities a linear layer multiplies (S of them,
MATH.md §3–§4): column 0 is the value, then (mode laplacian/collapsed) first-order directions
and collapsed channels, or (mode taylor) the Taylor coefficients ∂^α of the downward closure of
the needed multi-indices. Modes:

- ``value``: the term needs no derivative (S = 1);
- ``laplacian``: every derivative of order 2 enters through unit-weight (partial) Laplacians;
  when first-order terms would have to be folded into the channel for that (∂_t u − κ Δ_x u),
  forcing this mode gives them columns of their own instead (the paper's heat stack, S = d + 2);
- ``collapsed``: every derivative of order ≥ 2 enters through linear operators of order ≤ 2;
- ``taylor``: anything else (always valid).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import sympy as sp

from .analysis import Analysis, Atom, CollapsedSplit, Operator, TermAnalysis, multi_index_label, unique_name
from .errors import ModeError
from .text import math_text, name_list, shorter_form

MODES = ("auto", "laplacian", "collapsed", "taylor")


@dataclass(frozen=True)
class Column:
    """One propagated quantity. ``kind`` ∈ {"value", "direction", "channel", "taylor"}."""

    index: int
    kind: str
    label: str
    alpha: tuple[int, ...] | None = None  # taylor columns and axis directions
    channel: int | None = None


@dataclass(frozen=True)
class QuadForm:
    """The quadratic term Σ_ab Q_ab ∂_a h ∂_b h of a channel, over the direction block.

    kind "block": Q = weight · I on directions [start, stop) (e.g. the forward Laplacian);
    kind "matrix": a K × K SymPy matrix, constant or x-dependent (contracted per sample).
    """

    kind: str
    start: int = 0
    stop: int = 0
    weight: sp.Expr = sp.Integer(1)
    matrix: sp.Matrix | None = None

    @property
    def constant(self) -> bool:
        return self.matrix is None or not self.matrix.free_symbols


@dataclass(frozen=True)
class Channel:
    """A collapsed operator L = Σ b_i ∂_i + Σ C_ij ∂_ij propagated as one column."""

    operator: Operator
    quad: QuadForm | None
    description: str


@dataclass(frozen=True)
class FaaDiBrunoTerm:
    """coefficient · σ^(k)(h) · Π_B ∂^B h, with ``blocks`` the multi-indices B (k = len(blocks))."""

    coefficient: int
    blocks: tuple[tuple[int, ...], ...]


@dataclass
class TermPlan:
    """How one loss term is propagated and evaluated.

    Attributes:
        term: "interior" or a condition name.
        mode: "value", "laplacian", "collapsed" or "taylor".
        reason: why this mode (shown by ``pdec inspect``).
        columns: the S propagated quantities (column 0 = value).
        directions: seed vectors (length d, SymPy numbers) of the direction columns, in order.
        channels: the collapsed channels (laplacian/collapsed).
        taylor_rules: α -> Faà di Bruno terms of ∂^α σ(h) (taylor mode, order ≥ 1).
        output_columns: residual symbol name -> (column index, unknown index).
        residuals: the M residual expressions in output symbols and domain variables.
        needed: the atoms the residuals need, per unknown.
        graph: networkx DAG, edge a -> b when column b's activation rule reads column a
            (each column also reads itself through σ'(h) ∂h, not drawn).
    """

    term: str
    mode: str
    reason: str
    columns: list[Column]
    directions: list[tuple[sp.Expr, ...]] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    taylor_rules: dict[tuple[int, ...], list[FaaDiBrunoTerm]] = field(default_factory=dict)
    output_columns: dict[str, tuple[int, int]] = field(default_factory=dict)
    residuals: list[sp.Expr] = field(default_factory=list)
    needed: list[Atom] = field(default_factory=list)
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)

    @property
    def S(self) -> int:
        """Number of columns every linear layer multiplies."""
        return len(self.columns)

    @property
    def M(self) -> int:
        return len(self.residuals)

    @property
    def max_order(self) -> int:
        return max((a.order for a in self.needed), default=0)

    def column_slice(self, kind: str) -> tuple[int, int]:
        """[start, stop) of the contiguous block of columns of one kind."""
        idx = [c.index for c in self.columns if c.kind == kind]
        return (idx[0], idx[-1] + 1) if idx else (0, 0)


@dataclass
class Plan:
    """Plans of every term of a problem; ``mode``/``S`` are the interior's (the headline)."""

    analysis: Analysis
    terms: dict[str, TermPlan]

    @property
    def interior(self) -> TermPlan:
        return self.terms["interior"]

    @property
    def mode(self) -> str:
        return self.interior.mode

    @property
    def S(self) -> int:
        return self.interior.S

    @property
    def required_multi_indices(self) -> dict[str, list[tuple[int, ...]]]:
        """unknown name -> sorted multi-indices the interior residual needs."""
        out: dict[str, list[tuple[int, ...]]] = {}
        for a in sorted(self.interior.needed):
            out.setdefault(self.analysis.unknown_names[a.unknown], []).append(a.alpha)
        return out

    def describe(self) -> str:
        """A human-readable account of every term's plan (what ``pdec inspect`` prints)."""
        from .describe import describe_plan  # local: presentation only

        return describe_plan(self)


# ----------------------------------------------------------------------------- planning

def make_plan(analysis: Analysis, mode: str = "auto") -> Plan:
    """Choose and build the cheapest exact plan for every term.

    Args:
        analysis: output of :func:`pdec.analysis.analyse`.
        mode: "auto", or a mode forced for the interior residual ("laplacian", "collapsed",
            "taylor"); conditions always get their cheapest plan.

    Raises:
        ModeError: the forced mode cannot represent the interior residual exactly.
    """
    if mode not in MODES:
        raise ModeError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    terms = {}
    for name, ta in analysis.terms.items():
        terms[name] = _plan_term(ta, analysis, mode if name == "interior" else "auto")
    return Plan(analysis, terms)


def _plan_term(ta: TermAnalysis, analysis: Analysis, mode: str) -> TermPlan:
    if ta.max_order == 0:
        return _value_plan(ta, analysis)
    candidates: list[TermPlan] = []
    unfolded_plan: TermPlan | None = None
    if ta.split is not None:
        laplacian = all(op.is_partial_laplacian() for op in ta.split.operators)
        # The unfolded split leaves first-order terms (∂_t u of a heat equation) to columns of
        # their own, so that the second-order part alone may be a forward Laplacian.
        unfolded = ta.unfolded_split
        unfolded_laplacian = (not laplacian and unfolded is not None
                              and all(op.is_partial_laplacian() for op in unfolded.operators))
        if mode in ("auto", "laplacian", "collapsed"):
            if mode == "laplacian" and not (laplacian or unfolded_laplacian):
                ops = unfolded.operators if unfolded is not None else [
                    op for op in ta.split.operators if op.second_order_support]
                bad = next((op for op in ops if not op.is_partial_laplacian()), None)
                if bad is None:
                    raise ModeError(f"{ta.name}: mode 'laplacian' propagates second-order derivatives "
                                    "through Laplacians, but the residual has none; use 'collapsed' "
                                    "or 'taylor'")
                raise ModeError(f"{ta.name}: mode 'laplacian' needs the second-order derivatives to "
                                f"enter through unit-weight Laplacians only, but the residual contains "
                                f"{_op_str(bad, analysis)}; use 'collapsed' or 'taylor'")
            if mode != "laplacian" or laplacian:
                kind = "laplacian" if laplacian and mode != "collapsed" else "collapsed"
                candidates.append(_collapsed_plan(ta, ta.split, analysis, kind))
            if unfolded_laplacian and mode in ("auto", "laplacian"):
                unfolded_plan = _collapsed_plan(ta, unfolded, analysis, "laplacian")
                candidates.append(unfolded_plan)
    elif mode in ("laplacian", "collapsed"):
        raise ModeError(f"{ta.name}: mode {mode!r} cannot represent this residual exactly: "
                        f"{ta.why_not_collapsed}; use 'taylor' (always valid)")
    if mode in ("auto", "taylor"):
        candidates.append(_taylor_plan(ta, analysis))
    order = {"laplacian": 0, "collapsed": 1, "taylor": 2}
    # Fewest columns first; on a tie the folded split wins (its residual reads fewer columns at
    # the last layer, which the loss and the line search's trial passes pay for), then the mode.
    best = min(candidates, key=lambda p: (p.S, p is unfolded_plan, order[p.mode]))
    if mode == "auto":
        others = [p for p in candidates if p is not best]
        alt = "; ".join(f"{p.mode}{' with its first-order terms in own columns' if p is unfolded_plan else ''} "
                        f"would need S = {p.S}" for p in others)
        if best.mode == "taylor" and ta.split is None:
            alt = f"not collapsible: {ta.why_not_collapsed}"
        best.reason = f"{best.reason} (auto: cheapest exact plan; {alt})" if alt else best.reason
    else:
        best.reason = f"{best.reason} (forced by mode={mode!r})"
    return best


def _value_plan(ta: TermAnalysis, analysis: Analysis) -> TermPlan:
    plan = TermPlan(ta.name, "value", "the term needs no derivative", [Column(0, "value", "h")])
    plan.needed = sorted(ta.atoms)
    plan.residuals = list(ta.residuals)
    for a in ta.atoms:
        plan.output_columns[analysis.atom_name(a)] = (0, a.unknown)
    plan.graph.add_node("h")
    return plan


def _unit(d: int, i: int) -> tuple[sp.Expr, ...]:
    return tuple(sp.Integer(1 if j == i else 0) for j in range(d))


def _collapsed_plan(ta: TermAnalysis, split: CollapsedSplit, analysis: Analysis, mode: str) -> TermPlan:
    """A laplacian or collapsed plan from one collapsed split of the term (folded or unfolded)."""
    variables = analysis.variables
    d = len(variables)
    # Operators, as propagated: laplacian mode propagates the unit Laplacian and rescales.
    operators = list(split.operators)
    scales = [dict(s) for s in split.scales]
    if mode == "laplacian":
        for k, op in enumerate(operators):
            c = next(op.C[i][i] for i in range(d) if op.C[i][i] != 0)
            operators[k] = op.scaled(1 / c)
            for s in scales:
                for key in s:
                    if key[0] == k:
                        s[key] = s[key] * c
    # Directions: axes the remainder needs individually, then what the channels' quadratic
    # terms need (axes when they are already there or C is diagonal/x-dependent; else the
    # eigen-directions of a constant C, when that takes fewer columns).
    axes = sorted({a.alpha.index(1) for a in split.remainder_atoms if a.order == 1})
    axis_set = set(axes)
    eigen: list[tuple[tuple[sp.Expr, ...], sp.Expr]] = []  # (direction, eigenvalue)
    quad_src: list[tuple[str, object]] = []
    for op in operators:
        supp = op.second_order_support
        if not supp:
            quad_src.append(("none", None))
            continue
        C = sp.Matrix(op.C)
        diagonal = all(C[i, j] == 0 for i in range(d) for j in range(d) if i != j)
        missing = [i for i in supp if i not in axis_set]
        if op.is_constant and not diagonal and missing:
            lam, Q = np.linalg.eigh(np.array(C.evalf(30), dtype=float))
            keep = [k for k in range(d) if abs(lam[k]) > 1e-12 * max(1.0, abs(lam).max())]
            if len(keep) < len(missing):
                start = len(eigen)
                for k in keep:
                    eigen.append((tuple(sp.Float(v, 17) for v in Q[:, k]), sp.Float(lam[k], 17)))
                quad_src.append(("eigen", (start, len(eigen))))
                continue
        axis_set |= set(supp)
        quad_src.append(("axes", C))
    axes = sorted(axis_set)
    K = len(axes) + len(eigen)

    columns = [Column(0, "value", "h")]
    directions = []
    for i in axes:
        alpha = _unit(d, i)
        columns.append(Column(len(columns), "direction", f"∂_{variables[i]} h", alpha=tuple(int(a) for a in alpha)))
        directions.append(alpha)
    for k, (q, lam) in enumerate(eigen):
        columns.append(Column(len(columns), "direction", f"∂_q{k} h"))
        directions.append(q)

    channels = []
    for k, (op, (kind, src)) in enumerate(zip(operators, quad_src)):
        quad = None
        if kind == "eigen":
            start, stop = src
            lams = [eigen[j][1] for j in range(start, stop)]
            Qm = sp.zeros(K, K)
            for j, lam in zip(range(start, stop), lams):
                Qm[len(axes) + j, len(axes) + j] = lam
            quad = _classify_quad(Qm)
        elif kind == "axes":
            C = src
            Qm = sp.zeros(K, K)
            for a, i in enumerate(axes):
                for b, j in enumerate(axes):
                    Qm[a, b] = C[i, j]
            quad = _classify_quad(Qm)
        columns.append(Column(len(columns), "channel", f"L{k} h", channel=k))
        channels.append(Channel(op, quad, _op_str(op, analysis)))

    plan = TermPlan(ta.name, mode, "", columns, directions, channels)
    if mode == "laplacian" and not channels:
        plan.reason = ("the residual needs first-order derivatives only: the value and one column "
                       "per direction, the forward Laplacian's columns without a Laplacian")
    elif mode == "laplacian":
        plan.reason = ("every second-order derivative enters through unit-weight Laplacians "
                       "(forward Laplacian)")
        if split is ta.unfolded_split:
            plan.reason += "; its first-order terms read their own columns"
    elif not any(op.second_order_support for op in operators):
        plan.reason = ("the residual's derivatives are first-order and enter through linear operators "
                       "with unknown-free coefficients (collapsed: one channel per operator)")
    else:
        plan.reason = ("every derivative of order ≥ 2 enters through linear operators of order ≤ 2 "
                       "with unknown-free coefficients (collapsed)")
    atom_symbols = set(analysis.atom_symbols.values())
    if any(sp.sympify(f).free_symbols & atom_symbols for scale in scales for f in scale.values()):
        plan.reason += "; a factor of the values or first derivatives multiplies a channel in the residual"
    # residual symbols at the output: remainder atoms + one symbol per (channel, unknown)
    names = analysis.unknown_names
    axis_col = {i: 1 + a for a, i in enumerate(axes)}
    for a in split.remainder_atoms:
        col = 0 if a.order == 0 else axis_col[a.alpha.index(1)]
        plan.output_columns[analysis.atom_name(a)] = (col, a.unknown)
    residuals = []
    first_channel = 1 + K
    # L_k u as a symbol of the residual; its name must not be one the spec or an atom uses
    taken = analysis.taken_names()
    channel_symbols = {key: unique_name(f"L{key[0]}_{names[key[1]]}", taken)
                       for key in sorted({key for scale in scales for key in scale})}
    for scale, rem in zip(scales, split.remainders):
        r = rem
        for (k, m), s in sorted(scale.items()):
            sym = channel_symbols[k, m]
            plan.output_columns[sym] = (first_channel + k, m)
            r = r + s * sp.Symbol(sym)
        residuals.append(r)
    plan.residuals = residuals
    plan.needed = sorted(ta.atoms)
    g = plan.graph
    for c in columns:
        g.add_node(c.label, kind=c.kind)
    for c in columns[1:]:
        g.add_edge("h", c.label)  # σ^(k)(h) multiplies every derivative column
    dir_labels = [c.label for c in columns if c.kind == "direction"]
    for c, ch in zip([c for c in columns if c.kind == "channel"], channels):
        if ch.quad is not None:
            Qm = ch.quad.matrix if ch.quad.kind == "matrix" else None
            used = range(ch.quad.start, ch.quad.stop) if Qm is None else [
                a for a in range(K) if any(Qm[a, b] != 0 for b in range(K))]
            for a in used:
                g.add_edge(dir_labels[a], c.label)
    return plan


def _classify_quad(Qm: sp.Matrix) -> QuadForm | None:
    K = Qm.shape[0]
    nz = [(a, b) for a in range(K) for b in range(K) if Qm[a, b] != 0]
    if not nz:
        return None
    diag = [a for a, b in nz if a == b]
    if len(diag) == len(nz):
        weights = {Qm[a, a] for a in diag}
        if len(weights) == 1 and diag == list(range(diag[0], diag[-1] + 1)):
            w = weights.pop()
            if not w.free_symbols:
                return QuadForm("block", diag[0], diag[-1] + 1, w)
    return QuadForm("matrix", matrix=Qm)


def _taylor_plan(ta: TermAnalysis, analysis: Analysis) -> TermPlan:
    variables = analysis.variables
    d = len(variables)
    needed = {a.alpha for a in ta.atoms if a.order > 0}
    closure: set[tuple[int, ...]] = set()
    for alpha in needed:
        for beta in itertools.product(*(range(k + 1) for k in alpha)):
            if sum(beta) > 0:
                closure.add(tuple(beta))
    ordered = sorted(closure, key=lambda a: (sum(a), tuple(-k for k in a)))
    columns = [Column(0, "value", "h", alpha=(0,) * d)]
    for alpha in ordered:
        columns.append(Column(len(columns), "taylor", f"∂_{multi_index_label(alpha, variables)} h", alpha=alpha))
    plan = TermPlan(ta.name, "taylor",
                    f"Taylor mode over the downward closure of the needed multi-indices "
                    f"(order {ta.max_order})", columns)
    plan.directions = [_unit(d, i) for i in range(d) if _unit_alpha(d, i) in closure]
    for alpha in ordered:
        plan.taylor_rules[alpha] = faa_di_bruno(alpha)
    col_of = {c.alpha: c.index for c in columns}
    for a in ta.atoms:
        plan.output_columns[analysis.atom_name(a)] = (col_of[a.alpha], a.unknown)
    plan.residuals = list(ta.residuals)
    plan.needed = sorted(ta.atoms)
    g = plan.graph
    label = {c.alpha: c.label for c in columns}
    for c in columns:
        g.add_node(c.label, kind=c.kind)
    for alpha, rule in plan.taylor_rules.items():
        g.add_edge("h", label[alpha])
        for t in rule:
            for b in t.blocks:
                if b != alpha:  # σ'(h) ∂^α h: every column also reads itself
                    g.add_edge(label[b], label[alpha])
    return plan


def _unit_alpha(d: int, i: int) -> tuple[int, ...]:
    return tuple(1 if j == i else 0 for j in range(d))


def faa_di_bruno(alpha: tuple[int, ...]) -> list[FaaDiBrunoTerm]:
    """∂^α σ(h) = Σ_π σ^(|π|)(h) Π_{B∈π} ∂^B h over set partitions π of the directions of α.

    Partitions giving the same multiset of blocks are merged (their count is the coefficient).
    Returned terms are sorted by number of blocks, then by blocks.
    """
    d = len(alpha)
    dirs = [i for i in range(d) for _ in range(alpha[i])]
    counts: Counter = Counter()
    for partition in _set_partitions(list(range(len(dirs)))):
        blocks = []
        for block in partition:
            beta = [0] * d
            for pos in block:
                beta[dirs[pos]] += 1
            blocks.append(tuple(beta))
        counts[tuple(sorted(blocks, key=lambda b: (sum(b), tuple(-k for k in b))))] += 1
    terms = [FaaDiBrunoTerm(c, blocks) for blocks, c in counts.items()]
    return sorted(terms, key=lambda t: (-len(t.blocks), t.blocks))


def _set_partitions(items: list[int]):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in _set_partitions(rest):
        yield [[first]] + partition
        for i in range(len(partition)):
            yield partition[:i] + [[first] + partition[i]] + partition[i + 1:]


def _op_str(op: Operator, analysis: Analysis) -> str:
    """``L = -0.25 ∂_xx + ∂_t``-style text for an operator."""
    v = analysis.variables
    d = len(v)
    parts = []
    diag = [op.C[i][i] for i in range(d)]
    support = [i for i in range(d) if diag[i] != 0]
    off = any(op.C[i][j] != 0 for i in range(d) for j in range(d) if i != j)
    if len(support) > 1 and not off and len({diag[i] for i in support}) == 1:
        c = diag[support[0]]
        lap = f"Δ_({name_list([str(v[i]) for i in support])})"
        parts.append(lap if c == 1 else f"-{lap}" if c == -1 else f"({math_text(shorter_form(c))})·{lap}")
    for i in range(d) if not parts else ():
        for j in range(i, d):
            c = op.C[i][j] if i == j else 2 * op.C[i][j]
            if c != 0:
                parts.append(f"({math_text(shorter_form(c))})·∂_{v[i]}{v[j]}")
    for i in range(d):
        if op.b[i] != 0:
            parts.append(f"({math_text(shorter_form(op.b[i]))})·∂_{v[i]}")
    text = " + ".join(parts) if parts else "0"
    return text.replace("(1)·", "").replace("(-1)·", "-").replace(" + -", " - ")
