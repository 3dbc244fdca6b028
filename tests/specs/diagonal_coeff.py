"""x-dependent diagonal coefficients, a system: −∇·(a∇u) + v with a = 1 + x² y (Q = a·I), and
−((1 + x²) v_xx + 2 v_yy) + u (Q = diag(1 + x², 2), one entry constant)."""
import sympy as sp

from pdec import Boundary, Box, Condition, Problem

x, y = sp.symbols("x y")
u = sp.Function("u")(x, y)
v = sp.Function("v")(x, y)
a = 1 + x**2 * y
problem = Problem(
    name="diagonal_coeff",
    domain=Box({x: (-1, 1), y: (0, 1)}),
    unknowns=[u, v],
    interior=[-(sp.diff(a * u.diff(x), x) + sp.diff(a * u.diff(y), y)) + v - sp.sin(x),
              -((1 + x**2) * v.diff(x, 2) + 2 * v.diff(y, 2)) + u - y],
    conditions={"boundary": Condition([u, v], on=Boundary())},
)
