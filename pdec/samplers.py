"""Ready-made :class:`~pdec.spec.Sampler` regions for the boundary of a cut box (``Box(...,
where=…)``): a sphere (a circle in 2-d) and line segments (the edges of a polygon in two
variables). Variables the shape does not name (time, or the others of a higher-dimensional box)
are drawn uniformly in their intervals, so ``on_sphere(box, {x: 0, y: 0}, 1)`` on a box with time
is the lateral boundary of a disk in time.

    from pdec.samplers import on_segments, on_sphere
    disk = Box({x: (-1, 1), y: (-1, 1)}, where=x**2 + y**2 < 1)
    circle = on_sphere(disk, {x: 0, y: 0}, 1)
    reentrant = on_segments(lshape, x, y, [((0, -1), (0, 0)), ((0, 0), (1, 0))])
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import sympy as sp
import torch

from .spec import Box, Sampler


def on_sphere(box: Box, center: Mapping[sp.Symbol, float], radius: float) -> Sampler:
    """Points uniform on the sphere ``Σ_i (v_i − c_i)² = r²`` in the variables of ``center``.

    Args:
        box: the domain's box (fixes the column order and the other variables' intervals).
        center: variable -> coordinate of the centre, for the 2 or more variables of the sphere.
        radius: r > 0.

    Returns:
        A :class:`Sampler` whose ``fn(n, generator)`` gives (n, d) points in the box's column order.
    """
    variables = _check_variables(box, list(center), "on_sphere")
    if len(variables) < 2:
        raise ValueError("on_sphere needs the centre's coordinates in two variables or more (a circle, a sphere)")
    if not (isinstance(radius, (int, float)) and math.isfinite(radius) and radius > 0):
        raise ValueError(f"on_sphere: radius must be a positive number, got {radius!r}")
    c = [float(center[v]) for v in variables]
    columns = [box.variables.index(v) for v in variables]

    def fn(n: int, generator: torch.Generator) -> torch.Tensor:
        X = _uniform(box, n, generator)
        g = torch.randn(n, len(columns), generator=generator, dtype=torch.float64)   # isotropic direction
        X[:, columns] = torch.tensor(c, dtype=torch.float64) + radius * g / g.norm(dim=1, keepdim=True)
        return X

    text = ", ".join(map(str, variables))
    return Sampler(fn, f"sphere |({text}) - ({', '.join(f'{v:g}' for v in c)})| = {radius:g}")


def on_segments(box: Box, first: sp.Symbol, second: sp.Symbol,
                segments: Sequence[tuple[tuple[float, float], tuple[float, float]]]) -> Sampler:
    """Points uniform (by length) on line segments in the plane of two variables.

    Args:
        box: the domain's box.
        first, second: the two variables of the plane.
        segments: ``[((a1, a2), (b1, b2)), …]``: each segment's end points, coordinates in
            (first, second) order.

    Returns:
        A :class:`Sampler` whose ``fn(n, generator)`` gives (n, d) points in the box's column order.
    """
    _check_variables(box, [first, second], "on_segments")
    try:
        ends = torch.tensor([[list(map(float, a)), list(map(float, b))] for a, b in segments], dtype=torch.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"on_segments takes [((a1, a2), (b1, b2)), …], got {segments!r}") from exc
    if ends.numel() == 0:
        raise ValueError("on_segments needs at least one segment")
    lengths = (ends[:, 1] - ends[:, 0]).norm(dim=1)
    if not bool(torch.all(lengths > 0)):
        raise ValueError("on_segments: a segment has length 0")
    columns = [box.variables.index(first), box.variables.index(second)]

    def fn(n: int, generator: torch.Generator) -> torch.Tensor:
        X = _uniform(box, n, generator)
        which = torch.multinomial(lengths / lengths.sum(), n, replacement=True, generator=generator)
        s = torch.rand(n, 1, generator=generator, dtype=torch.float64)
        X[:, columns] = ends[which, 0] + s * (ends[which, 1] - ends[which, 0])
        return X

    shown = "; ".join(f"({a[0]:g}, {a[1]:g})-({b[0]:g}, {b[1]:g})" for a, b in ends.tolist())
    return Sampler(fn, f"segments in ({first}, {second}): {shown}")


def _check_variables(box: Box, variables: list, who: str) -> list[sp.Symbol]:
    missing = [v for v in variables if v not in box.bounds]
    if missing:
        raise ValueError(f"{who}: {', '.join(map(str, missing))} not a variable of the box "
                         f"({', '.join(map(str, box.variables))})")
    return variables


def _uniform(box: Box, n: int, generator: torch.Generator) -> torch.Tensor:
    """n points uniform in the box (the coordinates the shape does not set): (n, d)."""
    lo, hi = (torch.tensor(b, dtype=torch.float64) for b in box.corners)
    return lo + (hi - lo) * torch.rand(n, len(lo), generator=generator, dtype=torch.float64)
