"""pdec.samplers: ready-made boundary Samplers for cut boxes, against closed forms."""

from __future__ import annotations

import pytest
import sympy as sp
import torch

import pdec
from pdec import Box, Condition, Face, Problem
from pdec.samplers import on_segments, on_sphere
from pdec.train.sampling import PointSampler

t, x, y = sp.symbols("t x y", real=True)


def test_sphere_points_lie_on_it_uniformly_and_time_fills_its_interval():
    box = Box({t: (0, 2), x: (-1, 3), y: (-2, 2)}, time=t)
    X = on_sphere(box, {x: 1, y: 0}, 1.5).fn(20000, torch.Generator().manual_seed(0))
    assert X.shape == (20000, 3)
    r = ((X[:, 1] - 1)**2 + X[:, 2]**2).sqrt()
    assert torch.allclose(r, torch.full_like(r, 1.5), atol=1e-14)
    # uniform angle: E[cos θ] = 0, E[cos² θ] = 1/2; time uniform in [0, 2]: mean 1, var 1/3
    c = (X[:, 1] - 1) / 1.5
    assert abs(float(c.mean())) < 0.02 and abs(float((c**2).mean()) - 0.5) < 0.01
    assert abs(float(X[:, 0].mean()) - 1) < 0.02 and abs(float(X[:, 0].var()) - 1 / 3) < 0.01


def test_segments_are_weighted_by_length():
    box = Box({x: (-1, 1), y: (-1, 1)})
    edges = on_segments(box, x, y, [((0, -1), (0, 0)), ((0, 0), (1, 0)), ((-1, 1), (1, 1))])
    X = edges.fn(30000, torch.Generator().manual_seed(1))
    on_first = (X[:, 0] == 0) & (X[:, 1] <= 0)
    on_second = (X[:, 1] == 0) & (X[:, 0] > 0)
    on_third = X[:, 1] == 1
    assert bool((on_first | on_second | on_third).all())
    for part, share in ((on_first, 0.25), (on_second, 0.25), (on_third, 0.5)):   # lengths 1, 1, 2
        assert abs(float(part.double().mean()) - share) < 0.015
    assert abs(float(X[on_third, 0].mean())) < 0.03   # uniform along the segment
    assert "segments in (x, y): (0, -1)-(0, 0)" in edges.description


@pytest.mark.parametrize("call,message", [
    (lambda b: on_sphere(b, {x: 0, t: 0}, 1), "t not a variable of the box"),
    (lambda b: on_sphere(b, {x: 0}, 1), "two variables or more"),
    (lambda b: on_sphere(b, {x: 0, y: 0}, -1), "radius must be a positive number"),
    (lambda b: on_segments(b, x, y, [((0, 0), (0, 0))]), "length 0"),
    (lambda b: on_segments(b, x, y, []), "at least one segment"),
    (lambda b: on_segments(b, x, y, [(0, 1)]), r"takes \[\(\(a1, a2\), \(b1, b2\)\)"),
])
def test_bad_shapes_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(Box({x: (-1, 1), y: (-1, 1)}))


def test_an_l_shape_with_its_reentrant_edges_checks_and_trains(tmp_path):
    u = sp.Function("u")(x, y)
    box = Box({x: (-1, 1), y: (-1, 1)}, where=(x < 0) | (y > 0))
    data = u - sp.exp(x) * sp.sin(y)   # harmonic
    problem = Problem(
        name="lshape_edges", domain=box, unknowns=[u], interior=u.diff(x, 2) + u.diff(y, 2),
        conditions={"outer": Condition(data, on=Face(x, "min") | Face(x, "max") | Face(y, "min") | Face(y, "max")),
                    "reentrant": Condition(data, on=on_segments(box, x, y, [((0, -1), (0, 0)), ((0, 0), (1, 0))]))},
        exact={u: sp.exp(x) * sp.sin(y)}).validate()
    assert pdec.check_problem(problem).passed
    batch = PointSampler(problem, 50, 80, seed=0).batch
    assert bool(((batch["reentrant"][:, 0] == 0) | (batch["reentrant"][:, 1] == 0)).all())
    run = pdec.train(pdec.compile(problem, hidden=(16,), write=False), "kfac", steps=40, n_interior=300,
                     n_condition=120, n_eval=400, run_root=tmp_path, progress=False)
    assert run.history[-1]["rel_l2"] < 0.2 * run.history[0]["rel_l2"]
