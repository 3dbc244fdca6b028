"""Biharmonic Δ²u = f in 2-D: fourth order (taylor, S = 13 ≤ 15)."""
import sympy as sp

from pdec import Boundary, Box, Condition, Problem

x, y = sp.symbols("x y")
u = sp.Function("u")(x, y)
problem = Problem(
    name="biharmonic",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u],
    interior=u.diff(x, 4) + 2 * u.diff(x, 2, y, 2) + u.diff(y, 4) - 4 * sp.pi**4 * sp.sin(sp.pi * x) * sp.sin(sp.pi * y),
    conditions={"boundary": Condition(u, on=Boundary()),
                "laplacian": Condition(u.diff(x, 2) + u.diff(y, 2), on=Boundary())},
)
