"""Kovasznay flow (Kovasznay 1948): steady incompressible Navier–Stokes for the velocity (u, v)
and the pressure p at Re = 1/ν = 40 on [−0.5, 1] × [−0.5, 1.5], with its exact solution.

A system of three residuals (two momentum equations, continuity) in three unknowns; the
velocity's boundary values are one condition of two components (a list), the pressure's a
second condition. With the default 2-64-3 net (D = 387) full ENGD reached a relative L2 error of
4.8e-5 in 60 s on a 2-core CPU, KFAC* 1.4e-3 (README.md, "A spec"):

    pdec train specs/kovasznay.py --optimizer engd --time-budget 60
"""
import sympy as sp

from pdec import Boundary, Box, Condition, Problem

x, y = sp.symbols("x y", real=True)
u, v, p = (sp.Function(name)(x, y) for name in "uvp")
nu = sp.Rational(1, 40)
lam = 1 / (2 * nu) - sp.sqrt(1 / (4 * nu**2) + 4 * sp.pi**2)
u_exact = 1 - sp.exp(lam * x) * sp.cos(2 * sp.pi * y)
v_exact = lam / (2 * sp.pi) * sp.exp(lam * x) * sp.sin(2 * sp.pi * y)
p_exact = (1 - sp.exp(2 * lam * x)) / 2

problem = Problem(
    name="kovasznay",
    description="Kovasznay flow, steady Navier–Stokes at Re = 40: (u, v, p), exact solution",
    domain=Box({x: (-0.5, 1), y: (-0.5, 1.5)}),
    unknowns=[u, v, p],
    interior=[u * u.diff(x) + v * u.diff(y) + p.diff(x) - nu * (u.diff(x, 2) + u.diff(y, 2)),
              u * v.diff(x) + v * v.diff(y) + p.diff(y) - nu * (v.diff(x, 2) + v.diff(y, 2)),
              u.diff(x) + v.diff(y)],
    conditions={"velocity": Condition([u - u_exact, v - v_exact], on=Boundary()),
                "pressure": Condition(p - p_exact, on=Boundary())},
    exact={u: u_exact, v: v_exact, p: p_exact},
)
