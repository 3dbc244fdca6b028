"""The points of a user's :class:`~pdec.spec.Sampler` region, checked before anything uses them
(``pdec check`` and the training samplers)."""

from __future__ import annotations

import torch

from .errors import PdecError
from .spec import Problem, Sampler


def bound_slack(lo: torch.Tensor, hi: torch.Tensor, precision: torch.dtype) -> torch.Tensor:
    """(d,): how far a coordinate may pass a bound of the box [lo, hi] and still count as on it, for
    points computed in ``precision``: 4 ulps of the larger bound (at least of 1)."""
    return 4 * torch.finfo(precision).eps * torch.maximum(lo.abs(), hi.abs()).clamp(min=1.0)


def sampler_points(problem: Problem, region: Sampler, n: int, g: torch.Generator, dtype=torch.float64,
                   name: str | None = None) -> torch.Tensor:
    """A :class:`~pdec.spec.Sampler`'s n points, (n, d) in ``dtype`` on the CPU, checked: the call
    succeeds, the shape is (n, d), every coordinate is finite and inside the domain's box (to a few
    ulps of the precision the sampler returned). Any failure is a :class:`~pdec.errors.PdecError` that names the sampler, the
    condition (``name``) and the spec."""
    where = (f"Sampler {region.description!r}" + (f" of condition {name!r}" if name else "")
             + f" in {problem.source or f'problem {problem.name!r}'}")
    d = len(problem.variables)
    try:
        raw = region.fn(n, g)
        given = torch.as_tensor(raw)
        X = given.to("cpu", dtype)
    except Exception as exc:
        raise PdecError(f"{where} failed when asked for {n} points: {type(exc).__name__}: {exc} (it is "
                        f"called as fn(n, generator) and returns an (n, {d}) tensor)") from exc
    if X.shape != (n, d):
        raise PdecError(f"{where} returned shape {tuple(X.shape)}, expected ({n}, {d}): one row per point, "
                        f"columns ({', '.join(map(str, problem.variables))})")
    if not torch.isfinite(X).all():
        raise PdecError(f"{where} returned non-finite coordinates (rows "
                        f"{torch.nonzero(~torch.isfinite(X).all(1)).flatten()[:5].tolist()}…)")
    lo, hi = (torch.tensor(b, dtype=dtype) for b in problem.domain.corners)
    # a bound rounded in the sampler's own precision (float32: 0.1 -> 0.10000000149) is on the bound
    slack = bound_slack(lo, hi, given.dtype if given.is_floating_point() else dtype)
    outside = ((X < lo - slack) | (X > hi + slack)).any(1)
    if outside.any():
        k = int(torch.nonzero(outside)[0])
        raise PdecError(f"{where} returned {int(outside.sum())} point(s) outside the domain, e.g. "
                        f"({', '.join(repr(float(v)) for v in X[k])}); the box is "
                        f"{', '.join(f'{v} in [{a:g}, {b:g}]' for v, a, b in zip(problem.variables, lo.tolist(), hi.tolist()))}")
    return X
