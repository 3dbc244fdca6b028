"""Constant anisotropic operator with a mixed term: −(2u_xx + u_xy + u_yy) + u³ = f (collapsed); the
interior term weighted 0.3 in the loss."""
import sympy as sp

from pdec import Boundary, Box, Condition, Problem

x, y = sp.symbols("x y")
u = sp.Function("u")(x, y)
problem = Problem(
    name="aniso_mixed",
    domain=Box({x: (0, 1), y: (0, 2)}),
    unknowns=[u],
    interior=-(2 * u.diff(x, 2) + u.diff(x, y) + u.diff(y, 2)) + u**3 - sp.sin(x * y),
    interior_weight=0.3,
    conditions={"boundary": Condition(u - x * y, on=Boundary())},
)
