"""1+1d heat equation whose initial and boundary values are built into the network:
u = sin(πx) + t·x(1 − x)·v(t, x) equals sin πx at t = 0 and 0 at x = 0 and x = 1 for every v."""

import sympy as sp

from pdec import Box, Problem

t, x = sp.symbols("t x", real=True)
u = sp.Function("u")(t, x)
v = sp.Function("v")(t, x)

problem = Problem(
    name="ansatz_heat",
    domain=Box({t: (0, 1), x: (0, 1)}, time=t),
    unknowns=[u],
    interior=u.diff(t) - sp.Rational(1, 4) * u.diff(x, 2),
    ansatz={u: sp.sin(sp.pi * x) + t * x * (1 - x) * v},
    exact={u: sp.exp(-sp.pi**2 * t / 4) * sp.sin(sp.pi * x)},
)
