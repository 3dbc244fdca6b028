"""9+1d log Fokker–Planck equation (paper §4), for q = log p:

    ∂_t q − d/2 − ½ ∇q·x − ‖∇q‖² − Δq = 0,   t ∈ [0,1], x ∈ [−5,5]⁹ (d = 9),

with the initial condition q(0, x) = log p*(0, x) only. The exact density is
p*(t) = N(0, s(t) I), so q* = −‖x‖²/(2s) − (d/2) log(2πs).

The variance is s(t) = 2 − e^{−t}: substituting q* into the PDE gives s' = 2 − s with s(0) = 1.
The paper prints s(t) = e^{−t} + (1 − e^{−t})², which does NOT solve the printed PDE (its code
uses 2 − e^{−t}); see MATH.md §7.
"""

import sympy as sp

from pdec import Box, Condition, Initial, Problem

t = sp.Symbol("t", real=True)
xs = sp.symbols("x1:10", real=True)
d = len(xs)
q = sp.Function("q")(t, *xs)

s = 2 - sp.exp(-t)
r2 = sp.Add(*[xi**2 for xi in xs])
q_exact = -r2 / (2 * s) - sp.Rational(d, 2) * sp.log(2 * sp.pi * s)

grad_dot_x = sp.Add(*[q.diff(xi) * xi for xi in xs])
grad_sq = sp.Add(*[q.diff(xi) ** 2 for xi in xs])
laplacian = sp.Add(*[q.diff(xi, 2) for xi in xs])

problem = Problem(
    name="logfp9d",
    description="9+1d log Fokker–Planck, q* = log N(0, (2 − e^{-t}) I)",
    domain=Box({t: (0, 1), **{xi: (-5, 5) for xi in xs}}, time=t),
    unknowns=[q],
    interior=q.diff(t) - sp.Rational(d, 2) - grad_dot_x / 2 - grad_sq - laplacian,
    conditions={
        "initial": Condition(q - q_exact.subs(t, 0), on=Initial()),
    },
    exact={q: q_exact},
)
