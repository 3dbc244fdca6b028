"""1+1d Allen–Cahn (a nonlinear reaction–diffusion example, not from the paper):
∂_t u − ε ∂_xx u + u³ − u = f on [0,1] × [−1,1], ε = 1/100, with the forcing f manufactured from
u* = e^{−t} sin πx; u = u* on the initial slice and the spatial boundary (one condition term).

The optimizers' default hyperparameters are the paper's for 2d Poisson. Here KFAC's tiny damping
stalls; see the README, "When training stalls".
"""

import sympy as sp

from pdec import Box, Condition, Initial, Problem, SpatialBoundary

t, x = sp.symbols("t x", real=True)
eps = sp.Symbol("epsilon", positive=True)
u = sp.Function("u")(t, x)

u_exact = sp.exp(-t) * sp.sin(sp.pi * x)
residual = u.diff(t) - eps * u.diff(x, 2) + u**3 - u
forcing = residual.subs(u, u_exact).doit()   # f = the residual of u*, so u* solves residual = f

problem = Problem(
    name="allen_cahn",
    description="1+1d Allen–Cahn, u* = exp(-t) sin(πx), ε = 1/100",
    domain=Box({t: (0, 1), x: (-1, 1)}, time=t),
    unknowns=[u],
    interior=residual - forcing,
    conditions={"initial_boundary": Condition(u - u_exact, on=Initial() | SpatialBoundary())},
    parameters={eps: sp.Rational(1, 100)},
    exact={u: u_exact},
)
