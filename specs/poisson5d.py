"""5d Poisson equation (paper §4): −Δu = π² Σ cos πx_i on [0,1]⁵, u = u* on the boundary.

The exact solution is u* = Σ_i cos πx_i (i = 1..5).
"""

import sympy as sp

from pdec import Boundary, Box, Condition, Problem

xs = sp.symbols("x1:6", real=True)
u = sp.Function("u")(*xs)

u_exact = sum(sp.cos(sp.pi * xi) for xi in xs)
f = sp.pi**2 * sum(sp.cos(sp.pi * xi) for xi in xs)

problem = Problem(
    name="poisson5d",
    description="5d Poisson on [0,1]⁵, u* = Σ cos(πx_i), Dirichlet data u* on the boundary",
    domain=Box({xi: (0, 1) for xi in xs}),
    unknowns=[u],
    interior=-sum(u.diff(xi, 2) for xi in xs) - f,
    conditions={
        "boundary": Condition(u - u_exact, on=Boundary()),
    },
    exact={u: u_exact},
)
