"""10d Poisson (Laplace) equation (paper §4): −Δu = 0 on [0,1]¹⁰, u = u* on the boundary.

The exact solution is the harmonic u* = Σ_{i=1..5} x_{2i−1} x_{2i}. (The paper's code divides u*
by 1.34; we do not.)
"""

import sympy as sp

from pdec import Boundary, Box, Condition, Problem

xs = sp.symbols("x1:11", real=True)
u = sp.Function("u")(*xs)

u_exact = sum(xs[2 * i] * xs[2 * i + 1] for i in range(5))

problem = Problem(
    name="poisson10d",
    description="10d Laplace on [0,1]¹⁰, u* = Σ_{i≤5} x_{2i−1} x_{2i}, Dirichlet data u* on the boundary",
    domain=Box({xi: (0, 1) for xi in xs}),
    unknowns=[u],
    interior=-sum(u.diff(xi, 2) for xi in xs),
    conditions={
        "boundary": Condition(u - u_exact, on=Boundary()),
    },
    exact={u: u_exact},
)
