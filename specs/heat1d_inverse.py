"""1+1d heat equation with an unknown diffusivity (an inverse problem, not from the paper):
∂_t u − κ ∂_xx u = 0 on [0,1]², u(0, x) = sin πx, u = 0 at x ∈ {0, 1}, and κ is not given:
training fits it, together with the network, to 200 measurements of u at scattered points inside
(noise of standard deviation 10⁻³).

The measurements are synthetic, drawn from u* = exp(−π² κ* t) sin πx with κ* = 1/4 and a fixed
seed, so that the errors of u and of κ can be reported; training starts from κ = 1. A study's own
data would be read in their place (see specs/heat1d_data.py), with Learned(1.0) and no exact value.
"""

import sympy as sp
import torch

from pdec import Box, Condition, Data, Initial, Learned, Problem, SpatialBoundary

t, x = sp.symbols("t x", real=True)
kappa = sp.Symbol("kappa", positive=True)
u = sp.Function("u")(t, x)

g = torch.Generator().manual_seed(0)
t_obs, x_obs = torch.rand(2, 200, generator=g, dtype=torch.float64)
u_obs = torch.exp(-torch.pi**2 * t_obs / 4) * torch.sin(torch.pi * x_obs)
u_obs += 1e-3 * torch.randn(200, generator=g, dtype=torch.float64)

problem = Problem(
    name="heat1d_inverse",
    description="1+1d heat with unknown diffusivity κ, fitted to 200 noisy measurements of u",
    domain=Box({t: (0, 1), x: (0, 1)}, time=t),
    unknowns=[u],
    interior=u.diff(t) - kappa * u.diff(x, 2),
    conditions={"initial_boundary": Condition(u - sp.sin(sp.pi * x) * sp.exp(-sp.pi**2 * t / 4),
                                              on=Initial() | SpatialBoundary()),
                "measured": Condition(u, on=Data({t: t_obs, x: x_obs}, u_obs, "synthetic, seed 0"))},
    parameters={kappa: Learned(1.0, exact=sp.Rational(1, 4), description="diffusivity")},
    exact={u: sp.exp(-sp.pi**2 * kappa * t) * sp.sin(sp.pi * x)},
)
