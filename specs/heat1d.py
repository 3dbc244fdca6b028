"""1+1d heat equation (paper §4): ∂_t u − ¼ ∂_xx u = 0 on [0,1]², u(0,x) = sin πx, u = 0 at x ∈ {0,1}.

As in the paper (§A.6), the initial and the boundary data form ONE condition term, u = u* on
the initial slice and the spatial boundary, its points split evenly over the two.
"""

import sympy as sp

from pdec import Box, Condition, Initial, Problem, SpatialBoundary

t, x = sp.symbols("t x", real=True)
kappa = sp.Symbol("kappa", positive=True)
u = sp.Function("u")(t, x)

u_exact = sp.exp(-sp.pi**2 * t / 4) * sp.sin(sp.pi * x)  # u*(0, x) = sin πx, u*(t, 0) = u*(t, 1) = 0

problem = Problem(
    name="heat1d",
    description="1+1d heat equation, u* = exp(-π² t/4) sin(πx)",
    domain=Box({t: (0, 1), x: (0, 1)}, time=t),
    unknowns=[u],
    interior=u.diff(t) - kappa * u.diff(x, 2),
    conditions={"initial_boundary": Condition(u - u_exact, on=Initial() | SpatialBoundary())},
    parameters={kappa: sp.Rational(1, 4)},
    exact={u: u_exact},
)
