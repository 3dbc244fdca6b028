"""Collocation points: interior, condition regions and a held-out evaluation set.

One seed controls every sampler: the training stream and the evaluation stream are separate
``torch.Generator``s derived from it, so resampling never shifts the evaluation set.
Points are (N, d) rows in the domain's variable order.

Data parallel: every rank draws the whole batch from the same stream and trains on its block of
rows (:func:`pdec.parallel.shard_batch`), so the union over ranks is the single-process batch and
a checkpoint (which holds the whole batch) resumes with any number of ranks.
"""

from __future__ import annotations

import warnings
from typing import Callable, Mapping, Union

import torch

from ..domain import domain_predicate, keep_inside, where_text
from ..errors import PdecError, PdecWarning
from ..parallel import shard_batch
from ..spec import Boundary, Combined, Face, Initial, Periodic, Problem, Region, Sampler, SpatialBoundary
from ..user_points import bound_slack, sampler_points


def _bounds(problem: Problem, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = (torch.tensor(b, dtype=dtype, device=device) for b in problem.domain.corners)
    return lo, hi


#: Draws (m, d) points in the unit cube [0, 1)^d: pseudo-random from a generator, or a Sobol stream.
Unit = Callable[[int], torch.Tensor]
SAMPLINGS = ("uniform", "sobol")


def uniform_box(problem: Problem, n: int, g: torch.Generator, dtype=torch.float64, device=None,
                unit: Unit | None = None) -> torch.Tensor:
    """n points uniform in the box: (n, d); ``unit`` replaces the generator's ``torch.rand``
    (e.g. a Sobol stream, :class:`SobolStream`)."""
    lo, hi = _bounds(problem, dtype, "cpu")
    U = unit(n).to(dtype) if unit is not None else torch.rand(n, len(lo), generator=g, dtype=dtype)
    X = lo + (hi - lo) * U
    return X.to(device)


class SobolStream:
    """Scrambled Sobol points in [0, 1)^d, one stream for a run's training batches (each batch
    continues the sequence). Its state is the seed and the number of points drawn.

    Args:
        d: dimension.
        seed: the scrambling's seed.
        drawn: points already drawn (to resume a stream).
    """

    def __init__(self, d: int, seed: int, drawn: int = 0):
        self.d, self.seed = d, seed
        self.engine = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed)
        if drawn:
            self.engine.fast_forward(drawn)

    def __call__(self, m: int) -> torch.Tensor:
        return self.engine.draw(m, dtype=torch.float64)

    @property
    def drawn(self) -> int:
        return int(self.engine.num_generated)


def uniform_domain(problem: Problem, n: int, g: torch.Generator, dtype=torch.float64, device=None,
                   what: str = "interior points", unit: Unit | None = None) -> torch.Tensor:
    """n points uniform in the domain: the box, or its part where ``where`` holds: (n, d)."""
    return keep_inside(problem, lambda m: uniform_box(problem, m, g, dtype, unit=unit), n, what).to(device)


def _faces(problem: Problem, region: Region) -> list[tuple[int, float]]:
    """(variable index, fixed value) of the faces that make up a boundary region."""
    variables = problem.variables
    if isinstance(region, Boundary):
        idx = range(len(variables))
    elif isinstance(region, SpatialBoundary):
        idx = [variables.index(v) for v in problem.domain.spatial]
    elif isinstance(region, Face):
        i = variables.index(region.var)
        lo, hi = problem.domain.interval(region.var)
        return [(i, lo if region.side == "min" else hi)]
    elif isinstance(region, Periodic):   # the points lie on the lower face; the model pairs each with its image
        i = variables.index(region.var)
        return [(i, problem.domain.interval(region.var)[0])]
    elif isinstance(region, Initial):
        i = variables.index(problem.domain.time)
        return [(i, problem.domain.interval(problem.domain.time)[0])]
    else:
        raise PdecError(f"no face decomposition for region {region!r}")
    out = []
    for i in idx:
        lo, hi = problem.domain.interval(variables[i])
        out += [(i, lo), (i, hi)]
    return out


def on_region(problem: Problem, region: Region, X: torch.Tensor, cut: bool = True) -> torch.Tensor:
    """(N,) bool: whether each point of X (N, d) lies on ``region``, within a float32-sized
    tolerance (points given in float32 on a face count as on it); on a domain with ``where``, a
    face's points must also satisfy it (``cut=False``: on the face is enough). A :class:`Sampler`
    region accepts every point (its own checks are :func:`pdec.user_points.sampler_points`')."""
    if isinstance(region, Combined):
        hits = [on_region(problem, part, X, cut) for part in region.parts]
        return torch.stack(hits).any(0)
    if isinstance(region, Sampler):
        return torch.ones(X.shape[0], dtype=torch.bool, device=X.device)
    lo, hi = _bounds(problem, X.dtype, X.device)
    slack = bound_slack(lo, hi, torch.float32)
    hits = [(X[:, i] - value).abs() <= slack[i] for i, value in _faces(problem, region)]
    on_face = torch.stack(hits).any(0)
    inside = domain_predicate(problem) if cut else None   # a face of a cut domain: its part inside
    return on_face if inside is None else on_face & inside(X)


def sample_region(problem: Problem, region: Region, n: int, g: torch.Generator,
                  dtype=torch.float64, device=None, name: str | None = None, unit: Unit | None = None) -> torch.Tensor:
    """n points on a condition's region: (n, d). Faces are chosen with probability ∝ their area;
    a :class:`Combined` region's points are split evenly over its parts, in order. ``name``: the
    condition's, for error messages."""
    if isinstance(region, Combined):
        if n < len(region.parts):
            which = f"condition {name!r} ({region.describe()})" if name else region.describe()
            raise PdecError(f"{which} gets {n} point(s) for its {len(region.parts)} parts: give at least one "
                            f"point per part (raise n_condition, the condition points per batch, which are "
                            f"split evenly over the conditions)")
        return torch.cat([sample_region(problem, part, k, g, dtype, device, name, unit)
                          for part, k in zip(region.parts, region.split(n))])
    if isinstance(region, Sampler):
        return sampler_points(problem, region, n, g, dtype, name).to(device)
    faces = _faces(problem, region)
    lo, hi = _bounds(problem, dtype, "cpu")
    widths = hi - lo
    areas = torch.tensor([float(torch.prod(torch.cat([widths[:i], widths[i + 1:]]))) if len(widths) > 1 else 1.0
                          for i, _ in faces], dtype=torch.float64)

    def draw(m: int) -> torch.Tensor:
        X = uniform_box(problem, m, g, dtype, unit=unit)
        which = torch.multinomial(areas / areas.sum(), m, replacement=True, generator=g)
        for k, (i, value) in enumerate(faces):
            X[which == k, i] = value
        return X

    what = f"points of condition {name!r} ({region.describe()})" if name else f"points of the {region.describe()}"
    return keep_inside(problem, draw, n, what, on_face=region.describe()).to(device)


def evaluation_set(problem: Problem, n_eval: int, seed: int, dtype=torch.float64, device=None
                   ) -> torch.Tensor | None:
    """The held-out points of a run with ``seed``: (n_eval, d) uniform in the domain, from a
    stream of their own (re-sampling never shifts them); None when n_eval = 0."""
    if not n_eval:
        return None
    return uniform_domain(problem, n_eval, torch.Generator().manual_seed(seed + 1_000_003), dtype, device,
                          "evaluation points")


class PointSampler:
    """Draws training batches (term -> points) and a fixed evaluation set.

    Args:
        problem: the problem (regions come from its conditions).
        n_interior: interior points per batch.
        n_condition: condition points per batch in total, split evenly over the conditions
            (the paper's "boundary" count: 120 for 2d Poisson; heat: half initial, half boundary).
            A condition on :class:`~pdec.spec.Data` does not count: its batch is its N observations,
            rows of d coordinates and M values, the same in every batch.
        seed: controls every draw.
        n_eval: held-out interior points for the error metrics.
        rank, world_size: data parallel: ``batch`` is this rank's shard of the whole batch
            ``full_batch`` (a :class:`~pdec.parallel.Shard` when world_size > 1).
        sampling: "uniform" (pseudo-random) or "sobol": the training points' coordinates come
            from one scrambled Sobol sequence (:class:`SobolStream`, seeded by ``seed``), which
            covers the domain more evenly than independent draws; a face's points take the
            sequence's other coordinates. The choice of face for each point, a :class:`Sampler`'s
            points and the evaluation set stay pseudo-random.

    ``heldout``: condition -> the observations a :class:`~pdec.spec.Data` region's ``holdout``
    keeps out of training (the batch holds the others), for :func:`pdec.train.loop.evaluate`.
    """

    def __init__(self, problem: Problem, n_interior: int, n_condition: int, seed: int,
                 n_eval: int = 0, dtype=torch.float64, device=None, rank: int = 0, world_size: int = 1,
                 sampling: str = "uniform"):
        if sampling not in SAMPLINGS:
            raise PdecError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
        if n_interior < 1:
            raise PdecError(f"n_interior must be ≥ 1, got {n_interior}")
        data = problem.data_conditions
        conditions = {name: c for name, c in problem.condition_items.items() if name not in data}
        if conditions and n_condition < len(conditions):
            raise PdecError(f"n_condition = {n_condition} is too few for the spec's {len(conditions)} conditions"
                            + (" on regions (the data conditions bring their own points)" if data else "")
                            + ": each needs at least one point per batch")
        self.problem = problem
        self.n_interior = n_interior
        self.counts = _split(n_condition, list(conditions))
        self.regions = {name: c.on for name, c in conditions.items()}
        self.data, self.heldout = _observations(problem, dtype, device)
        _check_data_ranks(self.data, self.heldout, world_size)
        if world_size > 1 and min([n_interior, *self.counts.values()]) < world_size:
            raise PdecError(f"{world_size} ranks need at least {world_size} points of every term per batch "
                            f"(got interior {n_interior}, conditions {self.counts})")
        self.dtype, self.device = dtype, device
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self.sobol = SobolStream(len(problem.variables), seed) if sampling == "sobol" else None
        self.eval_points = evaluation_set(problem, n_eval, seed, dtype, device)
        self.full_batch: dict[str, torch.Tensor] = {}
        self.batch: Mapping[str, torch.Tensor] = {}
        self.resample()

    def resample(self) -> Mapping[str, torch.Tensor]:
        """Draw a new batch from the training stream; return (and keep as ``batch``) this rank's part."""
        g, unit = self.generator, self.sobol
        batch = {"interior": uniform_domain(self.problem, self.n_interior, g, self.dtype, self.device, unit=unit)}
        for name in self.problem.condition_items:   # in the spec's order
            if name in self.data:   # the observations: every batch holds all of them
                batch[name] = self.data[name]
            else:
                batch[name] = sample_region(self.problem, self.regions[name], self.counts[name], g, self.dtype,
                                            self.device, name, unit)
        self._set(batch)
        return self.batch

    def _set(self, full: dict[str, torch.Tensor]) -> None:
        self.full_batch = full
        self.batch = shard_batch(full, self.rank, self.world_size) if self.world_size > 1 else full

    def state_dict(self) -> dict:
        """The streams' state, the whole current batch (every rank's rows) and a data condition's
        held-out observations."""
        state = {"generator": self.generator.get_state(), "batch": {k: v.cpu() for k, v in self.full_batch.items()}}
        if self.heldout:   # not restored (they come from the spec); read by pdec plot
            state["heldout"] = {k: v.cpu() for k, v in self.heldout.items()}
        if self.sobol is not None:
            state["sobol_drawn"] = self.sobol.drawn
        return state

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        if self.sobol is not None:
            self.sobol = SobolStream(self.sobol.d, self.sobol.seed, state["sobol_drawn"])
        self._set({k: v.to(self.device, self.dtype) for k, v in state["batch"].items()})


#: Points given from Python: one fixed batch, or a function of the batch index k (0, 1, 2, …).
Points = Union[Mapping[str, torch.Tensor], Callable[[int], Mapping[str, torch.Tensor]]]


class GivenPoints:
    """Training points given by the user instead of drawn from the spec's regions.

    Args:
        problem: the problem; the batch must have exactly its terms ("interior" and each condition),
            except the conditions on :class:`~pdec.spec.Data`, whose observations are added.
        points: one batch {term: (N_τ, d)} kept for the whole run, or ``draw(k) -> batch``, called
            for the first batch (k = 0) and at each re-sampling (k = 1, 2, …). ``draw`` must be a
            function of k alone (give it its own seeded ``torch.Generator`` if it draws at random,
            e.g. ``torch.Generator().manual_seed(1000 + k)``), and in a data-parallel run give the
            same batch on every rank (the training loop checks each batch's counts and sums
            across ranks): a resumed run calls ``draw(k)`` for the checkpoint's k and
            refuses to continue if that is not the batch it saved. Rows are points in the domain's
            variable order (tensors, arrays or nested lists; converted to ``dtype`` and
            ``device``, detached). Points outside the domain's box are used, with a warning; a
            condition's points off its region (:func:`on_region`) are refused.
        eval_points: held-out points (N_eval, d) for the error metrics; None: ``n_eval`` points
            drawn uniformly from the domain with ``seed``, as :class:`PointSampler` draws them.
        rank, world_size: data parallel, as in :class:`PointSampler`.
        state: a checkpoint's :meth:`state_dict` to resume from: the points given must reproduce
            its batch, and its evaluation set is used unless ``eval_points`` is given (then they
            must be equal).

    The interface is :class:`PointSampler`'s (``batch``, ``full_batch``, ``eval_points``,
    ``heldout``, ``resample``, ``state_dict``), so the training loop treats both alike.
    """

    def __init__(self, problem: Problem, points: Points, eval_points=None, seed: int = 0, n_eval: int = 0,
                 dtype=torch.float64, device=None, rank: int = 0, world_size: int = 1,
                 state: dict | None = None):
        self.problem = problem
        self.data, self.heldout = _observations(problem, dtype, device)
        self.terms = ["interior", *(name for name in problem.condition_items if name not in self.data)]
        self.draw = points if callable(points) else None
        self.fixed = None if callable(points) else points
        self.dtype, self.device = dtype, device
        self.rank, self.world_size = rank, world_size
        self.eval_given = eval_points is not None
        saved_eval = state.get("eval_points") if state else None
        if eval_points is not None:
            self.eval_points = self._points("eval_points", eval_points)
            if saved_eval is not None and not _same(self.eval_points, saved_eval):
                raise PdecError("eval_points differ from the evaluation set the run was trained with; "
                                "resume with the same ones, or without eval_points (the saved set is used)")
        elif saved_eval is not None:
            self.eval_points, self.eval_given = saved_eval.to(device, dtype), True
        else:
            self.eval_points = evaluation_set(problem, n_eval, seed, dtype, device)
        self.full_batch: dict[str, torch.Tensor] = {}
        self.batch: Mapping[str, torch.Tensor] = {}
        if state is None:
            self.k = -1
            self.resample()
        else:
            self._restore(state)

    @property
    def resamples(self) -> bool:
        """Whether :meth:`resample` draws new points (a function was given, not a fixed batch)."""
        return self.draw is not None

    def _points(self, name: str, X) -> torch.Tensor:
        if isinstance(X, torch.Tensor):
            X = X.detach()
            if not torch.is_floating_point(X):
                raise PdecError(f"points for {name!r} must be floating-point numbers, got {X.dtype}")
        else:
            try:
                X = torch.as_tensor(X, dtype=self.dtype)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise PdecError(f"points for {name!r}: not an array of numbers ({exc})") from None
        d = len(self.problem.variables)
        if X.dim() != 2 or X.shape[1] != d or X.shape[0] < 1:
            raise PdecError(f"points for {name!r} have shape {tuple(X.shape)}; expected (N, {d}) with N ≥ 1: "
                            f"one row per point, columns {', '.join(map(str, self.problem.variables))}")
        if not bool(torch.isfinite(X).all()):
            raise PdecError(f"points for {name!r} must be finite")
        X = X.to(self.device, self.dtype)
        lo, hi = _bounds(self.problem, self.dtype, X.device)
        slack = 1e-12 * (hi - lo).clamp(min=1.0)
        outside = int(((X < lo - slack) | (X > hi + slack)).any(dim=1).sum())
        if outside:
            warnings.warn(f"{outside} of the {X.shape[0]} points for {name!r} lie outside the domain's box "
                          f"{[(float(a), float(b)) for a, b in zip(lo, hi)]}", PdecWarning, stacklevel=4)
        inside = domain_predicate(self.problem)
        if inside is not None and name in ("interior", "eval_points"):
            elsewhere = int((~inside(X.cpu())).sum())
            if elsewhere:
                warnings.warn(f"{elsewhere} of the {X.shape[0]} points for {name!r} lie outside the domain: "
                              f"{where_text(self.problem)} is false there", PdecWarning, stacklevel=4)
        return X

    def _checked(self, given) -> dict[str, torch.Tensor]:
        if not isinstance(given, Mapping):
            raise PdecError(f"points: expected a mapping term -> (N, d) tensor, got {type(given).__name__}")
        data = [str(t) for t in given if t in self.data]
        if data:
            raise PdecError(f"points: condition {data[0]!r} takes its points and values from its Data region in "
                            f"the spec; leave it out of the batch (to train on other data, give the spec other "
                            f"arrays, or dataclasses.replace its problem)")
        if set(given) != set(self.terms):
            missing = [t for t in self.terms if t not in given]
            extra = [str(t) for t in given if t not in self.terms]
            raise PdecError(f"points: the batch must have the terms {', '.join(self.terms)}"
                            + (f"; missing {', '.join(missing)}" if missing else "")
                            + (f"; unknown {', '.join(extra)}" if extra else ""))
        full = {t: self._points(t, given[t]) for t in self.terms}
        for name, region in ((n, c.on) for n, c in self.problem.condition_items.items() if n not in self.data):
            off = int((~on_region(self.problem, region, full[name])).sum())
            cut_off = off - int((~on_region(self.problem, region, full[name], cut=False)).sum())
            if cut_off:
                raise PdecError(f"{cut_off} of the {len(full[name])} points given for condition {name!r} lie on "
                                f"its region's face ({region.describe()}) but outside the domain: "
                                f"{where_text(self.problem)} is false there")
            if off and isinstance(region, Periodic):
                lo, hi = self.problem.domain.interval(region.var)
                raise PdecError(f"{off} of the {len(full[name])} points given for the periodic condition {name!r} "
                                f"are not on the face {region.var} = {lo:g}: give each pair by that point, the "
                                f"condition pairs it with its image on {region.var} = {hi:g}")
            if off:
                raise PdecError(f"{off} of the {len(full[name])} points given for condition {name!r} are not on "
                                f"its region, {region.describe()}: the condition would be imposed elsewhere, "
                                f"which is another problem (for measured values at other points, declare a "
                                f"condition on Data(points, values))")
        full = {t: full[t] if t in full else self.data[t] for t in ["interior", *self.problem.condition_items]}
        _check_data_ranks(self.data, self.heldout, self.world_size)
        if self.world_size > 1 and min(X.shape[0] for X in full.values()) < self.world_size:
            raise PdecError(f"{self.world_size} ranks need at least {self.world_size} points of every term")
        return full

    def _set(self, full: dict[str, torch.Tensor]) -> None:
        self.full_batch = full
        self.batch = shard_batch(full, self.rank, self.world_size) if self.world_size > 1 else full

    def resample(self) -> Mapping[str, torch.Tensor]:
        """The next batch: ``draw(k)`` for the next k, or the fixed batch again."""
        self.k += 1
        self._set(self._checked(self._draw() if self.draw is not None else self.fixed))
        return self.batch

    def _draw(self):
        try:
            return self.draw(self.k)
        except Exception as exc:   # the user's function: its error, with where it came from
            raise PdecError(f"draw({self.k}) (the points= function) failed: {type(exc).__name__}: {exc}") from exc

    def _restore(self, state: dict) -> None:
        self.k = state["k"]
        saved = {t: X.to(self.device, self.dtype) for t, X in state["batch"].items()}
        given = self._checked(self._draw() if self.draw is not None else self.fixed)
        if set(given) != set(saved) or not all(_same(given[t], saved[t]) for t in saved):
            which = f"draw({self.k})" if self.draw is not None else "the points given"
            raise PdecError(f"{which} differs from the batch the run saved at its checkpoint; resume with the "
                            f"same points (a draw function must depend on k alone)")
        self._set(saved)

    def state_dict(self) -> dict:
        """The batch index, the whole current batch, a data condition's held-out observations and
        (when given) the evaluation set."""
        state = {"k": self.k, "batch": {k: v.cpu() for k, v in self.full_batch.items()}}
        if self.heldout:   # not restored (they come from the spec); read by pdec plot
            state["heldout"] = {k: v.cpu() for k, v in self.heldout.items()}
        if self.eval_given and self.eval_points is not None:
            state["eval_points"] = self.eval_points.cpu()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Resume from ``state`` (the points given must reproduce its batch)."""
        self._restore(state)


def _observations(problem: Problem, dtype, device) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The data conditions' rows to train on, and those held out to validate on (the conditions
    with ``holdout``), each (·, d + M) in ``dtype`` on ``device``."""
    train, heldout = {}, {}
    for name in problem.data_conditions:
        rows, held = problem.data_split(name)
        train[name] = rows.to(device, dtype)
        if held is not None:
            heldout[name] = held.to(device, dtype)
    return train, heldout


def _check_data_ranks(data: Mapping[str, torch.Tensor], heldout: Mapping[str, torch.Tensor], world_size: int
                      ) -> None:
    """Each rank trains on a block of a data condition's training rows: there must be one for
    every rank."""
    for name, table in data.items():
        if len(table) < world_size:
            held = len(heldout[name]) if name in heldout else 0
            raise PdecError(f"condition {name!r} trains on {len(table)} observation(s) (its Data region"
                            + (f", {held} more held out" if held else "") + f"), fewer than the {world_size} "
                            f"ranks, each of which takes a block of them: train on at most {len(table)} rank(s)"
                            + (" or hold fewer out" if held else ""))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a.cpu(), b.cpu().to(a.dtype))


def _split(total: int, names: list[str]) -> dict[str, int]:
    if not names:
        return {}
    base, extra = divmod(total, len(names))
    return {n: base + (1 if i < extra else 0) for i, n in enumerate(names)}
