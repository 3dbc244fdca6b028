"""Learned parameters: a second-order operator scaled by (1 + κ), a learned first-order coefficient c,
κ in a nonlinear term, and a learned Robin coefficient β in a condition."""
import sympy as sp

from pdec import Box, Condition, Face, Learned, Problem

x, y = sp.symbols("x y")
kappa, c, beta = sp.symbols("kappa c beta")
u = sp.Function("u")(x, y)
problem = Problem(
    name="learned_scaled",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u],
    interior=(1 + kappa) * (u.diff(x, 2) + x * u.diff(y, 2)) + c * u.diff(x) + kappa * u**3 - sp.sin(x * y),
    conditions={"robin": Condition(beta * u.diff(x) + u - 1, on=Face(x, "max")),
                "walls": Condition(u, on=Face(x, "min") | Face(y, "min"))},
    parameters={kappa: Learned(0.5), c: Learned(-1.0), beta: Learned(2.0, exact=1.5)},
)
