"""2d Poisson whose values on the faces x = 0, 1 are unknown: u = 0 on y = 0 and y = 1 only, and
measurements of [u, ∂_x u] at 40 points inside (a data condition of two components with a
derivative, weight 4), exact and noise-free, from u* = sin πx sin πy."""
import sympy as sp
import torch

from pdec import Box, Condition, Data, Face, Problem

x, y = sp.symbols("x y", real=True)
u = sp.Function("u")(x, y)
g = torch.Generator().manual_seed(5)
X = torch.rand(40, 2, generator=g, dtype=torch.float64)
values = torch.stack([torch.sin(torch.pi * X[:, 0]) * torch.sin(torch.pi * X[:, 1]),
                      torch.pi * torch.cos(torch.pi * X[:, 0]) * torch.sin(torch.pi * X[:, 1])], dim=1)
problem = Problem(
    name="measured_flux",
    domain=Box({x: (0, 1), y: (0, 1)}),
    unknowns=[u],
    interior=-(u.diff(x, 2) + u.diff(y, 2)) - 2 * sp.pi**2 * sp.sin(sp.pi * x) * sp.sin(sp.pi * y),
    conditions={"bottom": Condition(u, on=Face(y, "min")), "top": Condition(u, on=Face(y, "max")),
                "measured": Condition([u, u.diff(x)], on=Data(X, values), weight=4)},
    exact={u: sp.sin(sp.pi * x) * sp.sin(sp.pi * y)},
)
