"""Korteweg–de Vries u_t + 6 u u_x + u_xxx = 0 on a ring: third order in x, so u, u_x and u_xx
are periodic (a Taylor-mode condition term of second order)."""
import sympy as sp

from pdec import Box, Condition, Initial, Periodic, Problem

t, x = sp.symbols("t x")
u = sp.Function("u")(t, x)
problem = Problem(
    name="kdv_periodic",
    domain=Box({t: (0, 1), x: (-4, 4)}, time=t),
    unknowns=[u],
    interior=u.diff(t) + 6 * u * u.diff(x) + u.diff(x, 3),
    conditions={"initial": Condition(u - sp.Rational(1, 2) / sp.cosh(x / 2)**2, on=Initial()),
                "ring": Condition([u, u.diff(x), u.diff(x, 2)], on=Periodic(x))},
)
