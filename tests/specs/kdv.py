"""Korteweg–de Vries u_t + 6 u u_x + u_xxx = 0: third order (taylor)."""
import sympy as sp

from pdec import Box, Condition, Initial, Problem

t, x = sp.symbols("t x")
u = sp.Function("u")(t, x)
problem = Problem(
    name="kdv",
    domain=Box({t: (0, 1), x: (-2, 2)}, time=t),
    unknowns=[u],
    interior=u.diff(t) + 6 * u * u.diff(x) + u.diff(x, 3),
    conditions={"initial": Condition(u - sp.Rational(1, 2) / sp.cosh(x / 2)**2, on=Initial())},
)
