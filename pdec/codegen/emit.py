"""Plan -> the context the module template renders (code fragments are printed here)."""

from __future__ import annotations

import hashlib
import keyword
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from ..activations import Activation
from ..analysis import multi_index_label
from ..plan import Plan, TermPlan
from ..spec import Periodic
from ..text import math_text, name_list, shorter_form
from .predicate import predicate_code, without_outer_parentheses
from .printer import float_literal, print_torch, print_with_cse
from .render import KEEP_SPACE, code_wrap

# Names the templates give to module-level objects and to locals of the generated functions: a
# spec's variable or atom printed as a local must not shadow them (a variable named ``Zc`` or
# ``sigma_2`` would), so the Namer gives such a symbol another name.
RESERVED = {"self", "torch", "math", "X", "Z", "Zc", "N", "d", "out", "z", "dz", "seed", "columns",
            "nn", "horner_step", "tanh", "GeneratedPINN", "learned"}
RESERVED_PATTERN = re.compile(r"(s|c|q)\d+|sigma_\d+|[LQ]\d+h?|[az]_\w+")
S0 = sp.Symbol("s0")  # σ(h) in the generated activate_<term>_last, the variable of its polynomials


class Namer:
    """Gives each SymPy symbol a unique, valid Python identifier in one generated function."""

    def __init__(self, taken: set[str] | None = None):
        self.taken = set(RESERVED) | set(taken or ())
        self.names: dict[sp.Symbol, str] = {}

    def __call__(self, sym: sp.Symbol, preferred: str | None = None) -> str:
        if sym in self.names:
            return self.names[sym]
        base = preferred or str(sym)
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in base)
        if not base.isidentifier() or keyword.iskeyword(base) or RESERVED_PATTERN.fullmatch(base):
            base = f"v_{base}"
        name, k = base, 1
        while name in self.taken:
            name = f"{base}_{k}"
            k += 1
        self.taken.add(name)
        self.names[sym] = name
        return name


@dataclass
class Options:
    """Compile options that shape the generated file."""

    hidden: tuple[int, ...]
    activation: Activation
    mode: str
    out: str | None = None   # the output directory when it is not the default generated/ (header only)

    def header(self) -> str:
        return f"hidden={self.hidden}, activation={self.activation.name!r}, mode={self.mode!r}"

    def compile_args(self, spec_path: str) -> list[str]:
        """The ``pdec compile`` command line that writes this module: the options that differ
        from the defaults (a custom activation as its SymPy expression of z). Join with
        ``shlex.join``."""
        args = ["pdec", "compile", spec_path]
        if self.hidden != (64,):
            args += ["--hidden", ",".join(map(str, self.hidden))]
        if self.activation.name.startswith("custom"):
            args += ["--activation", sp.sstr(self.activation.expr)]
        elif self.activation.name != "tanh":
            args += ["--activation", self.activation.name]
        if self.mode != "auto":
            args += ["--mode", self.mode]
        if self.out is not None:
            args += ["--out", self.out]
        return args


def spec_display_path(source: str | None, name: str) -> str:
    """Path of the spec for headers: relative to the working directory when the spec lies below it
    (``specs/heat1d.py`` from the repository's root, wherever the repository is), else absolute, so
    that the header's ``pdec compile`` command finds the file from where it was run."""
    if not source:
        return f"<problem {name}>"
    p = Path(source).resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def docstring_text(text: str) -> str:
    """``text`` as it must appear inside a generated triple-quoted docstring to read back as itself:
    backslashes doubled (a spec's ``\\nabla`` would be a newline and ``\\Delta`` an invalid
    escape) and ``\"\"\"`` escaped (it would close the docstring)."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _wrappable_repr(value: tuple | dict) -> str:
    """repr of a flat tuple or dict whose spaces inside an item are :data:`~.render.KEEP_SPACE`, so
    that the template's ``wrap`` breaks lines only between items."""
    if isinstance(value, dict):
        items = [f"{k!r}: {v!r}" for k, v in value.items()]
        return "{" + ", ".join(i.replace(" ", KEEP_SPACE) for i in items) + "}"
    items = [repr(v).replace(" ", KEEP_SPACE) for v in value]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_")) + "PINN"


def _print_exprs(exprs, symbol_names: dict[sp.Symbol, str], prefix: str):
    """CSE + print expressions after renaming symbols to their local names."""
    rename = {s: sp.Symbol(n) for s, n in symbol_names.items()}
    assigns, results = print_with_cse([sp.sympify(e).xreplace(rename) for e in exprs], prefix=prefix,
                                      exclude=set(symbol_names.values()) | RESERVED)
    return assigns, results


def _ranges(columns: list[int]) -> str:
    """[0, 2, 3, 4] -> "0, 2–4": runs of consecutive stack columns, for docstrings."""
    runs: list[list[int]] = []
    for c in columns:
        if runs and c == runs[-1][-1] + 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in runs)


def _residual_context(plan: TermPlan, variables, names, observed: int = 0, learned=()) -> dict:
    """The residual function's lines. ``observed`` = M for a data term: its points carry the M
    observed values after the d coordinates, and component j returns q_j − obs_j. ``learned``:
    the learned parameters' symbols, read from the function's ``learned`` argument (by default
    ``self.learned``)."""
    namer = Namer()
    used = set().union(*(sp.sympify(r).free_symbols for r in plan.residuals)) if plan.residuals else set()
    var_lines = []
    for i, v in enumerate(variables):
        if v in used:
            var_lines.append((namer(v), f"X[..., {i}]", f"variable {v}"))
    for k in learned:
        if k in used:
            var_lines.append((namer(k), f"learned[{str(k)!r}]", f"learned parameter {k}"))
    observed_names = []   # component j of a data term returns q_j − obs_j
    for j in range(observed):
        name = namer(sp.Dummy(), "obs" if observed == 1 else f"obs{j}")
        observed_names.append(name)
        var_lines.append((name, f"X[..., {len(variables) + j}]",
                          "observed value" + (f" of component {j}" if observed > 1 else "")))
    out_lines = []
    for sym_name, (col, m) in sorted(plan.output_columns.items(), key=lambda kv: (kv[1], kv[0])):
        s = sp.Symbol(sym_name)
        if s in used:
            label = plan.columns[col].label.removesuffix(" h") + f" {names[m]}" if col else names[m]
            out_lines.append((namer(s), f"out[..., {col}, {m}]", label))
    assigns, results = _print_exprs(plan.residuals, namer.names, "c")
    # A component that does not involve the network (a constant, or a function of x only) is
    # broadcast to the samples' shape of ``out``, so X may come with fewer leading dims.
    outputs = {sp.Symbol(name) for name in plan.output_columns}
    results = [r if sp.sympify(e).free_symbols & outputs
               else f"torch.broadcast_to({r}, out.shape[:-2])" if sp.sympify(e).free_symbols
               else f"torch.full_like(out[..., 0, 0], {r})"
               for e, r in zip(plan.residuals, results)]
    read = sorted({col for name, (col, _) in plan.output_columns.items() if sp.Symbol(name) in used})
    exprs = [math_text(r) for r in plan.residuals]
    for j, name in enumerate(observed_names):   # "q - obs": the printed q is an expression, "-" binds last
        results[j] = f"{results[j]} - {name}"
        exprs[j] = f"{exprs[j]} - {name}"
    return {"variables": var_lines, "outputs": out_lines, "assigns": assigns, "results": results,
            "exprs": exprs, "read_columns": read or [0], "reads_learned": bool(used & set(learned)),
            "read_label": _ranges(read or [0])}


def _weight_context(weight: float) -> dict | None:
    """A condition's weight w ≠ 1 as printed: the residual is scaled by √w (None for w = 1)."""
    if weight == 1:
        return None
    text = str(int(weight)) if weight.is_integer() else repr(weight)
    return {"weight": text, "scale": repr(math.sqrt(weight))}


def _seed_context(plan: TermPlan, variables, d: int) -> dict:
    """Constant rows of Z⁽⁰⁾[1:] (built once in __init__) and x-dependent entries."""
    lines = []  # (code, comment) run in __init__ on a (S-1, d) zero tensor `seed`
    dir_cols = [c for c in plan.columns if c.kind == "direction" or (c.kind == "taylor" and sum(c.alpha) == 1)]
    axis_rows, axis_idx, other = [], [], []
    for c, vec in zip(dir_cols, plan.directions):
        nz = [j for j, v in enumerate(vec) if v != 0]
        if len(nz) == 1 and vec[nz[0]] == 1:
            axis_rows.append(c.index - 1)
            axis_idx.append(nz[0])
        else:
            other.append((c, vec))
    if axis_rows:
        a, b = axis_rows[0], axis_rows[-1] + 1
        assert axis_rows == list(range(a, b))
        eye = "torch.eye(d, dtype=dtype, device=device)"
        if axis_idx == list(range(d)):
            rhs = eye
        elif axis_idx == list(range(axis_idx[0], axis_idx[-1] + 1)):   # consecutive rows: a slice
            rhs = f"{eye}[{axis_idx[0]}:{axis_idx[-1] + 1}]"
        else:
            rhs = f"{eye}[{axis_idx}]"
        labels = name_list([f"∂_{variables[j]}" for j in axis_idx])
        lines.append((f"seed[{a}:{b}] = {rhs}", f"unit vectors e_i: the first-order directions {labels}"))
    for c, vec in other:
        lines.append((f"seed[{c.index - 1}] = torch.tensor([{', '.join(float_literal(v) for v in vec)}], "
                      "dtype=dtype, device=device)", f"eigen-direction {c.label[2:-2]} of the operator's C"))
    xdep = []
    namer = Namer()
    read = set()   # the variables the x-dependent coefficients read
    for c in plan.columns:
        if c.kind != "channel":
            continue
        op = plan.channels[c.channel].operator
        const = [(j, v) for j, v in enumerate(op.b) if v != 0 and not sp.sympify(v).free_symbols]
        if const:
            row = ["0.0"] * d
            for j, v in const:
                row[j] = repr(float(sp.N(v, 30)))
            if any(r != "0.0" for r in row):
                lines.append((f"seed[{c.index - 1}] = torch.tensor([{', '.join(row)}], dtype=dtype, device=device)",
                              f"L{c.channel} applied to the input map X ↦ X is b: the channel's first-order "
                              f"coefficients"))
        dep = [(j, v) for j, v in enumerate(op.b) if sp.sympify(v).free_symbols]
        if dep:
            names = {v: namer(v) for v in variables}
            read |= set().union(*(sp.sympify(v).free_symbols for _, v in dep))
            # computed once per batch: each as it reads best, factored where that is shorter
            # (−2y(2x − 1)(y − 1), not its expanded sum), without common-subexpression temporaries
            rename = {v: sp.Symbol(n) for v, n in names.items()}
            assigns, results = [], [print_torch(shorter_form(v).xreplace(rename)) for _, v in dep]
            xdep.append({"column": c.index, "channel": c.channel,
                         "assigns": assigns,
                         "entries": [(j, r, str(variables[j])) for (j, _), r in zip(dep, results)]})
    used_vars = [(namer.names[v], f"X[:, {i}]") for i, v in enumerate(variables) if v in read]
    return {"init_lines": lines, "xdep": xdep, "variables": used_vars}


def _quad_code(plan: TermPlan, k: int, term: str, variables) -> tuple[str, list, dict | None, dict]:
    """Channel k's quadratic term σ''(h) Σ_ab Q_ab ∂_a h ∂_b h (dz: the directions, (..., K, h)).

    Returns (signed code of the whole term, x-dependent Q lines, constant-Q buffer, the form
    {"weight": w, "body": code of Σ_ab Q'_ab ∂_a h ∂_b h} with Q = w Q').
    """
    q = plan.channels[k].quad
    if q.kind == "block":
        n_dir = sum(c.kind == "direction" for c in plan.columns)
        block = "dz" if (q.start, q.stop) == (0, n_dir) else f"dz[..., {q.start}:{q.stop}, :]"
        body = f"{block}.pow(2).sum(-2)"
        sign = "-" if q.weight < 0 else "+"
        w = abs(q.weight)
        labels = [plan.columns[c + 1].label for c in range(q.start, q.stop)]
        label = (" + ".join(f"({lab})²" for lab in labels) if len(labels) <= 3
                 else f"Σ_a (∂_a h)² over columns {q.start + 1}–{q.stop}")
        weight = sp.sympify(q.weight)
        if weight.is_Float and float(weight).is_integer():
            weight = sp.Integer(int(weight))
        form = {"weight": weight, "body": body, "label": label}
        return f"{sign} {'' if w == 1 else float_literal(w) + ' * '}s2 * {body}", [], None, form
    if q.constant:
        body = f"torch.einsum(\"...ah,ab,...bh->...h\", dz, self.{term}_Q{k}, dz)"
        return f"+ s2 * {body}", [], {
            "name": f"{term}_Q{k}",
            "rows_code": "[" + ", ".join(
                "[" + ", ".join(float_literal(q.matrix[a, b]) for b in range(q.matrix.shape[1])) + "]"
                for a in range(q.matrix.shape[0])) + "]"}, {"weight": sp.Integer(1), "body": body,
                                                          "label": "Σ_ab Q_ab ∂_a h ∂_b h"}
    # x-dependent: per-sample Q (N, K, K), rebuilt from the printed entries; the Namer keeps the
    # spec's variables off the names the activate functions use around this block (s0, L0h, Q0, …)
    K = q.matrix.shape[0]
    namer = Namer()
    names = {v: namer(v) for v in variables}
    if all(q.matrix[a, b] == 0 for a in range(K) for b in range(K) if a != b):
        return _diagonal_quad_code(q, k, K, names, namer, variables)
    entries = [(a, b) for a in range(K) for b in range(K) if q.matrix[a, b] != 0]
    assigns, results = _print_exprs([q.matrix[a, b] for a, b in entries], names, "q")
    read = set().union(*(sp.sympify(q.matrix[a, b]).free_symbols for a, b in entries))
    used = [(namer.names[v], f"X[..., {i}]") for i, v in enumerate(variables) if v in read]
    lines = {"variables": used, "assigns": assigns, "entries": list(zip(entries, results)), "K": K, "diagonal": None}
    body = f"torch.einsum(\"...ah,...ab,...bh->...h\", dz, Q{k}, dz)"
    return f"+ s2 * {body}", lines, None, {"weight": sp.Integer(1), "body": body,
                                           "label": "Σ_ab Q_ab(x) ∂_a h ∂_b h"}


def _diagonal_quad_code(q, k: int, K: int, names: dict, namer, variables) -> tuple[str, dict, None, dict]:
    """An x-dependent diagonal Q(x): Σ_a Q_aa(x) (∂_a h)², without a per-sample K × K matrix.
    Q = q(x)·I (the same coefficient on every direction) is one value per sample ``Q{k}`` (...);
    otherwise ``Q{k}`` (..., K) holds the diagonal."""
    diagonal = [sp.sympify(q.matrix[a, a]) for a in range(K)]
    isotropic = all(sp.simplify(e - diagonal[0]) == 0 for e in diagonal[1:])
    exprs = diagonal[:1] if isotropic else diagonal
    assigns, results = _print_exprs(exprs, names, "q")
    read = set().union(*(e.free_symbols for e in exprs))
    used = [(namer.names[v], f"X[..., {i}]") for i, v in enumerate(variables) if v in read]
    if isotropic:
        code, body, label = results[0], f"Q{k}[..., None] * dz.pow(2).sum(-2)", "q(x) Σ_a (∂_a h)²"
    else:   # a constant entry (one without x) is broadcast to the samples' shape
        first = used[0][0] if used else "X[..., 0]"
        columns = [r if e.free_symbols else f"torch.full_like({first}, {r})" for e, r in zip(exprs, results)]
        code = f"torch.stack([{', '.join(columns)}], dim=-1)"
        body, label = f"(Q{k}[..., :, None] * dz.pow(2)).sum(-2)", "Σ_a Q_aa(x) (∂_a h)²"
    lines = {"variables": used, "assigns": assigns, "diagonal": code, "isotropic": isotropic, "K": K}
    return f"+ s2 * {body}", lines, None, {"weight": sp.Integer(1), "body": body, "label": label}


def _split_context(plan: TermPlan) -> dict:
    """How ``activate_<term>`` unpacks a laplacian/collapsed stack with one ``Z.split``: the value
    column ``z``, the block of directions ``dz`` and each channel's column ``L{k}h``, in column
    order. One split (its backward is one concatenation) instead of an index per column (each
    index's backward fills a zero stack)."""
    names, sizes, labels = [], [], []
    for c in plan.columns:
        if c.kind == "direction" and names and names[-1] == "dz":
            sizes[-1] += 1
            continue
        if c.kind == "value":
            names.append("z"), labels.append("value h")
        elif c.kind == "direction":
            names.append("dz"), labels.append("first-order directions ∂_a h")
        elif c.kind == "channel":
            names.append(f"L{c.channel}h"), labels.append(f"L{c.channel} h")
        else:
            raise AssertionError(f"unexpected column kind {c.kind!r} in a {plan.mode} stack")
        sizes.append(1)
    if names.count("dz") > 1 or names[0] != "z":
        raise AssertionError(f"the {plan.mode} stack's columns are not value, directions, channels")
    single = [n for n in names if n != "dz"]
    return {"names": names, "sizes": sizes, "labels": labels, "single": single,
            # the single columns as (..., h): `z, L0h = z.squeeze(-2), L0h.squeeze(-2)`
            "squeeze_code": f"{', '.join(single)} = {', '.join(f'{n}.squeeze(-2)' for n in single)}"}


def _activation_context(plan: TermPlan, term: str, variables) -> dict:
    ctx = {"mode": plan.mode, "buffers": []}
    if plan.mode == "value":
        return ctx
    if plan.mode in ("laplacian", "collapsed"):
        a, b = plan.column_slice("direction")
        ctx["dir_slice"] = (a, b) if b > a else None
        channels, buffers = [], ctx["buffers"]
        for c in plan.columns:
            if c.kind != "channel":
                continue
            ch = plan.channels[c.channel]
            entry = {"column": c.index, "k": c.channel, "description": ch.description, "quad": None,
                     # MATH.md §3: the forward Laplacian's channel, or a weighted collapsed operator
                     "kind": ("first-order channel" if ch.quad is None
                              else "Laplacian channel" if plan.mode == "laplacian" else "collapsed channel"),
                     "xdep": None, "quad_form": None}
            if ch.quad is not None:
                code, xdep, buf, form = _quad_code(plan, c.channel, term, variables)
                entry["quad"] = code
                entry["quad_form"] = form
                entry["xdep"] = xdep or None
                if buf:
                    buffers.append(buf)
            channels.append(entry)
        ctx["channels"] = channels
        ctx["split"] = _split_context(plan)
        stacked = ["s0[..., None, :]", *(["s1[..., None, :] * dz"] if ctx["dir_slice"] else []),
                   *(f"L{ch['k']}[..., None, :]" for ch in channels)]
        # spaces inside one column's code are KEEP_SPACE: the template breaks only between columns
        ctx["columns_code"] = "columns = [" + ", ".join(c.replace(" ", KEEP_SPACE) for c in stacked) + "]"
        ctx["order"] = 2 if any(ch["quad"] for ch in channels) else 1
        _sigma_names(ctx)
        return ctx
    # taylor
    names = {}
    for c in plan.columns[1:]:
        names[c.alpha] = multi_index_label(c.alpha, variables)
    rules = []
    for alpha, terms in plan.taylor_rules.items():
        parts, math_parts = [], []
        for t in terms:
            k = len(t.blocks)
            factors = []
            for beta in sorted(set(t.blocks), key=t.blocks.index):
                p = t.blocks.count(beta)
                factors.append(f"z_{names[beta]}" + (f"**{p}" if p > 1 else ""))
            coeff = f"{t.coefficient} * " if t.coefficient != 1 else ""
            parts.append(f"{coeff}s{k} * " + " * ".join(factors))
            mf = " ".join(f"(∂_{names[beta]} h){_superscript(t.blocks.count(beta))}" if t.blocks.count(beta) > 1
                          else f"∂_{names[beta]} h" for beta in sorted(set(t.blocks), key=t.blocks.index))
            math_parts.append(f"{t.coefficient if t.coefficient != 1 else ''}σ{_primes(k)} {mf}")
        # a term's spaces are KEEP_SPACE: the template wraps long rules only between terms (and
        # inside a term only when the term alone is too long for a line: long variable names)
        keep = lambda term: term.replace(" ", KEEP_SPACE) if len(term) <= 60 else term   # noqa: E731
        rules.append({"name": names[alpha], "code": " + ".join(keep(p) for p in parts),
                      "column": next(c.index for c in plan.columns if c.alpha == alpha),
                      "math": f"∂_{names[alpha]} σ(h) = " + " + ".join(keep(m) for m in math_parts)})
    ctx["unpack"] = [f"z_{names[c.alpha]}" for c in plan.columns[1:]]
    ctx["rules"] = rules
    ctx["stacked"] = ["s0", *(f"a_{r['name']}" for r in rules)]   # the columns activate_<term> returns
    ctx["order"] = plan.max_order
    _sigma_names(ctx)
    return ctx


def _derivative_polynomials(activation: Activation, order: int) -> list[sp.Expr] | None:
    """[σ', …, σ^(order)] as polynomials in s0 = σ(z) (tanh: σ' = 1 − s0²), or None when some
    derivative is not one (sin: σ' = cos z)."""
    out = []
    for d in activation.derivatives(order)[1:]:
        e = sp.expand(d.xreplace({activation.expr: S0}))
        if e.free_symbols - {S0} or not e.is_polynomial(S0):
            return None
        out.append(e)
    return out


def _horner_column(name: str, parts: list[tuple[sp.Expr, sp.Expr]]) -> tuple[list[str], str] | None:
    """Code lines that evaluate Σ P(s0)·c over ``parts`` [(P: a polynomial in s0 = σ(h), c: its
    tensor coefficient)] into ``name`` by Horner's rule, and the polynomial as text; None for
    degree 0 (no s0: the result would not have the samples' shape)."""
    polys = [(sp.Poly(P, S0), c) for P, c in parts]
    degree = max(P.degree() for P, _ in polys)
    if degree < 1:
        return None
    coeffs = [sum((P.coeff_monomial(S0**k) * c for P, c in polys), sp.Integer(0))
              for k in range(degree, -1, -1)]  # highest power first
    p = lambda e: print_with_cse([e])[1][0]
    lines = [f"{name} = {p(coeffs[0])}"]
    v = str(S0)
    for i, c in enumerate(coeffs[1:]):
        if i == 0:  # the first product has the samples' shape: a new tensor
            lines.append(f"{name} = {name} * {v}" if c == 0 else f"{name} = torch.addcmul({p(c)}, {v}, {name})")
        else:  # later steps: in place when autograd is off (runtime.horner_step)
            lines.append(f"{name} = horner_step({name}, {v})" if c == 0 else f"{name} = horner_step({name}, {v}, {p(c)})")
    terms = []
    for k, c in enumerate(reversed(coeffs)):
        if c == 0:
            continue
        coef = math_text(c) if k == 0 or c.is_Symbol else f"({math_text(c)})"
        terms.append(coef if k == 0 else f"{coef}·{v}" + ("" if k == 1 else _superscript(k)))
    return lines, " + ".join(terms)


def _last_layer_context(plan: TermPlan, act: dict, read: list[int],
                        polys: list[sp.Expr] | None) -> dict:
    """What ``activate_<term>_last`` computes: per column the residual reads, the code of that
    output column (..., h) of σ applied to the stack, and whether the directions dz are needed.

    When σ', σ'' are polynomials in s0 = σ(h) (``polys``), each read column of a laplacian or
    collapsed stack is a polynomial in s0 whose coefficients come from the stack, evaluated by
    Horner's rule ("horner" blocks): one σ and a fused multiply-add per degree, instead of
    forming σ', σ'' and their products (the line search runs this on every trial's stack).
    """
    out, need_dz, channels = [], False, []
    if plan.mode in ("laplacian", "collapsed"):
        horner = polys is not None and _horner_blocks(plan, act, read, polys)
        if horner:
            needs_s1 = any(b.get("needs_s1") for b in horner)
            columns = [b["result"] for b in horner]
            return {"columns": columns, "return_code": _return_code(columns), "horner": horner,
                    "s1_code": print_with_cse([polys[0]])[1][0] if needs_s1 else None,
                    "need_dz": any(b["channel"] and b["channel"]["quad"] for b in horner),
                    # σ'' only where a channel's polynomial uses it (not for first-order columns alone)
                    "polys": ", ".join(f"σ{_primes(k)} = {math_text(e)}" for k, e in
                                       enumerate(polys if any(b.get("poly") for b in horner) else polys[:1], 1)),
                    "channels": []}
        by_column = {ch["column"]: ch for ch in act["channels"]}
        for col in read:
            if col == 0:
                out.append("s0")
            elif col in by_column:
                ch = by_column[col]
                channels.append(ch)
                need_dz = need_dz or ch["quad"] is not None
                out.append(f"L{ch['k']}")
            else:
                out.append(f"s1 * Zc[..., {col - 1}, :]")
    elif plan.mode == "taylor":
        rules = {r["column"]: r for r in act["rules"]}
        out = ["s0" if col == 0 else f"a_{rules[col]['name']}" for col in read]
        channels = [rules[col] for col in read if col != 0]
    return {"columns": out, "return_code": _return_code(out), "need_dz": need_dz, "channels": channels,
            "horner": None}


_FIRST_ORDER = re.compile(r"s1 \* Zc\[\.\.\., (\d+), :\]")


def _return_code(columns: list[str]) -> str:
    """The expression ``activate_<term>_last`` returns: its read columns (each (..., h)) as one
    (..., n, h) stack. A run of consecutive first-order columns ``s1 * Zc[..., c, :]`` becomes one
    product ``s1[..., None, :] * Zc[..., a:b, :]``, joined to the rest by ``torch.cat``."""
    parts: list[tuple[str, int | None, int | None]] = []   # (code, first Zc index, last) of each part
    for code in columns:
        m = _FIRST_ORDER.fullmatch(code)
        c = int(m.group(1)) if m else None
        if c is not None and parts and parts[-1][2] == c - 1:
            parts[-1] = (parts[-1][0], parts[-1][1], c)
        else:
            parts.append((code, c, c))
    if len(parts) == len(columns):   # no run: one column, or a stack of single columns
        if len(columns) == 1:
            col = columns[0]
            return f"{'(' + col + ')' if ' ' in col else col}[..., None, :]"
        return f"torch.stack([{', '.join(columns)}], dim=-2)"
    pieces = []
    for code, a, b in parts:
        if a is not None and b > a:
            pieces.append(f"s1[..., None, :] * Zc[..., {a}:{b + 1}, :]")
        else:
            pieces.append(f"{'(' + code + ')' if ' ' in code else code}[..., None, :]")
    return f"torch.cat([{', '.join(pieces)}], dim=-2)"


def _horner_blocks(plan: TermPlan, act: dict, read: list[int], polys: list[sp.Expr]) -> list[dict] | None:
    """Per read column: its inputs, the polynomial in s0 and the Horner lines (see
    :func:`_last_layer_context`); None if some column is of degree 0 in s0."""
    by_column = {ch["column"]: ch for ch in act["channels"]}
    blocks = []
    for col in read:
        if col == 0:
            blocks.append({"result": "s0", "channel": None, "inputs": [], "lines": [], "comment": None,
                           "poly": None})
            continue
        if col in by_column:
            ch = by_column[col]
            k = ch["k"]
            h_name, result = f"L{k}h", f"L{k}"
            inputs = [(h_name, f"Zc[..., {col - 1}, :]", f"L{k} h (column {col})")]
            parts = [(polys[0], sp.Symbol(h_name))]
            comment = f"{ch['kind']} L{k} = {ch['description']}: σ'(h) L h"
            if ch["quad_form"] is None:   # first order: σ'(h) L h, one product with σ' = s1
                blocks.append({"result": result, "channel": ch, "inputs": inputs, "comment": comment,
                               "lines": [f"{result} = s1 * {h_name}"], "poly": None, "needs_s1": True})
                continue
            form = ch["quad_form"]
            q_name = f"Q{k}h"
            inputs.append((q_name, form["body"], form["label"]))
            parts.append((polys[1], form["weight"] * sp.Symbol(q_name)))
            w = form["weight"]
            comment += (f" + σ''(h) {q_name}" if w == 1 else f" - σ''(h) {q_name}" if w == -1
                        else f" + σ''(h) ({math_text(w)}) {q_name}")
        else:  # a first-order direction: σ'(h) ∂_a h, with σ' formed once (shared by all of them)
            blocks.append({"result": f"s1 * Zc[..., {col - 1}, :]", "channel": None, "inputs": [],
                           "lines": [], "comment": None, "poly": None, "needs_s1": True})
            continue
        horner = _horner_column(result, parts)
        if horner is None:
            return None
        lines, poly = horner
        blocks.append({"result": result, "channel": ch, "inputs": inputs, "lines": lines,
                       "comment": comment, "poly": poly})
    return blocks


def _superscript(k: int) -> str:
    """k as a superscript for comments: 2 -> "²", 12 -> "¹²"."""
    return str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _sigma_names(ctx: dict) -> None:
    k = ctx["order"]
    ctx["sigma_names"] = ", ".join(f"s{i}" for i in range(k + 1))
    ctx["sigma_math"] = ", ".join(["σ"] + [f"σ{_primes(i)}" for i in range(1, k + 1)])


def _primes(k: int) -> str:
    return {1: "'", 2: "''", 3: "'''"}.get(k, f"^({k})")


def _sigma_context(activation: Activation, order: int) -> dict:
    # temporaries w_k, not s_k: the callers name σ, σ', σ'' as s0, s1, s2, and tanh's s_1 = s_0² − 1 is −σ'
    exprs = activation.derivatives(order)
    assigns, results = print_with_cse(exprs, prefix="w_")
    return {"order": order, "assigns": assigns, "results": results,
            "math": ", ".join(["σ"] + [f"σ{_primes(k)}" for k in range(1, order + 1)])}


def _pair_context(problem, name: str) -> dict | None:
    """For a condition on :class:`~pdec.spec.Periodic`: its variable's column and faces, else None."""
    region = problem.condition_items[name].on if name != "interior" else None
    if not isinstance(region, Periodic):
        return None
    column = problem.variables.index(region.var)
    lo, hi = problem.domain.interval(region.var)
    lo_text, hi_text = (math_text(sp.sympify(b)) for b in problem.domain.bounds[region.var])
    return {"var": str(region.var), "entry": (column, lo, hi),
            "text": f"{region.var} = {lo_text} paired with {region.var} = {hi_text}"}


def build_context(plan: Plan, options: Options, version: str, source_hash: str) -> dict:
    """Everything the module template needs, printed and ordered deterministically."""
    a = plan.analysis
    problem = a.problem
    variables = a.variables
    d = len(variables)
    terms = []
    orders = set()
    polys = _derivative_polynomials(options.activation, 2)
    weights = problem.weights
    observed = problem.data_conditions
    for name, tp in plan.terms.items():
        act = _activation_context(tp, name, variables)
        if tp.mode != "value":
            orders.add(act["order"])
        residual = _residual_context(tp, variables, a.unknown_names, observed.get(name, 0), tuple(problem.learned))
        residual["weight"] = _weight_context(weights[name])
        terms.append({
            "name": name, "mode": tp.mode, "S": tp.S, "M": tp.M,
            # one item per column, never broken inside by the template's wrap
            "columns": name_list([f"[{c.index}] {c.label}".replace(" ", KEEP_SPACE) for c in tp.columns]),
            "channels": [f"L{k} = {ch.description}" for k, ch in enumerate(tp.channels)],
            "seed": _seed_context(tp, variables, d) if tp.S > 1 else None,
            "activation": act,
            "last": _last_layer_context(tp, act, residual["read_columns"], polys),
            "residual": residual,
            "region": (problem.condition_items[name].on.describe() if name != "interior" else "interior"),
            "pair": _pair_context(problem, name),
            "observed": observed.get(name, 0),
        })
    exact = None
    if problem.exact_solution:
        namer = Namer()
        names = {v: namer(v) for v in variables}
        sol = problem.exact_solution
        given = [u for u in problem.unknowns if u in sol]   # all, or the ones the spec gives
        exprs = [sol[u] for u in given]
        assigns, results = _print_exprs(exprs, names, "c")
        results = [r if sp.sympify(e).free_symbols else f"torch.full_like(X[..., 0], {r})"
                   for e, r in zip(exprs, results)]
        used = set().union(*(sp.sympify(e).free_symbols for e in exprs))
        exact = {"variables": [(names[v], f"X[..., {i}]") for i, v in enumerate(variables) if v in used],
                 "assigns": assigns, "results": results,
                 "exprs": [f"{u.func}({name_list([str(v) for v in u.args])}) = {math_text(e)}"
                           for u, e in zip(given, exprs)],
                 "M": len(given),
                 "unknowns": (_wrappable_repr(tuple(str(u.func) for u in given))
                              if len(given) < len(problem.unknowns) else None)}
    ansatz = _ansatz_context(problem, variables) if problem.ansatz_items else None
    where = None
    if problem.where is not None:
        namer = Namer()
        names = {v: namer(v) for v in variables}
        where_vars, where_code = predicate_code(problem.where, variables, names)
        if len("        return ") + len(where_code) <= 100:   # one line: no parentheses needed
            where_code = without_outer_parentheses(where_code)
        elif isinstance(problem.where, (sp.And, sp.Or)):   # one operand per line, the operator first
            op = "&" if isinstance(problem.where, sp.And) else "|"
            parts = [code_wrap(predicate_code(a, variables, names)[1], 18, 20) for a in problem.where.args]
            where_code = "(" + f"\n{' ' * 16}{op} ".join(parts) + ")"
        where = {"variables": where_vars, "code": where_code, "text": math_text(problem.where),
                 "box": problem.domain.describe()}
    spec_path = spec_display_path(problem.source, problem.name)
    regen = shlex.join(options.compile_args(spec_path))
    py = {
        "variables": _wrappable_repr(tuple(str(v) for v in variables)),
        "unknowns": _wrappable_repr(tuple(u.func.__name__ for u in problem.unknowns)),
        "outputs": _wrappable_repr(tuple(a.unknown_names)) if ansatz else None,
        "domain": _wrappable_repr({str(v): problem.domain.interval(v) for v in variables}),
        "time": repr(str(problem.domain.time)) if problem.domain.time is not None else "None",
        "term_names": _wrappable_repr(tuple(plan.terms)),
        "condition_names": _wrappable_repr(tuple(n for n in plan.terms if n != "interior")),
        "modes": _wrappable_repr({n: t.mode for n, t in plan.terms.items()}),
        "S": _wrappable_repr({n: t.S for n, t in plan.terms.items()}),
        "residual_columns": repr({t["name"]: tuple(t["residual"]["read_columns"]) for t in terms}),
        "point_seeds": repr(tuple(t["name"] for t in terms if t["seed"] and t["seed"]["xdep"])),
        "periodic": (_wrappable_repr({t["name"]: t["pair"]["entry"] for t in terms if t["pair"]})
                     if any(t["pair"] for t in terms) else None),
        "observed": _wrappable_repr(observed) if observed else None,
        "learned": (_wrappable_repr({str(k): float(v.initial) for k, v in problem.learned.items()})
                    if problem.learned else None),
        "learned_exact": (_wrappable_repr({str(k): float(v.exact) for k, v in problem.learned.items()
                                           if v.exact is not None})
                          if any(v.exact is not None for v in problem.learned.values()) else None),
        "activation": repr(options.activation.name),
        "hidden": repr(tuple(options.hidden)),
    }
    return {
        "py": py,
        "version": version, "hash": source_hash, "spec_path": spec_path, "regen": regen,
        "options": options.header(), "name": problem.name, "class_name": class_name(problem.name),
        "description": docstring_text(problem.description.strip()),
        "variables_text": name_list([str(v) for v in variables]),
        "unknowns": [u.func.__name__ for u in problem.unknowns], "outputs": list(a.unknown_names),
        "d": d, "m": len(a.unknown_names), "ansatz": ansatz,
        # for the docstrings: "z*tanh(z)", not the record's name "custom(z*tanh(z))"
        "activation": (sp.sstr(options.activation.expr) if options.activation.name.startswith("custom")
                       else options.activation.name),
        "activation_code": print_torch(options.activation.expr),   # one expression: no CSE temporaries
        "sigmas": [_sigma_context(options.activation, k) for k in sorted(orders)],
        "terms": terms, "exact": exact, "where": where,
        "learned": [f"{k}: starts at {float(v.initial)!r}"
                    + (f", exact {float(v.exact)!r}" if v.exact is not None else "")
                    + (f" ({v.description})" if v.description else "") for k, v in problem.learned.items()],
    }


def _ansatz_context(problem, variables) -> dict:
    """The ``ansatz(X, net)`` method: each unknown from the network's outputs, u = its ansatz in
    the output's column (an unknown without one is its column itself)."""
    namer = Namer({"net"})   # the method's argument: no variable or output may be named so
    names = {v: namer(v) for v in variables}
    outputs = problem.outputs
    out_names = {f: namer(sp.Symbol(f.func.__name__)) for f in outputs}
    items = problem.ansatz_items
    # each unknown as an expression of the variables and its output's local name
    exprs = [items[u][1].xreplace({items[u][0]: sp.Symbol(out_names[items[u][0]])}) if u in items
             else sp.Symbol(out_names[u]) for u in problem.unknowns]
    symbols = {**names, **{sp.Symbol(n): n for n in out_names.values()}}
    assigns, results = _print_exprs(exprs, symbols, "c")
    used = set().union(*(e.free_symbols for e in exprs))
    texts = [f"{u.func.__name__} = {math_text(e)}" for u, e in problem.ansatz_shown.items()]   # docstrings
    return {"variables": [(names[v], f"X[..., {i}]") for i, v in enumerate(variables) if v in used],
            "outputs": [(out_names[f], f"net[..., {k}]", f"network output for {u.func.__name__}")
                        for k, (u, f) in enumerate(zip(problem.unknowns, outputs))],
            "assigns": assigns, "results": results, "exprs": texts}


def content_hash(*parts: str) -> str:
    """sha256 over the given texts (spec source, templates, options, version): 16 hex digits."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
