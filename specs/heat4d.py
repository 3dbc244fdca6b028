"""4+1d heat equation (paper §4): ∂_t u − ¼ Δ_x u = 0 on [0,1]×[0,1]⁴, u = u* on the boundary.

The exact solution is u* = e^{−t} Σ_i sin 2x_i (i = 1..4); the initial data is u*(0, x) and the
lateral (spatial-boundary) data is u* itself. As in the paper (§A.6), the two form ONE condition
term, its points split evenly over the initial slice and the spatial boundary.
"""

import sympy as sp

from pdec import Box, Condition, Initial, Problem, SpatialBoundary

t = sp.Symbol("t", real=True)
xs = sp.symbols("x1:5", real=True)
kappa = sp.Symbol("kappa", positive=True)
u = sp.Function("u")(t, *xs)

u_exact = sp.exp(-t) * sum(sp.sin(2 * xi) for xi in xs)

problem = Problem(
    name="heat4d",
    description="4+1d heat equation, u* = exp(-t) Σ sin(2x_i)",
    domain=Box({t: (0, 1), **{xi: (0, 1) for xi in xs}}, time=t),
    unknowns=[u],
    interior=u.diff(t) - kappa * sum(u.diff(xi, 2) for xi in xs),
    conditions={"initial_boundary": Condition(u - u_exact, on=Initial() | SpatialBoundary())},
    parameters={kappa: sp.Rational(1, 4)},
    exact={u: u_exact},
)
