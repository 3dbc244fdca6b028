"""2d Poisson equation on the unit disk: −Δu = 2π² sin πx sin πy for x² + y² < 1, u = u* on the
circle. The domain is the box [-1, 1]² cut by ``where``; the circle's points come from a Sampler."""

import math

import sympy as sp
import torch

from pdec import Box, Condition, Problem, Sampler

x, y = sp.symbols("x y", real=True)
u = sp.Function("u")(x, y)

u_exact = sp.sin(sp.pi * x) * sp.sin(sp.pi * y)


def circle(n: int, generator: torch.Generator) -> torch.Tensor:
    """n points uniform on the unit circle: (n, 2), columns (x, y)."""
    theta = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)


problem = Problem(
    name="poisson_disk",
    description="2d Poisson on the unit disk, u* = sin(πx) sin(πy), u = u* on the circle",
    domain=Box({x: (-1, 1), y: (-1, 1)}, where=x**2 + y**2 < 1),
    unknowns=[u],
    interior=-(u.diff(x, 2) + u.diff(y, 2)) - 2 * sp.pi**2 * u_exact,
    conditions={"boundary": Condition(u - u_exact, on=Sampler(circle, "unit circle"))},
    exact={u: u_exact},
)
