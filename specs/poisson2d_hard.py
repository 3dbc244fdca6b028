"""2d Poisson equation with its boundary condition built into the network (a hard constraint):
−Δu = 2π² sin πx sin πy on [0,1]², u = x(1 − x) y(1 − y)·v(x, y), which is 0 on the boundary
whatever the network's output v. The loss is the interior residual alone."""

import sympy as sp

from pdec import Box, Problem

x, y = sp.symbols("x y", real=True)
u = sp.Function("u")(x, y)
v = sp.Function("v")(x, y)   # the network's output

f = 2 * sp.pi**2 * sp.sin(sp.pi * x) * sp.sin(sp.pi * y)

problem = Problem(
    name="poisson2d_hard",
    description="2d Poisson on [0,1]², u* = sin(πx) sin(πy); u = x(1-x)y(1-y)·v holds u = 0 on the boundary",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u],
    interior=-(u.diff(x, 2) + u.diff(y, 2)) - f,
    ansatz={u: x * (1 - x) * y * (1 - y) * v},
    exact={u: sp.sin(sp.pi * x) * sp.sin(sp.pi * y)},
)
