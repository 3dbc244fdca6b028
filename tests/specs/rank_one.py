"""Rank-one constant operator (∂_x + 2∂_y)² u = 1 in 3-D: one eigen-direction suffices (collapsed)."""
import sympy as sp

from pdec import Boundary, Box, Condition, Problem

x, y, z = sp.symbols("x y z")
u = sp.Function("u")(x, y, z)
problem = Problem(
    name="rank_one",
    domain=Box({x: (0, 1), y: (0, 1), z: (0, 1)}),
    unknowns=[u],
    interior=u.diff(x, 2) + 4 * u.diff(x, y) + 4 * u.diff(y, 2) + u.diff(z) - 1,
    conditions={"boundary": Condition(u, on=Boundary())},
)
