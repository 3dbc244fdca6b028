"""Data parallel on torch.distributed (gloo, 2 CPU processes): equality with one process,
sharding, the command line (--nproc), resuming with another number of ranks, a failed rank."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import pdec
from pdec.parallel import shard_batch, shard_rows
from pdec.train.sampling import PointSampler
from conftest import ROOT
from distributed_worker import CASES, SETTINGS, SPEC, run_case

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _torchrun(*args: str, cwd=None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           *args], capture_output=True, text=True, timeout=timeout, env=ENV, cwd=cwd)


def _pdec(*args: str, cwd, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pdec", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=cwd)


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("two_ranks")
    r = _torchrun(str(ROOT / "tests" / "distributed_worker.py"), str(out))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_equal_one_process_on_the_union_batch(two_rank_results, case):
    one = run_case(case)
    two = torch.load(two_rank_results / f"{case}.pt")
    compiled = pdec.compile(pdec.load_spec(SPEC), hidden=(8, 6), write=False)
    torch.manual_seed(SETTINGS["seed"])
    for layer in compiled.model.layers:
        layer.reset_parameters()
    start = [p.detach() for p in compiled.model.parameters()]
    moved = max(float((p - s).norm() / s.norm()) for p, s in zip(one, start))
    assert moved > 1e-4, "the 5 steps did not move the parameters: the comparison would be vacuous"
    for p, q in zip(one, two):
        assert float((p - q).norm() / p.norm()) < 1e-10


def test_shards_partition_the_single_process_batch():
    problem = pdec.load_spec(ROOT / "specs" / "heat1d.py")
    full = PointSampler(problem, 101, 31, seed=4).batch
    for world in (2, 3):
        shards = [PointSampler(problem, 101, 31, seed=4, rank=r, world_size=world).batch for r in range(world)]
        for term, X in full.items():
            assert torch.equal(torch.cat([s[term] for s in shards]), X)
            assert all(s.totals[term] == X.shape[0] for s in shards)
    assert [shard_rows(7, r, 3) for r in range(3)] == [slice(0, 2), slice(2, 4), slice(4, 7)]
    assert shard_batch(full, 1, 2).totals == {t: X.shape[0] for t, X in full.items()}
    with pytest.raises(pdec.PdecError, match="at least 4 points"):
        PointSampler(problem, 3, 31, seed=4, rank=0, world_size=4)


def _params(run_dir):
    return list(torch.load(run_dir / "checkpoint.pt", weights_only=False)["model"].values())


def test_cli_nproc_and_resume_with_another_rank_count(tmp_path):
    spec = str(ROOT / "specs" / "heat1d.py")
    settings = dict(n_interior=41, n_condition=12, n_eval=50, seed=2, progress=False)
    sets = [a for k, v in settings.items() if k != "progress" for a in ("--set", f"{k}={v}")]
    sets += ["--set", "hidden=8", "--no-progress"]
    full = pdec.train(pdec.compile(pdec.load_spec(spec), hidden=(8,), write=False), "kfac", steps=6,
                      run_root=tmp_path / "one", **settings)

    # 2 ranks for 4 steps, then 1 process to step 6
    r = _pdec("train", spec, "--nproc", "2", "--steps", "4", "--runs", "runs2", *sets, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    (run_dir,) = list((tmp_path / "runs2" / "heat1d").iterdir())  # rank 0 alone wrote a directory
    assert json.loads((run_dir / "config.json").read_text())["ranks"] == 2
    r = _pdec("train", "--resume", str(run_dir), "--steps", "6", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run_dir / "summary.json").read_text())["ranks"] == 1
    for p, q in zip(full.model.state_dict().values(), _params(run_dir)):
        assert float((p - q).norm() / p.norm()) < 1e-10

    # 1 process for 4 steps, then 2 ranks to step 6
    part = pdec.train(pdec.compile(pdec.load_spec(spec), hidden=(8,), write=False), "kfac", steps=4,
                      run_root=tmp_path / "part", **settings)
    r = _pdec("train", "--resume", str(part.run_dir), "--steps", "6", "--nproc", "2", "--no-progress",
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((part.run_dir / "summary.json").read_text())["ranks"] == 2
    for p, q in zip(full.model.state_dict().values(), _params(part.run_dir)):
        assert float((p - q).norm() / p.norm()) < 1e-10


FAILING_SPEC = '''
import os
import sympy as sp
import torch
from pdec import Box, Condition, Problem, Sampler

x, y = sp.symbols("x y", real=True)
u = sp.Function("u")(x, y)


def edge(n, g):
    if os.environ.get("RANK") == "1":
        raise RuntimeError("this sampler fails on rank 1")
    X = torch.rand(n, 2, generator=g, dtype=torch.float64)
    X[:, 0] = 0.0
    return X


problem = Problem(name="fails_on_rank1", description="Poisson with a sampler that fails on rank 1",
                  domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u],
                  interior=-(u.diff(x, 2) + u.diff(y, 2)) - 1,
                  conditions={"edge": Condition(u, on=Sampler(edge, "x = 0"))})
'''


def test_a_failed_rank_stops_the_job_with_a_clear_message(tmp_path):
    (tmp_path / "fails.py").write_text(textwrap.dedent(FAILING_SPEC))
    r = _pdec("train", "fails.py", "--nproc", "2", "--steps", "3", "--no-progress", "--set", "n_eval=0",
              cwd=tmp_path, timeout=300)
    assert r.returncode != 0
    assert "this sampler fails on rank 1" in r.stderr
    assert "pdec: rank 1 of 2 failed" in r.stderr
    assert not (tmp_path / "runs" / "fails_on_rank1").exists() or not any(
        (p / "checkpoint.pt").exists() for p in (tmp_path / "runs" / "fails_on_rank1").iterdir())


def test_memory_estimate_matches_the_tensors_it_predicts():
    from pdec.curvature import linearize
    from pdec.optim import get_optimizer
    from pdec.train.memory import estimate_memory

    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / "heat1d.py"), hidden=(8, 6), write=False)
    model = compiled.model
    batch = PointSampler(compiled.problem, 30, 10, seed=0).batch
    est = estimate_memory(model, batch, "kfac")
    kept = sum(t.numel() * t.element_size() for term, X in batch.items()
               for lin in [linearize(model, term, X)] for t in (*lin.inputs, *lin.output_grads))
    assert est.parts["stacks"] == kept
    opt = get_optimizer("kfac")(model)
    held = sum(M.numel() * M.element_size() for fs in opt.pre.factors.values() for f in fs for M in (f.A, f.B))
    assert held <= est.parts["factors"] <= 4 * held  # kept factors, plus merged, damped and eigen copies
    D = sum(p.numel() for p in model.parameters())
    engd = estimate_memory(model, batch, "engd")
    assert engd.parts["gramian"] >= 3 * D * D * 8
    assert "gramian" not in est.parts and "stacks" in est.summary()


def test_training_refuses_a_run_that_will_not_fit(tmp_path, monkeypatch):

    monkeypatch.setattr(sys.modules["pdec.train.loop"], "available_memory", lambda device: 2**20)
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / "heat1d.py"), hidden=(64, 64), write=False)
    with pytest.raises(pdec.PdecError, match=r"needs ≈ .* per rank .* but only 1.0 MiB is free"):
        pdec.train(compiled, "engd", steps=1, n_interior=2000, run_root=tmp_path, progress=False)
    assert not (tmp_path / "heat1d").exists()


def test_sigint_to_a_two_rank_job_saves_a_checkpoint(tmp_path):
    import signal
    import time

    cmd = [sys.executable, "-m", "pdec", "train", str(ROOT / "specs" / "heat1d.py"), "--nproc", "2",
           "--steps", "1000000", "--no-progress", "--set", "hidden=8", "--set", "n_interior=41",
           "--set", "n_condition=12", "--set", "n_eval=50", "--set", "checkpoint_every=1000000",
           "--set", "eval_every=1"]
    p = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    metrics = None
    while time.time() < deadline and p.poll() is None:
        found = list((tmp_path / "runs").glob("heat1d/*/metrics.csv"))
        if found and len(found[0].read_text().splitlines()) > 5:  # header, step 0 and a few steps
            metrics = found[0]
            break
        time.sleep(0.2)
    assert metrics is not None, p.stderr.read() if p.poll() is not None else "no steps within 120 s"
    p.send_signal(signal.SIGINT)  # what Ctrl-C does to the launcher; it passes the signal on to the ranks
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "stopped by SIGINT" in err
    run_dir = metrics.parent
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] >= 4
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert checkpoint["step"] == summary["steps"]


@pytest.mark.parametrize("spec", ["specs/heat1d.py", "tests/specs/measured_flux.py", "specs/heat1d_inverse.py"])
def test_a_shard_divides_by_the_batch_total_everywhere(spec):
    """Two halves of a batch, each divided by the whole batch's count, sum to the whole batch's
    loss, gradient, factors, Gramian forms and trial losses (what the ranks' all-reduce adds); also
    for a data condition, whose observations the ranks split, and for a learned parameter's
    gradient and Gramian blocks."""
    from pdec.curvature import curvature_pass, gramian_quadratic_forms, layer_matrices, linearized_quadratic_forms
    from pdec.loss import pinn_loss
    from pdec.optim.line_search import trial_losses

    compiled = pdec.compile(pdec.load_spec(ROOT / spec), hidden=(6,), write=False)
    model = compiled.model
    full = PointSampler(compiled.problem, 21, 9, seed=3).batch
    halves = [shard_batch(full, r, 2) for r in range(2)]
    v = [torch.randn_like(M) for M in layer_matrices(model)]
    base = [M.detach() for M in layer_matrices(model)]

    def quantities(batch):
        cp = curvature_pass(model, batch)
        return [cp.loss, *cp.gradient, *(M for fs in cp.factors.values() for f in fs for M in (f.A, f.B)),
                linearized_quadratic_forms(cp.linearizations, [v]), gramian_quadratic_forms(model, batch, [v]),
                pinn_loss(model, batch)[0], trial_losses(model, batch, base, v, torch.tensor([0.0, 0.1], dtype=torch.float64)),
                *([cp.learned_gradient, *cp.learned_gramians.values()] if cp.learned_gradient is not None else [])]

    whole = quantities(full)
    parts = [quantities(h) for h in halves]
    for w, a, b in zip(whole, *parts):
        torch.testing.assert_close(a + b, w, rtol=1e-12, atol=1e-14)


RANK_DEPENDENT_POINTS = """
import os
from pathlib import Path
import pdec
from pdec.train.sampling import PointSampler

compiled = pdec.compile(pdec.load_spec(Path(os.environ["SPEC"])), hidden=(6,), write=False)
rank = int(os.environ["RANK"])
pdec.train(compiled, "adam", steps=4, save=False, progress=False, n_eval=0, resample_every=2,
           points=lambda k: PointSampler(compiled.problem, 20, 8, seed=10 * k + (rank if k == 1 else 0)).batch)
"""


def test_given_points_that_differ_between_ranks_are_an_error(tmp_path):
    """A draw(k) that depends on the rank would train each rank on a different batch: the job
    stops at the first such batch (k = 1 here, the re-sampling at step 2)."""
    (tmp_path / "job.py").write_text(RANK_DEPENDENT_POINTS)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                        str(tmp_path / "job.py")], capture_output=True, text=True, timeout=300,
                       env={**ENV, "SPEC": str(ROOT / "specs" / "heat1d.py")})
    assert r.returncode != 0
    assert "the points given differ between ranks (batch k = 1)" in r.stderr

