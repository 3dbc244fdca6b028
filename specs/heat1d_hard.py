"""1+1d heat equation (paper §4) with its initial and boundary values built into the network:
u = sin(πx) + t·x(1 − x)·v(t, x) equals sin πx at t = 0 and 0 at x = 0 and x = 1 whatever the
network's output v. The loss is the interior residual alone."""

import sympy as sp

from pdec import Box, Problem

t, x = sp.symbols("t x", real=True)
kappa = sp.Symbol("kappa", positive=True)
u = sp.Function("u")(t, x)
v = sp.Function("v")(t, x)   # the network's output

problem = Problem(
    name="heat1d_hard",
    description="1+1d heat, u* = exp(-π² t/4) sin(πx); u = sin(πx) + t·x(1-x)·v holds the initial and boundary values",
    domain=Box({t: (0, 1), x: (0, 1)}, time=t),
    unknowns=[u],
    interior=u.diff(t) - kappa * u.diff(x, 2),
    parameters={kappa: sp.Rational(1, 4)},
    ansatz={u: sp.sin(sp.pi * x) + t * x * (1 - x) * v},
    exact={u: sp.exp(-sp.pi**2 * t / 4) * sp.sin(sp.pi * x)},
)
