"""Quasi-random training points (``sampling = "sobol"``): coverage, regions, resume."""

from __future__ import annotations

import math

import pytest
import torch

import pdec
from pdec.train.runs import read_metrics
from pdec.train.sampling import PointSampler, SobolStream
from conftest import ROOT

SMALL = dict(n_interior=32, n_condition=16, n_eval=100, eval_every=2, progress=False)


def test_sobol_points_integrate_far_better_than_pseudo_random_ones():
    """The mean of sin πx sin πy over 1024 points against its integral 4/π²: the Sobol error is
    O(log² N / N), the pseudo-random one O(1/√N)."""
    problem = pdec.load_spec(ROOT / "specs" / "poisson2d.py")
    for seed in range(3):
        errors = {}
        for sampling in ("uniform", "sobol"):
            X = PointSampler(problem, 1024, 120, seed=seed, sampling=sampling).batch["interior"]
            mean = (torch.sin(math.pi * X[:, 0]) * torch.sin(math.pi * X[:, 1])).mean()
            errors[sampling] = abs(float(mean) - 4 / math.pi**2)
        assert errors["sobol"] < 1e-4 < errors["uniform"] / 3, errors


def test_sobol_points_lie_on_their_regions_and_in_a_cut_domain():
    heat = pdec.load_spec(ROOT / "specs" / "heat1d.py")
    s = PointSampler(heat, 64, 40, seed=0, sampling="sobol")
    cond = s.batch["initial_boundary"]
    assert torch.all(cond[:20, 0] == 0) and torch.all((cond[20:, 1] == 0) | (cond[20:, 1] == 1))
    assert torch.all((s.batch["interior"] >= 0) & (s.batch["interior"] < 1))
    disk = pdec.load_spec(ROOT / "specs" / "poisson_disk.py")
    X = PointSampler(disk, 500, 10, seed=0, sampling="sobol").batch["interior"]
    assert torch.all(X.pow(2).sum(1) < 1) and abs(float(X.pow(2).sum(1).mean()) - 0.5) < 0.01
    # each batch continues the sequence; the seed scrambles it
    a, b = PointSampler(heat, 64, 40, seed=0, sampling="sobol"), PointSampler(heat, 64, 40, seed=1, sampling="sobol")
    first = a.batch["interior"].clone()
    a.resample()
    assert not torch.equal(a.batch["interior"], first) and not torch.equal(b.batch["interior"], first)
    stream = SobolStream(2, seed=0)
    whole = stream(10)
    assert torch.equal(SobolStream(2, seed=0, drawn=4)(6), whole[4:])


def test_a_sobol_run_resumes_exactly(tmp_path):
    def compiled():
        return pdec.compile(pdec.load_spec(ROOT / "specs" / "heat1d.py"), hidden=(6,), write=False)

    full = pdec.train(compiled(), "adam", steps=8, seed=3, run_root=tmp_path / "a", lr=1e-2, resample_every=3,
                      sampling="sobol", **SMALL)
    part = pdec.train(compiled(), "adam", steps=5, seed=3, run_root=tmp_path / "b", lr=1e-2, resample_every=3,
                      sampling="sobol", **SMALL)
    resumed = pdec.train(compiled(), resume=part.run_dir, steps=8, progress=False)
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)   # the batches after the resume continue the Sobol sequence
    assert read_metrics(part.run_dir)[-1]["loss"] == full.history[-1]["loss"]
    uniform = pdec.train(compiled(), "adam", steps=8, seed=3, run_root=tmp_path / "c", lr=1e-2, resample_every=3,
                         **SMALL)
    assert read_metrics(uniform.run_dir)[-1]["loss"] != read_metrics(full.run_dir)[-1]["loss"]


def test_bad_sampling_settings_are_refused(tmp_path):
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / "heat1d.py"), hidden=(4,), write=False)
    with pytest.raises(pdec.PdecError, match="sampling must be 'uniform' or 'sobol'"):
        pdec.train(compiled, "adam", steps=1, sampling="halton", run_root=tmp_path, **SMALL)
    X = torch.rand(10, 2, dtype=torch.float64)
    with pytest.raises(pdec.PdecError, match="sampling = 'sobol' draws the spec's points, but points= gives them"):
        pdec.train(compiled, "adam", steps=1, sampling="sobol", run_root=tmp_path, progress=False,
                   points={"interior": X, "initial_boundary": X * 0})
