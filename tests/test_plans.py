"""Mode choice, S and needed multi-indices for shipped and test specs; forced modes."""

from __future__ import annotations

import networkx as nx
import pytest
import sympy as sp

import pdec
from pdec.analysis import analyse
from pdec.plan import faa_di_bruno, make_plan
from conftest import ROOT

EXPECTED = {
    # spec path: (interior mode, interior S)
    "specs/poisson2d.py": ("laplacian", 4),         # d + 2
    "specs/poisson5d.py": ("laplacian", 7),
    "specs/poisson10d.py": ("laplacian", 12),
    "specs/poisson100d.py": ("laplacian", 102),
    "specs/heat1d.py": ("collapsed", 3),            # d_x + 2: ∂_t folded into the channel
    "specs/heat4d.py": ("collapsed", 6),
    "specs/logfp9d.py": ("collapsed", 11),          # value, ∇_x q (9), one channel
    "tests/specs/aniso_mixed.py": ("collapsed", 4),
    "tests/specs/rank_one.py": ("collapsed", 3),    # one eigen-direction of a rank-1 C
    "tests/specs/variable_coeff.py": ("collapsed", 4),
    "tests/specs/burgers.py": ("collapsed", 3),
    "tests/specs/monge_ampere.py": ("taylor", 6),
    "tests/specs/kdv.py": ("taylor", 5),
    "tests/specs/biharmonic.py": ("taylor", 13),    # ≤ 15
    "tests/specs/system.py": ("laplacian", 5),      # two Laplacian channels shared by u and v
    "tests/specs/neumann.py": ("laplacian", 4),
}


def _plan(rel: str, mode: str = "auto"):
    return make_plan(analyse(pdec.load_spec(ROOT / rel)), mode)


@pytest.mark.parametrize("rel,expected", EXPECTED.items(), ids=list(EXPECTED))
def test_mode_and_S(rel, expected):
    plan = _plan(rel)
    assert (plan.mode, plan.S) == expected
    for term in plan.terms.values():
        assert nx.is_directed_acyclic_graph(term.graph)
        assert term.graph.number_of_nodes() == term.S


def test_condition_plans():
    plan = _plan("tests/specs/neumann.py")
    assert {n: (t.mode, t.S) for n, t in plan.terms.items()} == {
        "interior": ("laplacian", 4), "right": ("collapsed", 2), "left": ("value", 1),
        "bottom": ("collapsed", 2)}
    heat = _plan("specs/heat1d.py")
    assert heat.terms["initial_boundary"].mode == "value"


def test_required_multi_indices():
    plan = _plan("specs/heat1d.py")
    assert plan.required_multi_indices == {"u": [(0, 0), (0, 2), (1, 0)]}
    kdv = _plan("tests/specs/kdv.py")
    assert kdv.required_multi_indices == {"u": [(0, 0), (0, 1), (0, 3), (1, 0)]}
    # the Taylor closure of ∂_xxx and ∂_t: t, x, xx, xxx
    assert [c.alpha for c in kdv.interior.columns[1:]] == [(1, 0), (0, 1), (0, 2), (0, 3)]


def test_system_shares_channels_across_unknowns():
    plan = _plan("tests/specs/system.py")
    interior = plan.interior
    assert len(interior.channels) == 2  # Δ (for u and v) and ∂_xx (3 u_xx)
    assert {"L0_u", "L0_v", "L1_u"} <= set(interior.output_columns)


@pytest.mark.parametrize("rel", ["specs/poisson2d.py", "specs/heat1d.py", "tests/specs/kdv.py",
                                 "tests/specs/monge_ampere.py"])
def test_taylor_always_valid(rel):
    assert _plan(rel, "taylor").mode == "taylor"


def test_laplacian_mode_gives_first_order_terms_their_own_columns():
    # auto folds ∂_t into the collapsed channel L = ∂_t − ¼ Δ_x: S = 1 + 4 + 1
    auto = _plan("specs/heat4d.py").interior
    assert (auto.mode, auto.S) == ("collapsed", 6)
    # mode "laplacian": the paper's heat stack, value, ∂_t, ∂_x1..∂_x4 and Δ_x (S = d + 2 = 7)
    lap = _plan("specs/heat4d.py", "laplacian").interior
    assert (lap.mode, lap.S) == ("laplacian", 7)
    assert [c.kind for c in lap.columns] == ["value"] + ["direction"] * 5 + ["channel"]
    assert [c.alpha for c in lap.columns[1:6]] == [(1, 0, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 0),
                                                  (0, 0, 0, 1, 0), (0, 0, 0, 0, 1)]
    assert "first-order terms read their own columns" in lap.reason
    assert "laplacian with its first-order terms in own columns would need S = 7" in auto.reason
    # the residual reads ∂_t u from its column and the rescaled unit Laplacian from the channel
    assert lap.output_columns["u_t"] == (1, 0) and lap.output_columns["L0_u"] == (6, 0)
    assert lap.residuals[0] == sp.Symbol("u_t") - sp.Rational(1, 4) * sp.Symbol("L0_u")


def _inline_plan(interior, mode: str = "auto", two: bool = False):
    """The interior plan of interior(x, y, u, v) on the unit square (unknowns u, or u and v)."""
    from pdec import Boundary, Box, Condition, Problem

    x, y = sp.symbols("x y", real=True)
    u, v = sp.Function("u")(x, y), sp.Function("v")(x, y)
    residual = interior(x, y, u, v)
    used = [u, v] if two else [u]
    problem = Problem(name="inline", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=used,
                      interior=residual,
                      conditions={f"b{k}": Condition(w, on=Boundary()) for k, w in enumerate(used)})
    return make_plan(analyse(problem), mode).interior


def test_auto_prefers_the_folded_channel_on_a_tie():
    # u_x − Δu: folded, one channel L = ∂_x − Δ (S = 4, the residual reads L only); unfolded, a
    # forward Laplacian and u_x read from its own column (also S = 4): auto keeps the folded plan
    plan = _inline_plan(lambda x, y, u, v: u.diff(x) - u.diff(x, 2) - u.diff(y, 2))
    assert (plan.mode, plan.S, len(plan.channels)) == ("collapsed", 4, 1)
    assert "laplacian with its first-order terms in own columns would need S = 4" in plan.reason
    forced = _inline_plan(lambda x, y, u, v: u.diff(x) - u.diff(x, 2) - u.diff(y, 2), "laplacian")
    assert (forced.mode, forced.S) == ("laplacian", 4)


def test_auto_takes_the_unfolded_laplacian_when_it_is_cheaper():
    # two unknowns with other first-order parts: folded, two channels (∂_x − Δ and ∂_y − 2Δ, S = 5);
    # unfolded, one shared Laplacian and the directions (S = 4)
    plan = _inline_plan(lambda x, y, u, v: [u.diff(x) - u.diff(x, 2) - u.diff(y, 2),
                                            v.diff(y) - 2 * (v.diff(x, 2) + v.diff(y, 2))], two=True)
    assert (plan.mode, plan.S, len(plan.channels)) == ("laplacian", 4, 1)
    assert "collapsed would need S = 5" in plan.reason


def test_a_first_order_nonlinear_residual_says_it_needs_no_second_order_columns():
    # eikonal |∇u|² − 1: the value and the two axis columns, no channel; the reason must not
    # speak of second-order derivatives the residual does not have
    plan = _inline_plan(lambda x, y, u, v: u.diff(x) ** 2 + u.diff(y) ** 2 - 1)
    assert (plan.mode, plan.S, len(plan.channels)) == ("laplacian", 3, 0)
    assert plan.reason.startswith("the residual needs first-order derivatives only")
    assert "second-order" not in plan.reason


def test_a_first_order_linear_residual_is_described_as_such():
    plan = _inline_plan(lambda x, y, u, v: u.diff(x) + 2 * u.diff(y) - 1)
    assert plan.mode == "collapsed" and plan.reason.startswith("the residual's derivatives are first-order")


def test_a_factor_of_values_and_first_derivatives_is_taken_out_of_the_operator():
    """u Δu, e^u (Δu + u_x): the operator stays the Laplacian and the residual multiplies its
    channel by the factor (which the residual then reads: u's value column); first-order atoms
    beside such a factor stay in their own columns. A factor that is not common to the whole
    operator (u u_xx + u_yy) is not a fixed operator: Taylor mode, saying why."""
    plan = _inline_plan(lambda x, y, u, v: u * (u.diff(x, 2) + u.diff(y, 2)) - 1)
    assert (plan.mode, plan.S) == ("laplacian", 4)
    assert "a factor of the values or first derivatives multiplies a channel" in plan.reason
    (r,) = plan.residuals
    assert sp.expand(r - (sp.Symbol("u") * sp.Symbol("L0_u") - 1)) == 0
    assert plan.output_columns["u"] == (0, 0)
    plan = _inline_plan(lambda x, y, u, v: sp.exp(u) * (u.diff(x, 2) + u.diff(y, 2) + u.diff(x)))
    assert plan.mode == "laplacian" and plan.channels[0].operator.b == (0, 0)
    assert {"u", "u_x"} <= set(plan.output_columns)
    plan = _inline_plan(lambda x, y, u, v: u * u.diff(x, 2) + u.diff(y, 2))
    assert plan.mode == "taylor"
    assert ("the second-order coefficients of u depend on the values or first derivatives u, and not as one "
            "factor times a fixed operator") in plan.reason
    # a second derivative times another stays nonlinear
    with pytest.raises(pdec.ModeError, match="u_xx enters nonlinearly|u_yy enters nonlinearly"):
        _inline_plan(lambda x, y, u, v: u.diff(x, 2) * u.diff(y, 2), "collapsed")


def test_forcing_inapplicable_mode_is_a_clear_error():
    with pytest.raises(pdec.ModeError, match=r"contains \(-2\)·∂_xx - ∂_xy - ∂_yy; use 'collapsed' or 'taylor'"):
        _plan("tests/specs/aniso_mixed.py", "laplacian")
    # first-order only: nothing to propagate as a Laplacian (not "contains ∂_x + …")
    with pytest.raises(pdec.ModeError, match="Laplacians, but the residual has none"):
        _inline_plan(lambda x, y, u, v: u.diff(x) + 2 * u.diff(y), "laplacian")
    with pytest.raises(pdec.ModeError, match="u_xx enters nonlinearly|u_yy enters nonlinearly"):
        _plan("tests/specs/monge_ampere.py", "collapsed")
    with pytest.raises(pdec.ModeError, match="order 3 > 2"):
        _plan("tests/specs/kdv.py", "laplacian")
    with pytest.raises(pdec.ModeError, match="unknown mode"):
        _plan("specs/heat1d.py", "fast")
    assert _plan("specs/poisson2d.py", "collapsed").mode == "collapsed"


def test_faa_di_bruno_counts():
    # ∂_xxx σ = σ''' h_x³ + 3 σ'' h_x h_xx + σ' h_xxx ; ∂_xxyy has Bell(4) = 15 partitions
    terms = faa_di_bruno((3,))
    assert [(t.coefficient, t.blocks) for t in terms] == [(1, ((1,), (1,), (1,))), (3, ((1,), (2,))), (1, ((3,),))]
    assert sum(t.coefficient for t in faa_di_bruno((2, 2))) == 15
    assert sum(t.coefficient for t in faa_di_bruno((1, 1, 1, 1, 1))) == 52
