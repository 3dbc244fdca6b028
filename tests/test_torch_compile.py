"""``torch_compile = true``: the compiled loss and trial pass give eager mode's numbers.

The reference is the same model in eager mode (its functions are checked against torch.func and
autograd elsewhere: tests/test_generated_reference.py, tests/test_curvature.py). Compiled code
may reorder floating-point operations, so the comparisons are to round-off, not bit for bit.
TorchInductor compiles C++ at the first call of each function: these tests take tens of seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

import pdec
from pdec.curvature import layer_matrices
from pdec.loss import pinn_loss
from pdec.optim.line_search import GRID, trial_losses
from pdec.torch_compile import compiled as compiled_fn, use_torch_compile
from pdec.train.sampling import PointSampler
from conftest import ROOT

SMALL = dict(n_interior=48, n_condition=16, n_eval=200, eval_every=2, progress=False)


@pytest.fixture(scope="module")
def heat():
    """heat1d (interior: collapsed, S = 3; one condition term, S = 1), a 2-8-1 net, its batch.
    Tests copy the model before they change it."""
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / "heat1d.py"), hidden=(8,), write=False, seed=0)
    batch = PointSampler(compiled.problem, SMALL["n_interior"], SMALL["n_condition"], seed=0).batch
    return compiled, batch


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-12) -> bool:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) <= rel * max(float(b.abs().max()), 1e-300)


def test_compiled_loss_and_trial_pass_give_eager_results(heat):
    """The loss (each term's and the total) and its gradient, with and without autograd, and the
    line search's 31 trial losses equal eager mode's to 1e-12 on the same model."""
    compiled, batch = heat
    eager = copy.deepcopy(compiled.model)
    fast = use_torch_compile(copy.deepcopy(eager))
    assert fast.torch_compiled and not eager.torch_compiled

    total_e, terms_e = pinn_loss(eager, batch)
    total_c, terms_c = pinn_loss(fast, batch)
    assert list(terms_c) == list(terms_e) == list(batch)
    for term in batch:
        assert _close(terms_c[term], terms_e[term])
    grads_e = torch.autograd.grad(total_e, list(eager.parameters()))
    grads_c = torch.autograd.grad(total_c, list(fast.parameters()))
    assert _close(total_c, total_e)
    for a, b in zip(grads_c, grads_e):
        assert _close(a, b)
    with torch.no_grad():
        assert _close(pinn_loss(fast, batch)[0], total_e)
        for p in fast.parameters():   # new weights: the compiled graph reads them, it did not keep them
            p.mul_(1.5)
        for p in eager.parameters():
            p.mul_(1.5)
        assert _close(pinn_loss(fast, batch)[0], pinn_loss(eager, batch)[0])

    base = [M.detach() for M in layer_matrices(eager)]
    direction = [0.1 * torch.randn_like(M) for M in base]
    alphas = torch.tensor(GRID, dtype=torch.float64)
    assert _close(compiled_fn(trial_losses)(fast, batch, base, direction, alphas),
                  trial_losses(eager, batch, base, direction, alphas))


@pytest.mark.parametrize("optimizer,extra", [("kfac", {}), ("adam", {"lr": 2e-2})])
def test_training_with_torch_compile_follows_the_eager_run(tmp_path, heat, optimizer, extra):
    """pdec.train with torch_compile=True: the same losses and errors as the eager run (the same
    start and points) to round-off over 6 steps, and config.json records the setting."""
    compiled, _ = heat
    runs = {}
    for flag in (False, True):
        c = dataclasses.replace(compiled, model=copy.deepcopy(compiled.model))
        runs[flag] = pdec.train(c, optimizer, steps=6, seed=0, run_root=tmp_path / str(flag),
                                torch_compile=flag, **extra, **SMALL)
    eager, fast = runs[False], runs[True]
    assert [h["step"] for h in fast.history] == [h["step"] for h in eager.history] == [0, 2, 4, 6]
    for h_c, h_e in zip(fast.history, eager.history):
        assert h_c["loss"] == pytest.approx(h_e["loss"], rel=1e-9)
        assert h_c["rel_l2"] == pytest.approx(h_e["rel_l2"], rel=1e-9)
    assert eager.history[-1]["loss"] < 0.9 * eager.history[0]["loss"]   # the runs did descend
    settings = json.loads((fast.run_dir / "config.json").read_text())["settings"]
    assert settings["torch_compile"] is True


def test_broken_toolchain_is_a_clear_error_before_the_run_starts(tmp_path):
    """`pdec train --torch-compile` with no working C++ compiler (and an empty TorchInductor cache)
    exits with status 2, names the cause, and leaves no run directory."""
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"),
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor-cache")}
    proc = subprocess.run([sys.executable, "-m", "pdec", "train", str(ROOT / "specs" / "poisson2d.py"),
                           "--optimizer", "adam", "--steps", "1", "--torch-compile", "--no-progress",
                           "--runs", str(tmp_path / "runs"), "--set", "hidden=4"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "torch_compile = true, but torch.compile failed on cpu" in proc.stderr
    assert "no-such-compiler" in proc.stderr   # TorchInductor's own cause is passed on
    assert not (tmp_path / "runs").exists()


def test_the_setting_switches_both_ways_on_the_same_model(heat):
    """A model trained with torch_compile and then without it runs eager the second time (the
    setting is the run's, not left behind on the model)."""
    compiled_spec, _ = heat
    c = dataclasses.replace(compiled_spec, model=copy.deepcopy(compiled_spec.model))
    pdec.train(c, "adam", steps=1, save=False, torch_compile=True, **SMALL)
    assert c.model.torch_compiled
    pdec.train(c, "adam", steps=1, save=False, initialize=False, **SMALL)
    assert not c.model.torch_compiled


def test_changing_point_counts_follow_the_eager_run(heat, caplog):
    """Given points whose count changes at every re-sampling (10 batches of 9 different sizes): the
    compiled run (static, then dynamic shapes) gives the eager run's losses; nothing falls back."""
    compiled_spec, _ = heat
    problem = compiled_spec.problem

    def draw(k):
        g = torch.Generator().manual_seed(k)
        n = 20 + 3 * (k % 9)
        return {"interior": torch.rand(n, 2, generator=g, dtype=torch.float64),
                "initial_boundary": PointSampler(problem, 4, n // 2, seed=k).batch["initial_boundary"]}

    losses = {}
    for flag in (False, True):
        c = dataclasses.replace(compiled_spec, model=copy.deepcopy(compiled_spec.model))
        run = pdec.train(c, "adam", steps=10, seed=0, save=False, points=draw, resample_every=1,
                         torch_compile=flag, lr=1e-2, **{**SMALL, "eval_every": 1})
        losses[flag] = [h["loss"] for h in run.history]
    assert losses[True] == pytest.approx(losses[False], rel=1e-10)
    assert "recompile_limit" not in caplog.text   # TorchDynamo says so when it gives up compiling


def test_a_compile_failure_mid_run_saves_the_run(tmp_path, heat, monkeypatch):
    """torch.compile failing at step 3 (simulated: the compiled trial pass raises TorchDynamo's
    error): the run stops with a PdecError naming the step, its checkpoint holds step 2's
    parameters, and it resumes without the setting."""
    import pdec.optim.line_search as line_search

    compiled_spec, _ = heat
    c = dataclasses.replace(compiled_spec, model=copy.deepcopy(compiled_spec.model))
    calls = []

    def failing(fn):
        def run(*args):
            calls.append(1)
            if len(calls) == 3:
                raise torch._dynamo.exc.BackendCompilerFailed(fn, RuntimeError("simulated"), None)
            return trial_losses(*args)
        return run

    monkeypatch.setattr(line_search, "compiled", failing)
    with pytest.raises(pdec.PdecError, match=r"torch.compile failed at step 3 .*kept the parameters of step 2"):
        pdec.train(c, "kfac", steps=5, seed=0, run_root=tmp_path, torch_compile=True, **SMALL)
    (run_dir,) = (tmp_path / c.problem.name).iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 2
    monkeypatch.undo()
    resumed = pdec.train(dataclasses.replace(c, model=copy.deepcopy(compiled_spec.model)), resume=run_dir,
                         steps=4, torch_compile=False)
    assert resumed.status == "completed" and resumed.steps == 4
