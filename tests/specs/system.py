"""Two coupled unknowns: −Δu + v = f, −Δv − u·v_x = 0, with different operators per unknown."""
import sympy as sp

from pdec import Boundary, Box, Condition, Problem

x, y = sp.symbols("x y")
u = sp.Function("u")(x, y)
v = sp.Function("v")(x, y)
problem = Problem(
    name="system",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u, v],
    interior=[-(u.diff(x, 2) + u.diff(y, 2)) + v - sp.sin(x),
              -(v.diff(x, 2) + v.diff(y, 2)) - u * v.diff(x) + 3 * u.diff(x, 2)],
    conditions={"u_boundary": Condition(u, on=Boundary()),
                "v_boundary": Condition(v - x, on=Boundary())},
)
