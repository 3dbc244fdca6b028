"""1+1d advection–diffusion with periodic boundary conditions (not from the paper):
∂_t u + c ∂_x u − ν ∂_xx u = 0 on [0, 1] × [0, 2π], c = 1, ν = 1/10, periodic in x, with the
initial value u(0, x) = sin x; the exact solution u* = e^{−νt} sin(x − ct) is a damped wave that
travels through the face x = 2π and comes back in at x = 0.

The equation is of second order in x, so u and ∂_x u must agree across the two faces: one
condition ``Periodic(x)`` with both. Its points lie on x = 0, each paired with its image on x = 2π.
"""

import sympy as sp

from pdec import Box, Condition, Initial, Periodic, Problem

t, x = sp.symbols("t x", real=True)
c, nu = sp.symbols("c nu", positive=True)
u = sp.Function("u")(t, x)

problem = Problem(
    name="advection1d",
    description="1+1d advection–diffusion, periodic in x, u* = exp(-νt) sin(x - ct)",
    domain=Box({t: (0, 1), x: (0, 2 * sp.pi)}, time=t),
    unknowns=[u],
    interior=u.diff(t) + c * u.diff(x) - nu * u.diff(x, 2),
    conditions={"initial": Condition(u - sp.sin(x), on=Initial()),
                "periodic": Condition([u, u.diff(x)], on=Periodic(x))},
    parameters={c: 1, nu: sp.Rational(1, 10)},
    exact={u: sp.exp(-nu * t) * sp.sin(x - c * t)},
)
