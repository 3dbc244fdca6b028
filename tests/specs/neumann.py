"""Poisson with a Neumann condition ∂_x u = g on the face x = 1, Dirichlet on x = 0 and a Robin
condition (weighted 4 in the loss) on y = 0."""
import sympy as sp

from pdec import Box, Condition, Face, Problem

x, y = sp.symbols("x y")
u = sp.Function("u")(x, y)
problem = Problem(
    name="neumann",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u],
    interior=-(u.diff(x, 2) + u.diff(y, 2)) - 2 * sp.pi**2 * sp.cos(sp.pi * x) * sp.cos(sp.pi * y),
    conditions={"right": Condition(u.diff(x) - 0, on=Face(x, "max")),
                "left": Condition(u - sp.cos(sp.pi * y), on=Face(x, "min")),
                "bottom": Condition(u.diff(y) * 2 + u, on=Face(y, "min"), weight=4)},
)
