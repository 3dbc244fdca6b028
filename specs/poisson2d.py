"""2d Poisson equation (paper §4): −Δu = 2π² sin πx sin πy on [0,1]², u = 0 on the boundary."""

import sympy as sp

from pdec import Boundary, Box, Condition, Problem

x, y = sp.symbols("x y", real=True)
u = sp.Function("u")(x, y)

f = 2 * sp.pi**2 * sp.sin(sp.pi * x) * sp.sin(sp.pi * y)

problem = Problem(
    name="poisson2d",
    description="2d Poisson on [0,1]², u* = sin(πx) sin(πy), u = 0 on the boundary",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u],
    interior=-(u.diff(x, 2) + u.diff(y, 2)) - f,
    conditions={
        "boundary": Condition(u, on=Boundary()),
    },
    exact={u: sp.sin(sp.pi * x) * sp.sin(sp.pi * y)},
)
