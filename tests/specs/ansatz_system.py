"""A system with an ansatz on one unknown only, and a nonlinear one: u = exp(w) is positive
whatever the network's w, q has none. −Δu + u q = f, q = ∂_x u, u = u* on the boundary;
u* = q* = exp(x + y/2)."""

import sympy as sp

from pdec import Boundary, Box, Condition, Problem

x, y = sp.symbols("x y", real=True)
u = sp.Function("u")(x, y)
q = sp.Function("q")(x, y)
w = sp.Function("w")(x, y)   # the network's output for u
u_exact = sp.exp(x + y / 2)

problem = Problem(
    name="ansatz_system",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u, q],
    interior=[-(u.diff(x, 2) + u.diff(y, 2)) + u * q + sp.Rational(5, 4) * u_exact - u_exact**2,
              q - u.diff(x)],
    conditions={"boundary": Condition(u - u_exact, on=Boundary())},
    ansatz={u: sp.exp(w)},
    exact={u: u_exact, q: u_exact},
)
