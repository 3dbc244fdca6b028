"""A quasi-linear equation: −∇·(u ∇u) = −(u Δu + |∇u|²) = f on [0,1]², u = u* on the boundary,
u* = 1 + x y + x²/2. The value u multiplies the Laplacian: pdec factors it out of the operator
(a forward Laplacian, with u in front of the channel in the residual)."""

import sympy as sp

from pdec import Boundary, Box, Condition, Problem

x, y = sp.symbols("x y", real=True)
u = sp.Function("u")(x, y)
u_exact = 1 + x * y + x**2 / 2


def operator(w):
    return -(w * (w.diff(x, 2) + w.diff(y, 2)) + w.diff(x) ** 2 + w.diff(y) ** 2)


problem = Problem(
    name="quasilinear",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u],
    interior=operator(u) - sp.expand(operator(u_exact)),
    conditions={"boundary": Condition(u - u_exact, on=Boundary())},
    exact={u: u_exact},
)
