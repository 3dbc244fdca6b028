"""Monge–Ampère u_xx u_yy − u_xy² = f: nonlinear in second derivatives (taylor)."""
import sympy as sp

from pdec import Boundary, Box, Condition, Problem

x, y = sp.symbols("x y")
u = sp.Function("u")(x, y)
problem = Problem(
    name="monge_ampere",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u],
    interior=u.diff(x, 2) * u.diff(y, 2) - u.diff(x, y)**2 - (1 + x**2 + y**2),
    conditions={"boundary": Condition(u - (x**2 + y**2) / 2, on=Boundary())},
)
