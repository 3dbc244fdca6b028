"""100d Poisson equation (paper §4): −Δu = −2d (d = 100) on [0,1]¹⁰⁰, u = u* on the boundary.

The exact solution is u* = ‖x‖². The paper's code divides both u* and the right-hand side f by
33.47 (a normalisation); we do not.
"""

import sympy as sp

from pdec import Boundary, Box, Condition, Problem

xs = sp.symbols("x1:101", real=True)
d = len(xs)
u = sp.Function("u")(*xs)

u_exact = sp.Add(*[xi**2 for xi in xs])

problem = Problem(
    name="poisson100d",
    description="100d Poisson on [0,1]¹⁰⁰, −Δu = −200, u* = ‖x‖², Dirichlet data u* on the boundary",
    domain=Box({xi: (0, 1) for xi in xs}),
    unknowns=[u],
    interior=-sp.Add(*[u.diff(xi, 2) for xi in xs]) + 2 * d,
    conditions={
        "boundary": Condition(u - u_exact, on=Boundary()),
    },
    exact={u: u_exact},
)
