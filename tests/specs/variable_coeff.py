"""x-dependent coefficients: −∇·(a(x)∇u) with a = 1 + x² + y, expanded, plus a mixed x·y u_xy term."""
import sympy as sp

from pdec import Boundary, Box, Condition, Problem

x, y = sp.symbols("x y")
u = sp.Function("u")(x, y)
a = 1 + x**2 + y
problem = Problem(
    name="variable_coeff",
    domain=Box({x: (-1, 1), y: (0, 1)}),
    unknowns=[u],
    interior=-(sp.diff(a * u.diff(x), x) + sp.diff(a * u.diff(y), y)) + x * y * u.diff(x, y) - sp.exp(x),
    conditions={"boundary": Condition(u, on=Boundary())},
)
