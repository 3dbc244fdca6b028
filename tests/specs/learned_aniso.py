"""Two learned diffusivities, κ ∂_xx + λ ∂_yy: not one factor times a fixed operator, so the
interior is propagated in Taylor mode and the residual reads both second derivatives."""
import sympy as sp

from pdec import Boundary, Box, Condition, Learned, Problem

x, y = sp.symbols("x y")
kappa, lam = sp.symbols("kappa lam", positive=True)
u = sp.Function("u")(x, y)
problem = Problem(
    name="learned_aniso",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u],
    interior=kappa * u.diff(x, 2) + lam * u.diff(y, 2) + 1,
    conditions={"boundary": Condition(u, on=Boundary())},
    parameters={kappa: Learned(1.0), lam: Learned(0.5)},
)
