"""1+1d heat equation whose initial state is unknown (data assimilation, not from the paper):
∂_t u − ¼ ∂_xx u = 0 on [0,1]², u = 0 at x ∈ {0, 1}, and instead of u(0, x) 200 measurements of u
at scattered points inside, with noise of standard deviation 10⁻³.

The measurements here are synthetic, drawn from u* = exp(−π² t/4) sin πx with a fixed seed, so
that the errors against u* can be reported. A study's own data would be read in their place, e.g.
``obs = np.loadtxt(Path(__file__).parent / "u_obs.csv", delimiter=",")`` and
``Data({t: obs[:, 0], x: obs[:, 1]}, obs[:, 2])``.
"""

import sympy as sp
import torch

from pdec import Box, Condition, Data, Problem, SpatialBoundary

t, x = sp.symbols("t x", real=True)
kappa = sp.Symbol("kappa", positive=True)
u = sp.Function("u")(t, x)

g = torch.Generator().manual_seed(0)
t_obs, x_obs = torch.rand(2, 200, generator=g, dtype=torch.float64)
u_obs = torch.exp(-torch.pi**2 * t_obs / 4) * torch.sin(torch.pi * x_obs)
u_obs += 1e-3 * torch.randn(200, generator=g, dtype=torch.float64)

problem = Problem(
    name="heat1d_data",
    description="1+1d heat, initial state unknown: boundary values and 200 noisy measurements of u",
    domain=Box({t: (0, 1), x: (0, 1)}, time=t),
    unknowns=[u],
    interior=u.diff(t) - kappa * u.diff(x, 2),
    conditions={"boundary": Condition(u, on=SpatialBoundary()),
                "measured": Condition(u, on=Data({t: t_obs, x: x_obs}, u_obs, "synthetic, seed 0"))},
    parameters={kappa: sp.Rational(1, 4)},
    exact={u: sp.exp(-sp.pi**2 * t / 4) * sp.sin(sp.pi * x)},
)
