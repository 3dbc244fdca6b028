"""Viscous Burgers u_t + u u_x − ν u_xx = 0: nonlinear in a first derivative (collapsed)."""
import sympy as sp

from pdec import Box, Condition, Initial, Problem, SpatialBoundary

t, x = sp.symbols("t x")
nu = sp.Symbol("nu")
u = sp.Function("u")(t, x)
problem = Problem(
    name="burgers",
    domain=Box({t: (0, 1), x: (-1, 1)}, time=t),
    unknowns=[u],
    interior=u.diff(t) + u * u.diff(x) - nu * u.diff(x, 2),
    conditions={"initial": Condition(u + sp.sin(sp.pi * x), on=Initial()),
                "boundary": Condition(u, on=SpatialBoundary())},
    parameters={nu: sp.Rational(1, 100) / sp.pi},
)
