"""Analysis of residuals: which derivatives they need and which parts are collapsible operators.

Every derivative atom ``Derivative(u_m, ...)`` (and every unknown itself) is replaced by a plain
symbol; a multi-index ``alpha`` is a tuple of counts, one per domain variable, in domain order
(``(0, 2)`` is ∂²/∂x² on a domain (t, x)).

For each term (the interior, each condition) :func:`analyse_term` returns the atoms it needs and,
when it exists, its *collapsed split*

    r = Σ_(k,m) s_km · (L_k u_m) + remainder,    L_k = Σ_i b_i(x) ∂_i + Σ_ij C_ij(x) ∂_ij,

where b, C do not depend on the unknowns (nor on learned parameters: the factor s_km carries
those, and the unknowns' values and first derivatives, as in u Δu, so the operators stay fixed
columns of the propagation) and the remainder contains derivatives of order ≤ 1 only. The split
exists when no derivative has order > 2 and every second-order one enters linearly, with a
coefficient free of second derivatives that is one factor s_km times an operator's fixed
coefficient. First-order atoms that enter linearly with unknown-free coefficients are folded
into the operators (MATH.md §3), so they cost no column (not beside a factor s_km that is not a
number: they would rarely share it).
A second split, *unfolded*, keeps them in the remainder instead: its operators are purely
second order, which lets a residual such as ∂_t u − κ Δ_x u be propagated as a forward Laplacian
with ∂_t h as a column of its own (the paper's heat equation, S = d + 2).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sympy as sp
from sympy.core.function import AppliedUndef

from .spec import Problem


@dataclass(frozen=True, order=True)
class Atom:
    """∂^alpha u_m: a derivative (or, for alpha = 0, the value) of unknown ``m``."""

    unknown: int
    alpha: tuple[int, ...]

    @property
    def order(self) -> int:
        return sum(self.alpha)


@dataclass(frozen=True)
class Operator:
    """A linear differential operator L = Σ_i b_i ∂_i + Σ_ij C_ij ∂_ij (C symmetric, d × d).

    Coefficients are SymPy expressions of the domain variables (no unknowns, no learned parameters).
    """

    b: tuple[sp.Expr, ...]
    C: tuple[tuple[sp.Expr, ...], ...]

    @property
    def is_constant(self) -> bool:
        return all(not sp.sympify(c).free_symbols for c in self.coefficients())

    def coefficients(self) -> list[sp.Expr]:
        return list(self.b) + [c for row in self.C for c in row]

    @property
    def second_order_support(self) -> tuple[int, ...]:
        """Variables i whose row of C is non-zero."""
        return tuple(i for i, row in enumerate(self.C) if any(c != 0 for c in row))

    def scaled(self, s: sp.Expr) -> "Operator":
        return Operator(tuple(sp.expand(s * c) for c in self.b),
                        tuple(tuple(sp.expand(s * c) for c in row) for row in self.C))

    def ratio_to(self, other: "Operator") -> sp.Expr | None:
        """The constant s with self = s · other, or None when there is none."""
        pairs = list(zip(self.coefficients(), other.coefficients()))
        for a, b in pairs:
            if b != 0:
                s = sp.simplify(a / b)
                break
        else:
            return None
        if s.free_symbols or s == 0:
            return None
        if all(sp.simplify(a - s * b) == 0 for a, b in pairs):
            return s
        return None

    def is_partial_laplacian(self) -> bool:
        """b = 0 and C = c · diag(0/1) with a constant c (a weighted forward Laplacian)."""
        if any(c != 0 for c in self.b):
            return False
        d = len(self.C)
        diag = [self.C[i][i] for i in range(d)]
        nonzero = [c for c in diag if c != 0]
        if not nonzero or any(c.free_symbols for c in nonzero) or len(set(nonzero)) != 1:
            return False
        return all(self.C[i][j] == 0 for i in range(d) for j in range(d) if i != j)


@dataclass
class CollapsedSplit:
    """r_j = Σ_k Σ_m scale[j][(k, m)] (L_k u_m) + remainder[j], operators deduplicated; a scale
    may hold learned parameters and the unknowns' values and first derivatives (the residual
    reads those: ``remainder_atoms`` includes them)."""

    operators: list[Operator]
    scales: list[dict[tuple[int, int], sp.Expr]]
    remainders: list[sp.Expr]
    remainder_atoms: set[Atom]


@dataclass
class TermAnalysis:
    """What one loss term needs.

    Attributes:
        name: "interior" or the condition's name.
        residuals: the M residual expressions with atoms replaced by their symbols.
        atoms: every atom the residuals contain (values included).
        max_order: highest derivative order (0 for a pure value condition).
        split: the collapsed split, or None when the term is not collapsible.
        why_not_collapsed: a sentence saying why there is no split (None when there is one).
        unfolded_split: the split with linear first-order atoms left in the remainder; None when
            it equals ``split`` (no operator has a first-order part) or has no operator left.
    """

    name: str
    residuals: list[sp.Expr]
    atoms: set[Atom]
    max_order: int
    split: CollapsedSplit | None
    why_not_collapsed: str | None
    unfolded_split: CollapsedSplit | None = None


@dataclass
class Analysis:
    """The analysis of a whole problem: variables, the network's outputs (``unknown_names``: the
    unknowns, or for one with an ansatz the function it is written in), the atom symbols and every
    term."""

    problem: Problem
    variables: tuple[sp.Symbol, ...]
    unknown_names: tuple[str, ...]
    atom_symbols: dict[Atom, sp.Symbol]
    terms: dict[str, TermAnalysis] = field(default_factory=dict)

    @property
    def learned(self) -> frozenset[sp.Symbol]:
        """The learned parameters' symbols: they stay symbols of the residuals, and operators never
        contain them."""
        return frozenset(self.problem.learned)

    def atom_name(self, atom: Atom) -> str:
        return str(self.atom_symbols[atom])

    def taken_names(self) -> set[str]:
        """Names a new symbol of the residuals must avoid: the variables, unknowns, parameters
        and atom symbols (a fresh set)."""
        return ({str(v) for v in self.variables} | set(self.unknown_names)
                | {str(k) for k in self.problem.parameters} | {str(s) for s in self.atom_symbols.values()})


def multi_index_label(alpha: tuple[int, ...], variables: tuple[sp.Symbol, ...]) -> str:
    """``(1, 2)`` on (t, x) -> ``"txx"``; multi-letter variable names are joined by ``_``.

    The label is one-to-one on the multi-indices of one variable tuple, because it names locals of
    the generated code. Joined by ``_``, names split into ``_``-separated tokens, and a join reads
    one way only when no name's tokens begin another's (x_1, x_2: ``x_1_x_1`` is ∂²_{x_1}); with
    x, y and x_y, ``x_y`` could be ∂_x ∂_y or ∂_{x_y}, so the label is then positional:
    ``(1, 0, 2)`` -> ``"d1_0_2"``.
    """
    names = [str(v) for v in variables]
    if all(len(n) == 1 for n in names):
        return "".join(n for n, k in zip(names, alpha) for _ in range(k))
    tokens = [tuple(n.split("_")) for n in names]
    prefix_free = not any(a != b and b[:len(a)] == a for a in tokens for b in tokens)
    if not prefix_free:
        return "d" + "_".join(map(str, alpha)) if any(alpha) else ""
    return "_".join(n for n, k in zip(names, alpha) for _ in range(k))


def atom_symbol_name(atom: Atom, unknown_names: tuple[str, ...], variables: tuple[sp.Symbol, ...]) -> str:
    """The preferred name of an atom's symbol: ``u`` for the value, ``u_xx`` for ∂_xx u."""
    u = unknown_names[atom.unknown]
    if atom.order == 0:
        return u
    return f"{u}_{multi_index_label(atom.alpha, variables)}"


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_1``, ``base_2``, … : the first not in ``taken`` (which it is added to)."""
    name, k = base, 1
    while name in taken:
        name = f"{base}_{k}"
        k += 1
    taken.add(name)
    return name


def analyse(problem: Problem) -> Analysis:
    """Analyse every term of a validated problem (interior first, then conditions in order)."""
    variables = problem.variables
    unknowns = list(problem.outputs)   # the unknowns, or the functions their ansatzes are written in
    names = tuple(u.func.__name__ for u in unknowns)
    result = Analysis(problem, variables, names, {})

    def to_atom(node: sp.Expr) -> Atom:
        if isinstance(node, AppliedUndef):
            return Atom(unknowns.index(node), (0,) * len(variables))
        # SymPy keeps a variable that repeats out of order as separate entries:
        # Derivative(u, x, y, x).variable_count is ((x, 1), (y, 1), (x, 1)), i.e. ∂_xxy u
        counts = Counter()
        for v, k in node.variable_count:
            counts[v] += int(k)
        alpha = tuple(counts.get(v, 0) for v in variables)
        return Atom(unknowns.index(node.expr), alpha)

    def nodes(expr: sp.Expr) -> list[sp.Expr]:
        return list(expr.atoms(sp.Derivative)) + list(expr.atoms(AppliedUndef))

    # in the network's outputs: an unknown with an ansatz is replaced by it (product and chain rules)
    terms = [("interior", [problem.network_form(r) for r in problem.interior_residuals])]
    terms += [(name, [problem.network_form(r) for r in c.residuals]) for name, c in problem.condition_items.items()]
    # Name every atom before any term is symbolised, in a fixed order (the names are locals of the
    # generated code): the values keep the unknowns' names, and a derivative's name must not be
    # the name of a variable, an unknown, a parameter or another atom (an unknown ``u_t`` next to
    # ∂_t u, variables x, y and x_y), or SymPy would take the two for one symbol.
    taken = {str(v) for v in variables} | set(names) | {str(k) for k in problem.parameters}
    every = {to_atom(n) for _, residuals in terms for r in residuals for n in nodes(sp.sympify(r))}
    for atom in sorted(every, key=lambda a: (a.order, a.unknown, a.alpha)):
        preferred = atom_symbol_name(atom, names, variables)
        name = preferred if atom.order == 0 else unique_name(preferred, taken)
        result.atom_symbols[atom] = sp.Symbol(name)

    def symbolise(expr: sp.Expr) -> tuple[sp.Expr, set[Atom]]:
        # Derivatives first (their expr is an unknown, which must not be replaced inside them).
        repl = {node: result.atom_symbols[to_atom(node)] for node in nodes(expr)}
        atoms = {to_atom(node) for node in repl}
        derivs = {k: v for k, v in repl.items() if isinstance(k, sp.Derivative)}
        values = {k: v for k, v in repl.items() if not isinstance(k, sp.Derivative)}
        return expr.xreplace(derivs).xreplace(values), atoms

    for name, residuals in terms:
        symbolic, atoms = [], set()
        for r in residuals:
            s, a = symbolise(sp.sympify(r))
            symbolic.append(s)
            atoms |= a
        max_order = max((a.order for a in atoms), default=0)
        split, why = _collapsed_split(symbolic, atoms, result, len(variables))
        unfolded = None
        if split is not None and any(c != 0 for op in split.operators for c in op.b):
            unfolded, _ = _collapsed_split(symbolic, atoms, result, len(variables), fold_first_order=False)
            if unfolded is not None and not unfolded.operators:
                unfolded = None
        result.terms[name] = TermAnalysis(name, symbolic, atoms, max_order, split, why, unfolded)
    return result


def _collapsed_split(residuals: list[sp.Expr], atoms: set[Atom], analysis: Analysis, d: int,
                     fold_first_order: bool = True):
    """The collapsed split of a term's residuals, or (None, why not).

    ``fold_first_order=False`` leaves first-order atoms in the remainder (the unfolded split).
    """
    sym = analysis.atom_symbols
    learned = analysis.learned
    all_atom_syms = {sym[a] for a in atoms}
    second_syms = {sym[a] for a in atoms if a.order == 2}
    # what may multiply an operator in the residual without entering it: learned parameters, and
    # the values and first derivatives (u Δu, or e^w (Δw + |∇w|²) from the ansatz u = e^w)
    factors = learned | {sym[a] for a in atoms if a.order < 2}
    high = [a for a in atoms if a.order > 2]
    if high:
        a = min(high)
        return None, f"{sym[a]} has order {a.order} > 2"
    operators: list[Operator] = []
    scales, remainders = [], []
    remainder_atoms: set[Atom] = set()
    for r in residuals:
        r = sp.expand(r)
        per_unknown: dict[int, tuple[list, list]] = {}
        moved = []   # the atoms whose terms go into the operators
        present = sorted(a for a in atoms if sym[a] in r.free_symbols)
        # A learned parameter, value or first derivative in a second-order coefficient is factored
        # out of the operator below; a first-order part folded in beside it would rarely share the
        # factor (∂_t − κ ∂_xx), so the first-order atoms then stay in the remainder.
        fold = fold_first_order and not any(
            a.order == 2 and sp.diff(r, sym[a]).free_symbols & factors for a in present)
        for a in present:
            if a.order == 0 or (a.order == 1 and not fold):
                continue
            coeff = sp.expand(sp.diff(r, sym[a]))
            if a.order == 2 and coeff.free_symbols & second_syms:
                deps = sorted(str(s) for s in coeff.free_symbols & second_syms)
                return None, (f"{sym[a]} enters nonlinearly (its coefficient depends on "
                              f"{', '.join(deps)})")
            if a.order == 1 and coeff.free_symbols & (learned | all_atom_syms):
                continue   # u u_x, κ u_x: the remainder's
            b, C = per_unknown.setdefault(a.unknown, ([0] * d, [[0] * d for _ in range(d)]))
            idx = [i for i, k in enumerate(a.alpha) for _ in range(k)]
            if a.order == 1:
                b[idx[0]] += coeff
            elif idx[0] == idx[1]:
                C[idx[0]][idx[0]] += coeff
            else:
                C[idx[0]][idx[1]] += coeff / 2
                C[idx[1]][idx[0]] += coeff / 2
            moved.append(sym[a])
        # r is affine in the moved atoms jointly (their coefficients hold none of them), so its
        # remainder is r with them set to 0: one pass, not one expansion per atom
        remainder = r.xreplace({a: sp.Integer(0) for a in moved})
        scale: dict[tuple[int, int], sp.Expr] = {}
        for m, (b, C) in sorted(per_unknown.items()):
            op = Operator(tuple(sp.sympify(c) for c in b), tuple(tuple(sp.sympify(c) for c in row) for row in C))
            factor = sp.Integer(1)
            if any(sp.sympify(c).free_symbols & factors for c in op.coefficients()):
                factored = _factor_out(op, factors)
                if factored is None:
                    held = set().union(*(sp.sympify(c).free_symbols for c in op.coefficients()))
                    what = [f"{label} {', '.join(sorted(map(str, held & group)))}"
                            for label, group in (("the learned parameter(s)", learned),
                                                 ("the values or first derivatives", factors - learned))
                            if held & group]
                    return None, (f"the second-order coefficients of {analysis.unknown_names[m]} depend on "
                                  f"{' and '.join(what)}, and not as one factor times a fixed operator")
                factor, op = factored
            for k, existing in enumerate(operators):
                s = op.ratio_to(existing)
                if s is not None:
                    scale[(k, m)] = factor * s
                    break
            else:
                operators.append(op)
                scale[(len(operators) - 1, m)] = factor
        remainders.append(remainder)
        scales.append(scale)
        # the residual reads the remainder's atoms, and those of the factors in front of the channels
        read = remainder.free_symbols.union(*(sp.sympify(f).free_symbols for f in scale.values()))
        remainder_atoms |= {a for a in atoms if sym[a] in read}
    return CollapsedSplit(operators, scales, remainders, remainder_atoms), None


def _factor_out(op: Operator, symbols: set[sp.Symbol]) -> tuple[sp.Expr, Operator] | None:
    """op = s · op' with s the factor of op's first non-zero coefficient that holds ``symbols``
    (learned parameters, the unknowns' values and first derivatives) and op' free of them
    (κ·Δ -> (κ, Δ); (1 + κ)·x·∂_xx -> (1 + κ, x·∂_xx); e^w·Δ -> (e^w, Δ)); None when no such s
    exists (κ ∂_xx + λ ∂_yy)."""
    first = next(c for c in op.coefficients() if c != 0)
    s = sp.Mul(*[f for f in sp.Mul.make_args(sp.factor(first)) if f.free_symbols & symbols])
    rest = Operator(tuple(sp.simplify(c / s) for c in op.b),
                    tuple(tuple(sp.simplify(c / s) for c in row) for row in op.C))
    if any(sp.sympify(c).free_symbols & symbols for c in rest.coefficients()):
        return None
    return s, rest
