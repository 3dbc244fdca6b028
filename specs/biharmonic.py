"""Biharmonic equation (a fourth-order example, not from the paper): Δ²u = f on [0,1]² with Navier
conditions, u and Δu given on the boundary. pdec propagates it in Taylor mode (u_xxxx, u_xxyy,
u_yyyy: mixed partials of order four).

u* = sin(πx) sin(2πy) + x y (1 − x), and f = Δ²u* reaches 25π⁴ ≈ 2.4e3. Each term's loss is
1/(2N) Σ r², so a factor on a residual weights its term by the factor's square: the interior
residual is written with the factor 1/30, and set SCALE = 1 to see KFAC and KFAC* stall without it
(README, "When training stalls").
"""

import sympy as sp

from pdec import Boundary, Box, Condition, Problem

SCALE = sp.Rational(1, 30)   # the interior residual's factor: its loss weighs 1/900 against the boundary's

x, y = sp.symbols("x y", real=True)
u = sp.Function("u")(x, y)

u_exact = sp.sin(sp.pi * x) * sp.sin(2 * sp.pi * y) + x * y * (1 - x)
bilaplacian = u.diff(x, 4) + 2 * u.diff(x, 2, y, 2) + u.diff(y, 4)
laplacian = u.diff(x, 2) + u.diff(y, 2)
forcing = bilaplacian.subs(u, u_exact).doit()

problem = Problem(
    name="biharmonic",
    description="biharmonic Δ²u = f on [0,1]², Navier conditions, u* = sin(πx) sin(2πy) + xy(1 − x)",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u],
    interior=SCALE * (bilaplacian - forcing),
    conditions={"dirichlet": Condition(u - u_exact, on=Boundary()),
                "navier": Condition(laplacian - laplacian.subs(u, u_exact).doit(), on=Boundary())},
    exact={u: u_exact},
)
