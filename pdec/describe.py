"""Text descriptions of plans (what ``pdec inspect`` prints)."""

from __future__ import annotations

import networkx as nx

from .analysis import multi_index_label
from .plan import Plan, TermPlan
from .text import math_text


def describe_term(plan: TermPlan, variables, unknown_names, weight: float = 1.0, region: str = "",
                  observed: int = 0) -> str:
    """Multi-line description of one term's plan (``weight``: the term's, shown when ≠ 1;
    ``region``: where its points lie, e.g. "whole boundary"; ``observed``: M for a data term,
    whose residuals subtract the observed values obs, or obs0, obs1, …)."""
    shown = f", weight {weight:g}" if weight != 1 else ""
    where = f" on the {region}" if region else ""
    lines = [f"term {plan.term!r}{where}: mode {plan.mode}, S = {plan.S}, M = {plan.M}{shown}",
             f"  why: {plan.reason}"]
    needed = {}
    for a in plan.needed:
        label = multi_index_label(a.alpha, variables) or "value"
        needed.setdefault(unknown_names[a.unknown], []).append(f"{label} {a.alpha}")
    for u, items in needed.items():
        lines.append(f"  needs of {u}: {', '.join(items)}")
    lines.append("  columns: " + ", ".join(f"[{c.index}] {c.label}" for c in plan.columns))
    for k, ch in enumerate(plan.channels):
        quad = "none" if ch.quad is None else (
            f"{math_text(ch.quad.weight)}·Σ_a (∂_a h)² over directions {ch.quad.start}..{ch.quad.stop - 1}"
            if ch.quad.kind == "block" else
            ("constant matrix Σ_ab Q_ab ∂_a h ∂_b h" if ch.quad.constant else
             "point-dependent matrix Σ_ab Q_ab(x) ∂_a h ∂_b h"))
        lines.append(f"  channel L{k} = {ch.description}; quadratic term: {quad}")
    for i, r in enumerate(plan.residuals):   # in the output stack's symbols, as the generated code
        text = math_text(r) + ((" - obs" if observed == 1 else f" - obs{i}") if observed else "")
        lines.append(f"  residual r{i} = {text if len(text) <= 160 else text[:157] + '...'}")
    edges = sorted(plan.graph.edges())
    if edges:
        lines.append(f"  dependency graph ({plan.graph.number_of_nodes()} nodes, "
                     f"{plan.graph.number_of_edges()} edges, acyclic: "
                     f"{nx.is_directed_acyclic_graph(plan.graph)}):")
        for node in nx.topological_sort(plan.graph):
            preds = sorted(plan.graph.predecessors(node))
            if preds:
                lines.append(f"    {node} <- {', '.join(preds)}")
    return "\n".join(lines)


def describe_plan(plan: Plan) -> str:
    """Description of every term of a plan."""
    a = plan.analysis
    problem = a.problem
    unknowns = [u.func.__name__ for u in problem.unknowns]
    head = [f"problem {problem.name!r}: variables ({', '.join(map(str, a.variables))}), "
            f"unknowns ({', '.join(unknowns)})"
            + (f", network outputs ({', '.join(a.unknown_names)})" if problem.ansatz_items else "")]
    for u, (f, _) in problem.ansatz_items.items():
        head.append(f"ansatz (hard constraint): {u.func.__name__} = {math_text(problem.ansatz_shown[u])}; the terms "
                    f"are in {f.func.__name__}")
    cut = f", where {math_text(problem.where)}" if problem.where is not None else ""
    head.append(f"domain: {problem.domain.describe()}{cut}")
    head += [f"learned parameter {k}: {v.describe()}" for k, v in problem.learned.items()]
    weights = problem.weights
    regions = {name: c.on.describe() for name, c in problem.condition_items.items()}
    observed = problem.data_conditions
    return "\n".join(head + [describe_term(t, a.variables, a.unknown_names, weights[name], regions.get(name, ""),
                                           observed.get(name, 0))
                             for name, t in plan.terms.items()])
