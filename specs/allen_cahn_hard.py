"""1+1d Allen–Cahn (specs/allen_cahn.py) with its initial and boundary values built into the
network: u = sin(πx) + t·(1 − x²)·v(t, x) equals u* = e^{−t} sin πx at t = 0 and 0 at x = ±1
whatever the network's output v. The loss is the interior residual alone, nonlinear in v (u³)."""

import sympy as sp

from pdec import Box, Problem

t, x = sp.symbols("t x", real=True)
eps = sp.Symbol("epsilon", positive=True)
u = sp.Function("u")(t, x)
v = sp.Function("v")(t, x)   # the network's output

u_exact = sp.exp(-t) * sp.sin(sp.pi * x)
residual = u.diff(t) - eps * u.diff(x, 2) + u**3 - u
forcing = residual.subs(u, u_exact).doit()   # f = the residual of u*, so u* solves residual = f

problem = Problem(
    name="allen_cahn_hard",
    description="1+1d Allen–Cahn, u* = exp(-t) sin(πx), ε = 1/100; u = sin(πx) + t(1-x²)·v holds the initial and boundary values",
    domain=Box({t: (0, 1), x: (-1, 1)}, time=t),
    unknowns=[u],
    interior=residual - forcing,
    parameters={eps: sp.Rational(1, 100)},
    ansatz={u: sp.sin(sp.pi * x) + t * (1 - x**2) * v},
    exact={u: u_exact},
)
