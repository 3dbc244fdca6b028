"""Training loop behaviour: resume equality, signals, config errors, divergence, sampling."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import time
import types
import warnings

import pytest
import sympy as sp
import torch

import pdec
from pdec.loss import pinn_loss
from pdec.optim import get_optimizer
from pdec.cli import main
from pdec.train.config import resolve_config
from pdec.train.runs import read_metrics
from pdec.train.sampling import PointSampler, sample_region
from conftest import ROOT

SMALL = dict(n_interior=40, n_condition=12, n_eval=200, eval_every=2, progress=False)


def _compiled(name="heat1d", hidden=(6, 5)):
    return pdec.compile(pdec.load_spec(ROOT / "specs" / f"{name}.py"), hidden=hidden, write=False)


@pytest.mark.parametrize("optimizer,extra", [("adam", {"lr": 1e-2}), ("lbfgs", {}),
                                             ("sgd", {"lr": 1e-3, "resample_every": 3}),
                                             ("kfac", {"adaptive_damping": True})])
def test_resume_matches_uninterrupted_run(tmp_path, optimizer, extra):
    full = pdec.train(_compiled(), optimizer, steps=8, seed=3, run_root=tmp_path / "a", **SMALL, **extra)
    part = pdec.train(_compiled(), optimizer, steps=5, seed=3, run_root=tmp_path / "b", **SMALL, **extra)
    resumed = pdec.train(_compiled(), resume=part.run_dir, steps=8, progress=False)
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)
    assert resumed.steps == 8
    rows = read_metrics(part.run_dir)
    assert [int(r["step"]) for r in rows] == [0, 2, 4, 5, 6, 8]
    assert rows[-1]["loss"] == full.history[-1]["loss"]
    # the resumed run's history is the whole log, as metrics.csv (it held only the new rows)
    assert [r["step"] for r in resumed.history] == [0, 2, 4, 5, 6, 8]
    assert resumed.history[1]["loss"] == rows[1]["loss"]


def test_resume_refuses_other_settings_and_leaves_the_run_alone(tmp_path, capsys):
    run = pdec.train(_compiled(), "adam", steps=2, seed=0, run_root=tmp_path, lr=1e-2, **SMALL)
    before = {p.name: p.read_bytes() for p in run.run_dir.iterdir()}
    for kwargs, named in [({"optimizer": "kfac"}, "optimizer = 'kfac'"), ({"n_interior": 5}, "n_interior = 5"),
                          ({"lr": 1.0}, "lr = 1.0"), ({"sets": ["seed=4"]}, "seed = 4")]:
        with pytest.raises(pdec.PdecError, match=f"only steps, time_budget, progress, torch_compile may change, "
                                                 f"but {re.escape(named)} was given"):
            pdec.train(_compiled(), resume=run.run_dir, steps=4, **kwargs)
    with pytest.raises(pdec.PdecError, match="save=False: a resumed run writes into its directory"):
        pdec.train(_compiled(), resume=run.run_dir, steps=4, save=False)
    assert {p.name: p.read_bytes() for p in run.run_dir.iterdir()} == before
    # the CLI passes every flag on (it used to drop them)
    assert main(["train", "--resume", str(run.run_dir), "--steps", "4", "--optimizer", "sgd"]) != 0
    assert "optimizer = 'sgd' was given" in capsys.readouterr().err
    # with --nproc the request is checked once, before any rank starts
    assert main(["train", "--resume", str(run.run_dir), "--steps", "4", "--optimizer", "sgd", "--nproc", "2"]) != 0
    assert capsys.readouterr().err.count("optimizer = 'sgd' was given") == 1
    assert {p.name: p.read_bytes() for p in run.run_dir.iterdir()} == before
    # the run's own values are no change, compared as resolved values; None is "not given"; a budget
    # may come from --set or a config file too
    same = tmp_path / "same.toml"
    same.write_text('optimizer = "adam"\nn_interior = 40\n[adam]\nlr = 0.01\n[kfac]\ndamping = 1.0\n')
    resumed = pdec.train(_compiled(), "adam", resume=run.run_dir, lr=1e-2, n_interior=40, seed=None, device="cpu",
                         dtype="float64", config_file=same, sets=["steps=3", "torch_compile=off"], progress=False)
    assert resumed.steps == 3


def test_resume_with_other_terms_is_a_clear_error(tmp_path):
    """A checkpoint whose terms differ from the compiled spec's (the conditions changed) is refused."""
    part = pdec.train(_compiled(), "adam", steps=2, seed=3, run_root=tmp_path, lr=1e-2, **SMALL)
    other = _compiled("poisson2d")  # terms interior + boundary, not interior + initial_boundary
    with pytest.raises(pdec.PdecError, match="conditions changed since the run started"):
        pdec.train(other, resume=part.run_dir, steps=4, progress=False)


def test_run_directory_contents(tmp_path):
    run = pdec.train(_compiled(), "adam", steps=4, seed=0, run_root=tmp_path, **SMALL)
    files = {p.name for p in run.run_dir.iterdir()}
    assert {"config.json", "module.py", "metrics.csv", "checkpoint.pt", "summary.json"} <= files
    assert (run.run_dir / "module.py").read_text() == _compiled().source
    cfg = json.loads((run.run_dir / "config.json").read_text())
    assert cfg["settings"]["seed"] == 0 and cfg["parameters_D"] == sum(p.numel() for p in run.model.parameters())
    assert cfg["dtype"] == "float64" and "torch" in cfg["versions"]
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 4
    assert {"rel_l2", "abs_rms"} <= set(run.final)


def test_resuming_a_finished_run_is_refused_and_leaves_it_alone(tmp_path):
    run = pdec.train(_compiled(), "adam", steps=3, seed=0, run_root=tmp_path, lr=1e-2, **SMALL)
    before = {p.name: p.read_bytes() for p in run.run_dir.iterdir()}
    with pytest.raises(pdec.PdecError, match=r"steps = 3 is reached; to continue it, give a larger --steps"):
        pdec.train(_compiled(), resume=run.run_dir, progress=False)
    assert {p.name: p.read_bytes() for p in run.run_dir.iterdir()} == before
    resumed = pdec.train(_compiled(), resume=run.run_dir, steps=4, progress=False)
    assert resumed.steps == 4


def test_resuming_after_the_problem_changed_is_refused(tmp_path):
    spec = tmp_path / "heat1d.py"
    text = (ROOT / "specs" / "heat1d.py").read_text()
    spec.write_text(text)

    def compiled():
        return pdec.compile(pdec.load_spec(spec), hidden=(6, 5), write=False)

    run = pdec.train(compiled(), "adam", steps=2, seed=0, run_root=tmp_path, lr=1e-2, **SMALL)
    spec.write_text("# a comment does not change the problem\n" + text)
    assert pdec.train(compiled(), resume=run.run_dir, steps=3, progress=False).steps == 3
    spec.write_text(text.replace("kappa: sp.Rational(1, 4)", "kappa: sp.Rational(1, 2)"))
    with pytest.raises(pdec.PdecError, match="problem changed since the run"):
        pdec.train(compiled(), resume=run.run_dir, steps=4, progress=False)
    # plot draws the run from the module it trained (module.py), not from the spec file
    from pdec.cli import main

    spec.unlink()
    assert main(["plot", str(run.run_dir)]) == 0 and (run.run_dir / "solution.png").is_file()


def test_a_wrong_exact_solution_is_warned_about(tmp_path):
    spec = tmp_path / "heat1d.py"
    text = (ROOT / "specs" / "heat1d.py").read_text()
    spec.write_text(text.replace("sp.exp(-sp.pi**2 * t / 4)", "sp.exp(-sp.pi**2 * t / 2)"))
    wrong = pdec.compile(pdec.load_spec(spec), hidden=(6, 5), write=False)
    with pytest.warns(UserWarning, match=r"does not satisfy interior \(see `pdec check "):
        run = pdec.train(wrong, "adam", steps=1, run_root=tmp_path / "runs", lr=1e-2, **SMALL)
    record = json.loads((run.run_dir / "config.json").read_text())
    assert record["exact_solution_check"] == "failed: interior"   # the run's record keeps it
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the shipped spec's exact solution passes: no warning
        run = pdec.train(_compiled(), "adam", steps=1, run_root=tmp_path / "runs", lr=1e-2, **SMALL)
    assert json.loads((run.run_dir / "config.json").read_text())["exact_solution_check"] == "passed"


@pytest.mark.parametrize("value", ["0", "abc", "64,-1", "''"])
def test_bad_widths_are_a_setting_error(value):
    with pytest.raises(pdec.PdecError, match="expected positive integers such as 64 or 64,64"):
        resolve_config({"steps": 1}, sets=[f"hidden={value}"])
    assert resolve_config({"steps": 1}, sets=["hidden=32,16"])[0].hidden == (32, 16)


def test_training_with_other_options_leaves_the_compiled_module_alone(tmp_path, monkeypatch, capsys):
    from pdec.cli import main

    monkeypatch.chdir(tmp_path)  # generated/ is written below the working directory
    spec = str(ROOT / "specs" / "heat1d.py")
    assert main(["compile", spec]) == 0
    shipped = (tmp_path / "generated" / "heat1d.py").read_text()
    assert main(["train", spec, "--optimizer", "adam", "--steps", "2", "--set", "hidden=8,8",
                 "--set", "n_interior=20", "--set", "n_condition=8", "--no-progress"]) == 0
    assert "module.py in the run directory" in capsys.readouterr().out
    assert (tmp_path / "generated" / "heat1d.py").read_text() == shipped
    run_dir = next((tmp_path / "runs" / "heat1d").iterdir())
    assert "hidden=(8, 8)" in (run_dir / "module.py").read_text()
    # the same options as the file: it is the module, and train keeps it current
    (tmp_path / "generated" / "heat1d.py").write_text(shipped + "# out of date\n")
    assert main(["train", spec, "--optimizer", "adam", "--steps", "1", "--set", "n_interior=20",
                 "--set", "n_condition=8", "--no-progress"]) == 0
    assert (tmp_path / "generated" / "heat1d.py").read_text() == shipped


def test_unknown_setting_suggests_closest():
    with pytest.raises(pdec.PdecError, match="unknown setting 'n_interiro'; did you mean 'n_interior'"):
        resolve_config({"optimizer": "adam", "steps": 1, "n_interiro": 5})
    with pytest.raises(pdec.PdecError, match="did you mean 'lr'"):
        resolve_config({"optimizer": "adam", "steps": 1}, sets=["lrr=0.1"])
    with pytest.raises(pdec.PdecError, match="unknown optimizer 'adma'; did you mean 'adam'"):
        resolve_config({"optimizer": "adma", "steps": 1})
    with pytest.raises(pdec.PdecError, match="out of range"):
        resolve_config({"optimizer": "adam", "steps": 1, "lr": -1.0})


def test_on_off_settings_read_their_words(tmp_path):
    # bool("off") is True: "off" once switched torch.compile on
    for text, want in [("off", False), ("no", False), ("false", False), ("0", False),
                       ("on", True), ("yes", True), ("true", True), ("1", True)]:
        cfg, hyper = resolve_config({"optimizer": "kfac-star", "steps": 1},
                                    sets=[f"torch_compile={text}", f"memory_check={text}", f"trust={text}"])
        assert (cfg.torch_compile, cfg.memory_check, hyper["trust"]) == (want, want, want), text
    toml = tmp_path / "run.toml"
    toml.write_text('optimizer = "adam"\nsteps = 1\nmemory_check = "false"\n')
    assert resolve_config({}, toml)[0].memory_check is False
    with pytest.raises(pdec.PdecError, match="memory_check = 'maybe': expected true or false"):
        resolve_config({"optimizer": "adam", "steps": 1}, sets=["memory_check=maybe"])
    with pytest.raises(pdec.PdecError, match="must be true or false"):
        resolve_config({"optimizer": "kfac-star", "steps": 1}, sets=["trust=maybe"])
    with pytest.raises(pdec.PdecError, match="expected an integer"):
        resolve_config({"optimizer": "adam", "steps": "many"})


def test_a_typo_in_another_optimizers_table_is_an_error(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('optimizer = "adam"\nsteps = 1\n[kfac]\ndampign = 1e-6\n')
    with pytest.raises(pdec.PdecError, match=r"\[kfac\] has an unknown setting 'dampign'; did you mean 'damping'"):
        resolve_config({}, toml)


def test_config_precedence(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('optimizer = "adam"\nsteps = 7\nlr = 0.01\n')
    cfg, hyper = resolve_config({"steps": 9}, toml, ["lr=0.5"])
    assert (cfg.optimizer, cfg.steps, hyper["lr"]) == ("adam", 9, 0.5)


def test_non_finite_loss_stops_and_keeps_last_finite(tmp_path):
    compiled = _compiled()
    with pytest.raises(pdec.TrainingDiverged, match=r"step \d+") as info:
        pdec.train(compiled, "sgd", steps=50, seed=0, run_root=tmp_path, lr=1e6, momentum=0.0, **SMALL)
    assert all(torch.isfinite(p).all() for p in compiled.model.parameters())
    run_dir = next((tmp_path / "heat1d").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert summary["status"] == "diverged"
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    saved = checkpoint["model"]
    assert all(torch.isfinite(v).all() for v in saved.values())
    # the summary describes the parameters kept: their step, the clock, their loss and errors
    assert summary["steps"] == summary["step"] == checkpoint["step"] > 0 and summary["time"] > 0
    assert f"kept the parameters after step {summary['steps']}" in str(info.value)
    steps = [int(r["step"]) for r in read_metrics(run_dir)]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)   # the log never goes back
    compiled.model.load_state_dict(saved)
    assert summary["loss"] == pytest.approx(_loss(compiled, checkpoint["sampler"]["batch"]), rel=1e-12)
    assert math.isfinite(summary["rel_l2"])
    assert str(run_dir) in str(info.value)
    # resuming would repeat the failed settings with the failed steps' optimizer state: refused,
    # before anything in the run directory changes; its weights start a new run instead
    before = {f.name: f.read_bytes() for f in run_dir.iterdir()}
    with pytest.raises(pdec.PdecError, match="diverged.*--init-from"):
        pdec.train(compiled, resume=run_dir, steps=60)
    assert {f.name: f.read_bytes() for f in run_dir.iterdir()} == before
    fresh = _compiled()
    run = pdec.train(fresh, "sgd", steps=1, seed=0, run_root=tmp_path, lr=1e-3, init_from=run_dir, **SMALL)
    assert run.status == "completed"


def test_sigint_saves_checkpoint(tmp_path):
    cmd = [sys.executable, "-m", "pdec", "train", str(ROOT / "specs" / "heat1d.py"), "--optimizer", "adam", "--steps", "100000",
           "--runs", str(tmp_path), "--no-progress", "--set", "n_interior=50", "--set", "n_eval=100",
           "--set", "hidden=4", "--set", "checkpoint_every=100000"]
    # run from tmp_path: the CLI writes generated/<name>.py below the working directory, and the
    # repository's generated/ must keep the shipped options
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("heat1d/*/metrics.csv")):
        time.sleep(0.2)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    run_dir = next((tmp_path / "heat1d").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] > 0
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == summary["steps"]


def test_failing_spec_leaves_no_run_directory(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sympy as sp\nproblem = None\n")
    proc = subprocess.run([sys.executable, "-m", "pdec", "train", str(bad), "--steps", "2", "--optimizer", "adam",
                           "--runs", str(tmp_path / "runs")], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and "defines no problem" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_samplers_put_points_on_their_regions():
    problem = pdec.load_spec(ROOT / "specs" / "heat1d.py")
    s = PointSampler(problem, 30, 20, seed=0, n_eval=10)
    assert s.batch["interior"].shape == (30, 2)
    # Initial() | SpatialBoundary(): one term, its points split evenly over the parts, in order
    cond = s.batch["initial_boundary"]
    assert cond.shape == (20, 2) and torch.all(cond[:10, 0] == 0)
    assert torch.all((cond[10:, 1] == 0) | (cond[10:, 1] == 1)) and torch.all(cond[10:, 0] > 0)
    X = sample_region(problem, pdec.Initial() | pdec.SpatialBoundary() | pdec.Face(problem.variables[0], "max"),
                      7, torch.Generator().manual_seed(0))
    with pytest.raises(pdec.PdecError, match="at least one point per part"):
        PointSampler(problem, 30, 1, seed=0)
    assert torch.all(X[:3, 0] == 0) and torch.all((X[3:5, 1] == 0) | (X[3:5, 1] == 1)) and torch.all(X[5:, 0] == 1)
    g = torch.Generator().manual_seed(0)
    square = pdec.load_spec(ROOT / "specs" / "poisson2d.py")
    X = sample_region(square, pdec.Boundary(), 400, g)
    on_face = (X == 0) | (X == 1)
    assert torch.all(on_face.any(1))
    # seeds control every draw; the evaluation set does not move when training points resample
    a, b = PointSampler(problem, 30, 20, seed=5, n_eval=10), PointSampler(problem, 30, 20, seed=5, n_eval=10)
    b.resample()
    assert torch.equal(a.eval_points, b.eval_points) and not torch.equal(a.batch["interior"], b.batch["interior"])


def test_config_tables_per_optimizer(tmp_path):
    toml = tmp_path / "paper.toml"
    toml.write_text('steps = 5\nn_interior = 33\n[kfac]\ndamping = 1e-9\n[adam]\nlr = 0.02\n')
    cfg, hyper = resolve_config({"optimizer": "adam"}, toml)
    assert (cfg.n_interior, hyper["lr"]) == (33, 0.02)
    cfg, hyper = resolve_config({"optimizer": "kfac"}, toml, ["damping=1e-7"])
    assert hyper["damping"] == 1e-7
    toml.write_text('steps = 5\n[kfca]\ndamping = 1.0\n')
    with pytest.raises(pdec.PdecError, match="did you mean 'kfac'"):
        resolve_config({"optimizer": "kfac"}, toml)


def test_settings_that_contradict_the_compiled_model_are_errors(tmp_path):
    compiled = _compiled(hidden=(6, 5))
    with pytest.raises(pdec.PdecError, match=r"hidden = \(8,\) contradicts the compiled model"):
        pdec.train(compiled, "adam", steps=1, hidden=(8,), save=False, **SMALL)
    with pytest.raises(pdec.PdecError, match="device = 'cuda' contradicts"):
        pdec.train(compiled, "adam", steps=1, device="cuda", save=False, **SMALL)
    run = pdec.train(compiled, "adam", steps=1, run_root=tmp_path, **SMALL)
    saved = json.loads((run.run_dir / "config.json").read_text())["settings"]
    assert saved["hidden"] == [6, 5] and saved["device"] == "cpu"


def test_plot_and_compare_commands(tmp_path, monkeypatch, capsys):
    """`pdec compare` trains each optimizer and tabulates; `pdec plot` writes the curves and the solution."""
    from pdec.cli import main

    monkeypatch.chdir(tmp_path)  # generated/ is written below the working directory, not the repo's

    sets = ["--set", "n_interior=30", "--set", "n_condition=8", "--set", "n_eval=50", "--set", "hidden=5",
            "--set", "eval_every=1"]
    spec = str(ROOT / "specs" / "poisson2d.py")
    # every optimizer and setting is checked before the first trains: nothing is written
    assert main(["compare", spec, "--optimizers", "kfac,adma", "--steps", "3", "--runs", str(tmp_path), *sets]) == 2
    assert "did you mean 'adam'" in capsys.readouterr().err
    assert main(["compare", spec, "--optimizers", "kfac,adam", "--steps", "3", "--runs", str(tmp_path), *sets,
                 "--set", "dampnig=1e-6"]) == 2
    assert "unknown setting 'dampnig'" in capsys.readouterr().err
    assert not (tmp_path / "poisson2d").exists()
    # a hyperparameter of one optimizer (KFAC's damping) goes to the optimizers that have it
    assert main(["compare", spec, "--optimizers", "adam,kfac", "--steps", "3", "--time-budget", "0",
                 "--runs", str(tmp_path), *sets, "--set", "damping=1e-6"]) == 0
    runs = sorted(p for p in (tmp_path / "poisson2d").iterdir() if p.is_dir())
    plots = list((tmp_path / "poisson2d").glob("compare-*.png"))
    assert len(runs) == 2 and len(plots) == 1 and plots[0].stat().st_size > 0
    kfac = json.loads(next(r for r in runs if "kfac" in r.name).joinpath("config.json").read_text())
    assert kfac["hyperparameters"]["damping"] == 1e-6
    out = tmp_path / "curves.png"
    assert main(["plot", *map(str, runs), "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and (runs[0] / "solution.png").stat().st_size > 0
    # runs/<spec>/* also catches compare's PNG: skipped, with a note
    capsys.readouterr()
    assert main(["plot", *map(str, sorted((tmp_path / "poisson2d").iterdir())), "--out", str(out)]) == 0
    assert "skipped 1 file(s), not run directories" in capsys.readouterr().out


def _loss(compiled, batch) -> float:
    """L(θ) of the compiled model on ``batch``, from pdec.loss (independent of the training loop)."""
    with torch.no_grad():
        return float(pinn_loss(compiled.model, batch)[0])


def test_given_points_reproduce_the_sampled_run(tmp_path):
    """Points given from Python are the ones trained and evaluated on: giving a run's own sampled
    points and evaluation set reproduces it exactly; other points and another evaluation set give
    the loss and error computed independently on them."""
    problem = _compiled().problem
    drawn = PointSampler(problem, SMALL["n_interior"], SMALL["n_condition"], seed=3, n_eval=SMALL["n_eval"])
    sampled = pdec.train(_compiled(), "adam", steps=4, seed=3, save=False, lr=1e-2, **SMALL)
    given = pdec.train(_compiled(), "adam", steps=4, seed=3, save=False, lr=1e-2, points=drawn.batch,
                       eval_points=drawn.eval_points, **SMALL)
    untimed = [[{k: repr(v) for k, v in row.items() if k != "time"} for row in run.history] for run in (given, sampled)]
    assert untimed[0] == untimed[1] and len(untimed[0]) == 3

    other = PointSampler(problem, 25, 8, seed=4, n_eval=77)
    as_lists = {t: X.tolist() for t, X in other.batch.items()}   # nested lists are float64 too
    moved = pdec.train(_compiled(), "adam", steps=1, seed=3, save=False, lr=1e-2, points=as_lists,
                       eval_points=other.eval_points, **SMALL)
    c0 = _compiled()
    torch.manual_seed(3)
    for layer in c0.model.layers:
        layer.reset_parameters()
    assert moved.history[0]["loss"] == pytest.approx(_loss(c0, other.batch), rel=1e-14)
    assert moved.history[0]["loss"] != pytest.approx(sampled.history[0]["loss"], rel=1e-3)
    with torch.no_grad():
        X = other.eval_points
        diff, exact = c0.model(X) - c0.model.exact_solution(X), c0.model.exact_solution(X)
    assert moved.history[0]["rel_l2"] == pytest.approx(float(diff.norm() / exact.norm()), rel=1e-14)
    assert moved.history[0]["rel_l2"] != pytest.approx(sampled.history[0]["rel_l2"], rel=1e-3)


def test_given_points_function_is_called_per_resampling_and_resumes(tmp_path):
    """``points=draw`` gives the k-th batch at the k-th re-sampling; a run on such points resumes
    exactly with the same function and its saved evaluation set, and refuses to resume without
    the points, with other points or with a draw that does not depend on k alone."""
    problem = _compiled().problem
    batches = [PointSampler(problem, 20, 6, seed=10 + k).batch for k in range(4)]
    X_eval = PointSampler(problem, 1, 2, seed=9, n_eval=50).eval_points
    calls = []

    def draw(k):
        calls.append(k)
        return batches[k]

    common = dict(seed=1, resample_every=3, lr=1e-2, **SMALL)
    full = pdec.train(_compiled(), "adam", steps=8, run_root=tmp_path / "a", points=draw, eval_points=X_eval,
                      **common)
    assert calls == [0, 1, 2]   # the first batch, then at steps 3 and 6
    part = pdec.train(_compiled(), "adam", steps=5, run_root=tmp_path / "b", points=draw, eval_points=X_eval,
                      **common)
    calls.clear()
    resumed = pdec.train(_compiled(), resume=part.run_dir, steps=8, progress=False, points=draw)
    assert calls == [1, 2]      # the checkpoint's batch (checked), then the re-sampling at step 6
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)
    assert resumed.final["rel_l2"] == full.final["rel_l2"]   # the saved evaluation set
    config = json.loads((part.run_dir / "config.json").read_text())
    assert config["points"] == {"source": "given", "per_batch": {"interior": 20, "initial_boundary": 6},
                                "resampled": True}
    assert config["eval_points"] == {"source": "given", "N": 50} and config["initial_weights"] == "seeded"
    from pdec.train.plots import _label

    assert _label(part.run_dir) == f"adam (D={config['parameters_D']}, seed 1, points given)"
    with pytest.raises(pdec.PdecError, match="pass the same points= to resume"):
        pdec.train(_compiled(), resume=part.run_dir, steps=9, progress=False)
    # the resumed run went on to step 8 (k = 2) and saved its checkpoint there
    with pytest.raises(pdec.PdecError, match=r"draw\(2\) differs from the batch the run saved"):
        pdec.train(_compiled(), resume=part.run_dir, steps=9, progress=False, points=lambda k: batches[k + 1])
    with pytest.raises(pdec.PdecError, match="eval_points differ"):
        pdec.train(_compiled(), resume=part.run_dir, steps=9, progress=False, points=draw, eval_points=X_eval[:10])


def test_given_points_errors():
    c = _compiled()
    batch = PointSampler(c.problem, 20, 6, seed=0).batch
    with pytest.raises(pdec.PdecError, match="missing initial_boundary"):
        pdec.train(c, "adam", steps=1, save=False, points={"interior": batch["interior"]}, **SMALL)
    with pytest.raises(pdec.PdecError, match="unknown 3"):
        pdec.train(c, "adam", steps=1, save=False, points={**batch, 3: batch["interior"]}, **SMALL)
    with pytest.raises(pdec.PdecError, match=r"expected \(N, 2\)"):
        pdec.train(c, "adam", steps=1, save=False, points={**batch, "interior": batch["interior"][:, :1]}, **SMALL)
    with pytest.raises(pdec.PdecError, match="floating-point"):
        pdec.train(c, "adam", steps=1, save=False, points={**batch, "interior": torch.ones(5, 2, dtype=torch.long)},
                   **SMALL)
    with pytest.raises(pdec.PdecError, match="one fixed batch"):
        pdec.train(c, "adam", steps=1, save=False, points=batch, resample_every=2, **SMALL)
    with pytest.raises(pdec.PdecError, match="eval_points is given without points"):
        pdec.train(c, "adam", steps=1, save=False, eval_points=batch["interior"], **SMALL)
    with pytest.warns(UserWarning, match="1 of the 20 points for 'interior' lie outside the domain"):
        outside = batch["interior"].clone()
        outside[0, 1] = 1.5
        pdec.train(c, "adam", steps=1, save=False, points={**batch, "interior": outside}, **SMALL)
    # condition points off their region (heat1d: t = 0, or x = 0 or 1) impose the condition
    # elsewhere: refused; on it (also in float32) they are used
    off = batch["initial_boundary"].clone()
    off[2] = torch.tensor([0.5, 0.5])
    with pytest.raises(pdec.PdecError, match=r"1 of the 6 points given for condition 'initial_boundary' are "
                                             r"not on its region, initial slice \+ spatial boundary"):
        pdec.train(c, "adam", steps=1, save=False, points={**batch, "initial_boundary": off}, **SMALL)
    on32 = torch.tensor([[0.0, 0.3], [0.7, 1.0], [0.2, 0.0]], dtype=torch.float32)
    pdec.train(c, "adam", steps=1, save=False, points={**batch, "initial_boundary": on32}, **SMALL)
    leaf = batch["interior"].clone().requires_grad_()   # used detached: no gradient reaches it
    pdec.train(c, "adam", steps=1, save=False, points={**batch, "interior": leaf}, **SMALL)
    assert leaf.grad is None


def test_initialize_false_starts_from_the_current_weights(tmp_path):
    """Adam, then KFAC from where Adam stopped: the second run's first loss is the loss of Adam's
    final weights (computed independently), not that of a fresh seeded start."""
    c = _compiled()
    pdec.train(c, "adam", steps=5, seed=2, save=False, lr=1e-2, **SMALL)
    batch = PointSampler(c.problem, SMALL["n_interior"], SMALL["n_condition"], seed=2).batch
    after_adam = _loss(c, batch)
    then = pdec.train(c, "kfac", steps=2, seed=2, run_root=tmp_path, initialize=False, **SMALL)
    assert then.history[0]["loss"] == pytest.approx(after_adam, rel=1e-14)
    assert json.loads((then.run_dir / "config.json").read_text())["initial_weights"] == "given"
    fresh = pdec.train(_compiled(), "kfac", steps=2, seed=2, save=False, **SMALL)
    assert fresh.history[0]["loss"] != pytest.approx(after_adam, rel=1e-3)


def test_init_from_starts_a_new_run_from_another_runs_weights(tmp_path, monkeypatch):
    """`init_from` / `pdec train --init-from`: KFAC after an Adam run starts at the loss of Adam's
    checkpointed weights (computed independently); other widths and --resume with it are errors."""
    from pdec.cli import main

    adam = pdec.train(_compiled(), "adam", steps=5, seed=2, run_root=tmp_path, lr=1e-2, **SMALL)
    c = _compiled()
    c.model.load_state_dict(torch.load(adam.run_dir / "checkpoint.pt", weights_only=False)["model"])
    batch = PointSampler(c.problem, SMALL["n_interior"], SMALL["n_condition"], seed=2).batch
    then = pdec.train(_compiled(), "kfac", steps=2, seed=2, run_root=tmp_path, init_from=adam.run_dir, **SMALL)
    assert then.history[0]["loss"] == pytest.approx(_loss(c, batch), rel=1e-14)
    assert then.history[0]["loss"] != pytest.approx(adam.history[0]["loss"], rel=1e-3)
    config = json.loads((then.run_dir / "config.json").read_text())
    assert config["initial_weights"] == f"from {adam.run_dir}" and config["settings"]["optimizer"] == "kfac"
    with pytest.raises(pdec.PdecError, match=r"widths \(2, 6, 5, 1\), this model \(2, 7, 1\)"):
        pdec.train(_compiled(hidden=(7,)), "kfac", steps=1, save=False, init_from=adam.run_dir, **SMALL)
    sin = pdec.compile(pdec.load_spec(ROOT / "specs" / "heat1d.py"), hidden=(6, 5), activation="sin", write=False)
    with pytest.raises(pdec.PdecError, match="its network uses tanh, this model sin"):
        pdec.train(sin, "kfac", steps=1, save=False, init_from=adam.run_dir, **SMALL)
    with pytest.raises(pdec.PdecError, match="no checkpoint.pt to start from"):
        pdec.train(_compiled(), "kfac", steps=1, save=False, init_from=tmp_path, **SMALL)
    # a run of another problem (here 2d Poisson, same widths) is a warm start, with a warning
    poisson = pdec.compile(pdec.load_spec(ROOT / "specs" / "poisson2d.py"), hidden=(6, 5), write=False)
    with pytest.warns(UserWarning, match="trained another problem \\('heat1d'"):
        pdec.train(poisson, "kfac", steps=1, save=False, init_from=adam.run_dir, **SMALL)

    monkeypatch.chdir(tmp_path)  # generated/ is written below the working directory
    sets = [f"--set={k}={v}" for k, v in {**SMALL, "hidden": "6,5"}.items()]
    spec = str(ROOT / "specs" / "heat1d.py")
    assert main(["train", spec, "--optimizer", "sgd", "--steps", "1", "--runs", str(tmp_path / "cli"),
                 "--init-from", str(adam.run_dir), *sets]) == 0
    (run_dir,) = (tmp_path / "cli" / "heat1d").iterdir()
    assert json.loads((run_dir / "config.json").read_text())["initial_weights"] == f"from {adam.run_dir}"
    assert main(["train", "--resume", str(run_dir), "--init-from", str(adam.run_dir), "--steps", "2"]) == 2


def test_metrics_csv_has_the_optimizers_own_columns(tmp_path):
    """KFAC*'s momentum, rejected-step count and trust scale reach metrics.csv at each logged step,
    equal to what the optimizer reports when stepped directly on the same start and points."""
    settings = dict(SMALL, eval_every=5)
    run = pdec.train(_compiled(hidden=(8,)), "kfac-star", steps=20, seed=3, run_root=tmp_path, **settings)
    rows = read_metrics(run.run_dir)
    assert [int(r["step"]) for r in rows] == [0, 5, 10, 15, 20]
    c = _compiled(hidden=(8,))
    torch.manual_seed(3)
    for layer in c.model.layers:
        layer.reset_parameters()
    batch = PointSampler(c.problem, SMALL["n_interior"], SMALL["n_condition"], seed=3).batch
    opt = get_optimizer("kfac-star")(c.model)
    infos = [opt.step(batch) for _ in range(20)]
    assert opt.rejected_steps > 0   # the safeguard acted: the column is not trivially zero
    for row in rows[1:]:
        info = infos[int(row["step"]) - 1]
        for key in ("momentum", "rejected_steps", "scale"):
            assert row[key] == pytest.approx(info.extra[key], rel=1e-12, abs=1e-300), key
    assert rows[-1]["rejected_steps"] == opt.rejected_steps
    assert math.isnan(rows[0]["scale"])   # no step before the first row


def test_resuming_a_run_recorded_before_a_setting_existed_warns(tmp_path):
    """A checkpoint without a hyperparameter that pdec has since gained (as KFAC*'s trust was
    added) resumes with today's default, and says so."""
    part = pdec.train(_compiled(), "kfac-star", steps=2, seed=0, run_root=tmp_path, **SMALL)
    path = part.run_dir / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    del state["settings"]["trust"]
    torch.save(state, path)
    with pytest.warns(UserWarning, match="has no trust .* resuming with today's defaults: trust = True"):
        pdec.train(_compiled(), resume=part.run_dir, steps=3, progress=False)


def test_solution_plot_has_a_row_per_unknown(tmp_path):
    import matplotlib.pyplot as plt
    import sympy as sp

    from pdec import Boundary, Box, Condition, Problem
    from pdec.train.plots import plot_solution

    x, y = sp.symbols("x y", real=True)
    u, v = sp.Function("u")(x, y), sp.Function("v")(x, y)
    ue, ve = sp.sin(sp.pi * x) * sp.sin(sp.pi * y), x * y
    lap = lambda w: w.diff(x, 2) + w.diff(y, 2)
    problem = Problem(name="pair", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u, v],
                      interior=[lap(u) - lap(ue), lap(v) - v + ve],
                      conditions={"bu": Condition(u - ue, on=Boundary()), "bv": Condition(v - ve, on=Boundary())},
                      exact={u: ue, v: ve})
    compiled = pdec.compile(problem, hidden=(4,), write=False)
    one = plot_solution(_compiled(hidden=(4,)).model, tmp_path / "one.png")
    two = plot_solution(compiled.model, tmp_path / "two.png")
    assert plt.imread(two).shape[0] == 2 * plt.imread(one).shape[0]   # 4 inches of panels per unknown


def test_an_activation_given_as_text_trains_resumes_and_plots(tmp_path, monkeypatch):
    from pdec.cli import main

    monkeypatch.chdir(tmp_path)
    spec = str(ROOT / "specs" / "heat1d.py")
    sets = [f"--set={k}={v}" for k, v in {**SMALL, "hidden": "5"}.items()] + ["--set=activation=z*tanh(z)"]
    assert main(["train", spec, "--optimizer", "adam", "--steps", "2", *sets]) == 0
    run_dir = next((tmp_path / "runs" / "heat1d").iterdir())
    assert "activation='custom(z*tanh(z))'" in (run_dir / "module.py").read_text()
    assert main(["train", "--resume", str(run_dir), "--steps", "3", "--no-progress"]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 3
    assert main(["plot", str(run_dir)]) == 0 and (run_dir / "solution.png").is_file()


def test_the_cli_prints_pdecs_warnings_as_one_line_and_leaves_others_alone(capsys):
    import warnings

    from pdec.cli import _plain_warnings

    saved, others = warnings.showwarning, []
    try:
        warnings.showwarning = lambda message, category, *rest, **kw: others.append(category)
        _plain_warnings()   # wraps the function it finds
        warnings.showwarning(pdec.PdecWarning("the points lie outside"), pdec.PdecWarning, "x.py", 1)
        warnings.showwarning(UserWarning("a library's warning"), UserWarning, "lib.py", 7)
    finally:
        warnings.showwarning = saved
    assert capsys.readouterr().err == "pdec: warning: the points lie outside\n"
    assert others == [UserWarning]   # passed on unchanged


def _circle_problem(fn):
    """2d Poisson-like problem whose condition lives on a user Sampler's points."""
    import sympy as sp

    from pdec import Box, Condition, Problem, Sampler

    x, y = sp.symbols("x y", real=True)
    u = sp.Function("u")(x, y)
    return Problem(name="circle", domain=Box({x: (0, 1), y: (0, 1)}), unknowns=[u],
                   interior=u.diff(x, 2) + u.diff(y, 2) - 1,
                   conditions={"rim": Condition(u, on=Sampler(fn, "circle"))})


def _on_circle(n, g):
    angle = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    return torch.stack([0.5 + 0.3 * torch.cos(angle), 0.5 + 0.3 * torch.sin(angle)], dim=1)


@pytest.mark.parametrize("fn,message", [
    (lambda n: torch.zeros(n, 2), r"failed when asked for \d+ points: TypeError.*called as fn\(n, generator\)"),
    (lambda n, g: 1 / 0, r"failed when asked for \d+ points: ZeroDivisionError"),
    (lambda n, g: torch.zeros(n, 3), r"returned shape \(\d+, 3\), expected \(\d+, 2\).*columns \(x, y\)"),
    (lambda n, g: torch.full((n, 2), float("nan")), r"returned non-finite coordinates"),
    (lambda n, g: _on_circle(n, g) + 0.5, r"returned \d+ point\(s\) outside the domain.*x in \[0, 1\], y in \[0, 1\]"),
])
def test_a_bad_sampler_is_a_clear_error_before_any_run_directory(tmp_path, fn, message):
    compiled = pdec.compile(_circle_problem(fn), hidden=(4,), write=False)
    with pytest.raises(pdec.PdecError, match=r"Sampler 'circle' of condition 'rim' in problem 'circle' " + message):
        pdec.train(compiled, "kfac", steps=2, seed=0, run_root=tmp_path, **SMALL)
    assert not any(tmp_path.iterdir())
    compiled = pdec.compile(_circle_problem(_on_circle), hidden=(4,), write=False)
    assert pdec.train(compiled, "kfac", steps=2, seed=0, save=False, **SMALL).status == "completed"


def test_a_float32_sampler_on_the_boundary_is_inside():
    # float32(1/3) > 1/3 by 1e-8: on the bound to the sampler's precision, not outside the box
    import sympy as sp

    from pdec import Box, Condition, Problem, Sampler

    x, y = sp.symbols("x y", real=True)
    u = sp.Function("u")(x, y)
    edge = Sampler(lambda n, g: torch.stack([torch.full((n,), 1 / 3), torch.rand(n, generator=g) / 3], 1), "edge")
    problem = Problem(name="third", domain=Box({x: (0, sp.Rational(1, 3)), y: (0, sp.Rational(1, 3))}),
                      unknowns=[u], interior=u.diff(x, 2) + u.diff(y, 2) - 1, conditions={"e": Condition(u, on=edge)})
    assert float(torch.tensor(1 / 3, dtype=torch.float32)) > 1 / 3
    run = pdec.train(pdec.compile(problem, hidden=(4,), write=False), "adam", steps=1, seed=0, save=False, **SMALL)
    assert run.status == "completed"


def test_a_draw_that_fails_mid_run_keeps_the_steps_done(tmp_path):
    first = PointSampler(_compiled().problem, 40, 12, seed=0).batch

    def draw(k):
        if k == 2:
            raise RuntimeError("out of points")
        return first

    with pytest.raises(pdec.PdecError, match=r"draw\(2\) .*failed: RuntimeError: out of points; at step 7, kept the "
                                             r"parameters of step 6 in "):
        pdec.train(_compiled(), "adam", steps=10, seed=0, run_root=tmp_path, lr=1e-2, points=draw, resample_every=3,
                   **SMALL)
    run_dir = next((tmp_path / "heat1d").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["steps"] == 6
    assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["step"] == 6


def test_resume_with_a_model_of_another_mode_is_a_clear_error(tmp_path):
    run = pdec.train(_compiled(), "adam", steps=2, seed=0, run_root=tmp_path, lr=1e-2, **SMALL)
    other = pdec.compile(pdec.load_spec(ROOT / "specs" / "heat1d.py"), hidden=(6, 5), mode="taylor", write=False)
    with pytest.raises(pdec.PdecError, match=r"trained another module than this compiled model.*mode='auto'"):
        pdec.train(other, resume=run.run_dir, steps=4)


def test_plot_draws_the_learned_solution_without_an_exact_one(tmp_path, capsys):
    compiled = pdec.compile(_circle_problem(_on_circle), hidden=(4,), write=False)   # no exact solution
    run = pdec.train(compiled, "adam", steps=2, seed=0, run_root=tmp_path, **SMALL)
    assert main(["plot", str(run.run_dir)]) == 0
    assert f"wrote {run.run_dir / 'solution.png'}" in capsys.readouterr().out
    assert (run.run_dir / "curves.png").is_file() and (run.run_dir / "solution.png").stat().st_size > 0


def test_train_keeps_its_module_where_out_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = str(ROOT / "specs" / "heat1d.py")
    assert main(["train", spec, "--optimizer", "adam", "--steps", "1", "--out", "build/gen", "--no-progress",
                 "--set", "n_interior=20", "--set", "n_condition=8", "--set", "n_eval=20"]) == 0
    module = tmp_path / "build" / "gen" / "heat1d.py"
    assert module.is_file() and not (tmp_path / "generated").exists()
    assert "# Regenerate with: pdec compile " in module.read_text() and "--out build/gen" in module.read_text()


def test_compile_never_overwrites_a_file_pdec_did_not_generate(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "mine" / "heat1d.py"   # named like its problem, compiled into its own folder
    spec.parent.mkdir()
    text = (ROOT / "specs" / "heat1d.py").read_text()
    spec.write_text(text)
    assert main(["compile", str(spec), "--out", "mine"]) == 2
    assert "mine/heat1d.py is the spec file itself; pdec will not overwrite it" in capsys.readouterr().err
    assert spec.read_text() == text
    other = tmp_path / "notes" / "heat1d.py"   # any other file that is not a generated module
    other.parent.mkdir()
    other.write_text("print('mine')\n")
    with pytest.raises(pdec.PdecError, match="is not a module pdec generated"):
        pdec.compile(spec, hidden=(4,), out_dir="notes")
    assert other.read_text() == "print('mine')\n"
    # training keeps the module in memory and says why the file stays
    assert main(["train", str(spec), "--optimizer", "adam", "--steps", "1", "--out", "mine", "--no-progress",
                 "--set", "n_interior=20", "--set", "n_condition=8", "--set", "n_eval=20"]) == 0
    assert "(mine/heat1d.py is not a module pdec generated; left as is)" in capsys.readouterr().out
    assert spec.read_text() == text


def test_load_run_gives_back_the_trained_model_and_its_history(tmp_path):
    compiled = _compiled()
    run = pdec.train(compiled, "adam", steps=6, seed=1, run_root=tmp_path, lr=1e-2, checkpoint_every=4, **SMALL)
    X = torch.rand(30, 2, dtype=torch.float64)
    loaded = pdec.load_run(run.run_dir)
    assert loaded.status == "completed" and loaded.steps == 6 and loaded.elapsed == run.elapsed
    assert torch.equal(loaded.model(X), run.model(X))
    assert torch.equal(loaded.model.interior_residual(X), run.model.interior_residual(X))
    assert loaded.config == run.config and loaded.hyper == run.hyper
    for key in ("step", "time", "loss", "rel_l2", "abs_rms"):   # metrics.csv rounds nothing
        assert [r[key] for r in loaded.history] == [r[key] for r in run.history]
    assert loaded.model.variables == ("t", "x") and not loaded.model.training
    # the logged loss is the saved weights' loss on the step's batch, as the errors are
    batch = torch.load(run.run_dir / "checkpoint.pt", weights_only=False)["sampler"]["batch"]
    with torch.no_grad():
        total, losses = pinn_loss(loaded.model, batch)
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["loss"] == loaded.final["loss"] == pytest.approx(float(total), rel=1e-12)
    assert loaded.final["loss_interior"] == pytest.approx(float(losses["interior"]), rel=1e-12)
    assert math.isfinite(loaded.history[0]["loss_interior"])   # step 0 has its terms too
    # a run whose module.py is gone (recorded before runs kept it) is compiled again from its spec
    (run.run_dir / "module.py").unlink()
    assert torch.equal(pdec.load_run(run.run_dir).model(X), run.model(X))


def test_load_run_of_a_killed_run_has_its_last_checkpoint(tmp_path):
    run = pdec.train(_compiled(), "adam", steps=6, seed=1, run_root=tmp_path, lr=1e-2, checkpoint_every=4, **SMALL)
    checkpoint = torch.load(run.run_dir / "checkpoint.pt", weights_only=False)
    # what a process killed after step 5 leaves: the step-4 checkpoint, rows to step 5, no summary
    full = _compiled()
    pdec.train(full, "adam", steps=4, seed=1, save=False, lr=1e-2, **SMALL)
    checkpoint.update(model=full.model.state_dict(), step=4)
    torch.save(checkpoint, run.run_dir / "checkpoint.pt")
    (run.run_dir / "summary.json").unlink()
    loaded = pdec.load_run(run.run_dir)
    assert loaded.status == "unfinished" and loaded.steps == 4
    assert [r["step"] for r in loaded.history] == [0, 2, 4]
    X = torch.rand(30, 2, dtype=torch.float64)
    assert torch.equal(loaded.model(X), full.model(X)) and not torch.equal(loaded.model(X), run.model(X))
    with pytest.raises(pdec.PdecError, match="not a run directory"):
        pdec.load_run(tmp_path)


def test_compile_takes_dtype_names_and_refuses_half_precision():
    assert next(pdec.compile(ROOT / "specs" / "heat1d.py", hidden=(4,), dtype="float32",
                             write=False).model.parameters()).dtype == torch.float32
    for dtype in (torch.bfloat16, torch.float16, "float16", torch.int64):
        with pytest.raises(pdec.PdecError, match="is not supported: use torch.float64"):
            pdec.compile(ROOT / "specs" / "heat1d.py", hidden=(4,), dtype=dtype, write=False)


def test_on_region_takes_float32_points_on_a_face_at_an_inexact_bound():
    from pdec.train.sampling import on_region

    x, y = sp.symbols("x y")
    u = sp.Function("u")(x, y)
    problem = pdec.Problem(name="p", domain=pdec.Box({x: (0.1, 0.7), y: (0, 1)}), unknowns=[u],
                           interior=u.diff(x, 2), conditions={"left": pdec.Condition(u, on=pdec.Face(x, "min"))})
    X32 = torch.tensor([[0.1, 0.25], [0.1, 0.5], [0.3, 0.5]], dtype=torch.float32)
    X = X32.double()   # 0.1 in float32 is 0.10000000149…: not 0.1, but on the face at float32 precision
    assert X[0, 0] != 0.1
    assert on_region(problem, problem.condition_items["left"].on, X).tolist() == [True, True, False]
    assert on_region(problem, pdec.Boundary(), X).tolist() == [True, True, False]


def test_a_last_step_that_overflows_the_loss_is_a_divergence(tmp_path):
    """SGD with a huge step: the parameters stay finite, but after step 18 the loss overflows. That
    was the last step, so no later step would see it: the run is diverged and keeps step 17."""
    c = pdec.compile(ROOT / "specs" / "poisson2d.py", hidden=(6,), write=False)
    with pytest.raises(pdec.TrainingDiverged, match="non-finite loss after step 18; kept the parameters after step 17"):
        pdec.train(c, "sgd", steps=18, lr=1e8, momentum=0.0, seed=0, run_root=tmp_path,
                   **{**SMALL, "n_interior": 40, "n_condition": 12, "n_eval": 100, "eval_every": 1})
    run = pdec.load_run(next((tmp_path / "poisson2d").iterdir()))
    assert run.status == "diverged" and run.steps == 17 and math.isfinite(run.final["loss"])
    assert all(torch.isfinite(p).all() for p in run.model.parameters())


def test_a_stalled_line_search_is_warned_about():
    from pdec.train.config import resolve_config
    from pdec.train.loop import Run, _warn_if_stalled

    def run(optimizer, lrs, last_loss=1e-3, losses=None, **settings):
        cfg, hyper = resolve_config({"optimizer": optimizer, "steps": 300, **settings})
        losses = losses or [last_loss] * len(lrs)
        rows = [{"step": 0, "loss": 1.0, "lr": math.nan}]
        rows += [{"step": 50 * (i + 1), "loss": loss, "lr": lr} for i, (lr, loss) in enumerate(zip(lrs, losses))]
        return Run(None, cfg, hyper, model=None, history=rows)

    stalled = [2e-3, 1e-3, 6e-5, 2e-6, 5e-7, 9e-7]   # allen_cahn's KFAC at the defaults
    with pytest.warns(pdec.PdecWarning, match=r"^kfac: training stalled: on the logged steps 200–300 the line "
                                              r"search's steps were small \(median 9\.0e-07, largest 2\.0e-06\) "
                                              r"and the loss went from 1\.00e-03 to 1\.00e-03; raise its damping "
                                              r"\(now 1\.5e-12; e\.g\. --set damping=1e-06\) or let it follow the "
                                              r"line search \(--set adaptive_damping=true\)"):
        _warn_if_stalled(run("kfac", stalled))
    adapted = run("kfac", stalled, adaptive_damping=True)
    for r in adapted.history[1:]:
        r["damping"] = 1e6
    with pytest.warns(pdec.PdecWarning, match=r"adaptive damping had taken λ from 1\.5e-12 to 1\.0e\+06, so the "
                                              r"damping alone does not hold it back: try kfac-star or engd"):
        _warn_if_stalled(adapted)
    with pytest.warns(pdec.PdecWarning, match=r"--set damping=1e-04\)"):   # 100× what it is
        _warn_if_stalled(run("kfac", stalled, damping=1e-6))
    # a loss of one term (every condition in an ansatz) run with the paper's ema and init: KFAC's
    # defaults for such a loss come first
    one_term = run("kfac", stalled, ema=0.449649, init="identity")
    one_term.model = types.SimpleNamespace(condition_names=(), learned={})
    with pytest.warns(pdec.PdecWarning, match=r"a new run may take its defaults for this loss \(--set "
                                              r"ema=0\.9263314 --set init=zero; this run had ema = 0\.449649, "
                                              r"init = identity\)"):
        _warn_if_stalled(one_term)
    # with those defaults a short run is still in their slow start (rows to step 40); a longer one
    # that stalls gets the damping advice
    short = run("kfac", [1e-7] * 4, ema=0.9263314, init="zero")   # logged every 10 steps
    short.history = [{**r, "step": 10 * i} for i, r in enumerate(short.history)]
    short.model = one_term.model
    with pytest.warns(pdec.PdecWarning, match=r"steps 30–40.*takes almost no step for its first tens of steps "
                                              r"\(its first factors are singular\): train longer, and if the loss "
                                              r"still does not fall, raise its damping"):
        _warn_if_stalled(short)
    # and so is a longer one whose loss has not yet halved
    still = run("kfac", stalled, last_loss=0.9, ema=0.9263314, init="zero")
    still.model = one_term.model
    with pytest.warns(pdec.PdecWarning, match=r"steps 200–300.*train longer"):
        _warn_if_stalled(still)
    longer = run("kfac", stalled, ema=0.9263314, init="zero")
    longer.model = one_term.model
    with pytest.warns(pdec.PdecWarning, match=r"steps 200–300.*raise its damping"):
        _warn_if_stalled(longer)
    with pytest.warns(pdec.PdecWarning, match=r"--set ema=0, now 0.3\) or raise its damping"):
        _warn_if_stalled(run("engd", stalled))
    with pytest.warns(pdec.PdecWarning, match=r"stalled.*raise its damping") as caught:   # ema is 0 already
        _warn_if_stalled(run("engd", stalled, ema=0.0))
    assert "ema" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_stalled(run("kfac", [2e-3, 1e-3, 6e-5, 2e-6, 5e-7, 1e-1]))   # a large step late on
        _warn_if_stalled(run("kfac", stalled, last_loss=1e-12))   # converged to round-off
        _warn_if_stalled(run("adam", stalled))                    # no line search
        _warn_if_stalled(run("kfac", stalled[:4], losses=[1e-1, 1e-2, 1e-3, 1e-4]))   # small steps, falling loss
        _warn_if_stalled(run("kfac", [1e-7, 1e-7]))               # one late row: too short to judge
    # steps of 2^-16 to 2^-11 while the loss hardly falls: stalled too (ENGD at its default EMA on
    # specs/heat1d_data.py, 1 000 steps, logged median 1.2e-4), though not every step is below 2^-15
    slow = [1e-2, 1e-3, 1.2e-4, 6e-5, 4.9e-4, 1.2e-4]
    with pytest.warns(pdec.PdecWarning, match=r"^engd: training stalled.*median 1\.2e-04, largest 4\.9e-04"):
        _warn_if_stalled(run("engd", slow, losses=[5e-2, 1e-2, 5.0e-3, 4.8e-3, 4.6e-3, 4.4e-3]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # the same steps while the loss still halves: slow progress, not a stall
        _warn_if_stalled(run("engd", slow, losses=[5e-2, 1e-2, 5.0e-3, 3e-3, 2e-3, 1e-3]))
        # at a data condition's noise floor the loss stays put, with steps of 2^-9 (ENGD, ema=0, same spec)
        _warn_if_stalled(run("engd", [4e-3, 2e-3, 2e-3, 3.9e-3, 2e-3, 2e-3], last_loss=5.2e-7))
    # a short run (200 steps: rows 50–200) whose last two logged steps stalled
    with pytest.warns(pdec.PdecWarning, match=r"^engd: training stalled.*steps 150–200"):
        _warn_if_stalled(run("engd", [1e-2, 1e-3, 2e-7, 3e-7]))
    # with learned parameters ENGD keeps its average (without it their first steps go far off:
    # README, "Learned parameters")
    inverse = run("engd", stalled)
    inverse.model = types.SimpleNamespace(learned={"kappa": torch.tensor(1.0)})
    with pytest.warns(pdec.PdecWarning, match=r"raise its damping \(now 1\.0e-10; e\.g\. --set damping=1e-06\) "
                                              r"\(keep the Gramian's average") as caught:
        _warn_if_stalled(inverse)
    assert "ema=0" not in str(caught[0].message)


def test_a_spec_parameter_given_as_a_setting_is_named_as_such(capsys):
    spec = str(ROOT / "specs" / "heat1d.py")
    assert main(["train", spec, "--set", "kappa=0.3", "--steps", "1"]) == 2
    assert "kappa is a parameter of " in capsys.readouterr().err
    assert main(["compare", spec, "--optimizers", "adam,sgd", "--set", "kappa=0.3", "--steps", "1"]) == 2
    assert "not a training setting: set it in the spec (parameters={kappa: ...})" in capsys.readouterr().err
    assert main(["train", spec, "--set", "kapa=0.3", "--steps", "1"]) == 2   # a typo keeps its suggestion
    assert "unknown setting 'kapa'" in capsys.readouterr().err


def test_relative_error_is_undefined_when_the_exact_solution_is_zero(tmp_path, capsys):
    from pdec.train.cli_commands import _print_result

    x, y = sp.symbols("x y")
    u = sp.Function("u")(x, y)
    problem = pdec.Problem(name="zero", domain=pdec.Box({x: (0, 1), y: (0, 1)}), unknowns=[u],
                           interior=u.diff(x, 2) + u.diff(y, 2),
                           conditions={"wall": pdec.Condition(u, on=pdec.Boundary())}, exact={u: 0})
    run = pdec.train(pdec.compile(problem, hidden=(4,), write=False), "adam", steps=2, seed=0, run_root=tmp_path,
                     **SMALL)
    assert math.isnan(run.final["rel_l2"]) and run.final["abs_rms"] > 0   # not inf
    _print_result(run)
    assert "relative L2 undefined (the exact solution is 0 on the evaluation points); absolute RMS" in \
        capsys.readouterr().out


def test_plot_draws_a_problem_of_one_variable_and_tells_reruns_apart(tmp_path, capsys, monkeypatch):
    from pdec.train.plots import plot_curves

    x = sp.Symbol("x")
    u = sp.Function("u")(x)
    problem = pdec.Problem(name="ode", domain=pdec.Box({x: (0, 1)}), unknowns=[u],
                           interior=u.diff(x, 2) + sp.pi**2 * sp.sin(sp.pi * x),
                           conditions={"ends": pdec.Condition(u, on=pdec.Boundary())},
                           exact={u: sp.sin(sp.pi * x)})
    compiled = pdec.compile(problem, hidden=(4,), write=False)
    runs = [pdec.train(compiled, "adam", steps=2, seed=0, run_root=tmp_path, **SMALL).run_dir for _ in range(2)]
    assert main(["plot", str(runs[0])]) == 0
    assert f"wrote {runs[0] / 'solution.png'}" in capsys.readouterr().out
    assert (runs[0] / "solution.png").stat().st_size > 0
    # two runs alike in optimizer, D and seed: the legend adds their run ids
    import matplotlib.axes

    seen, original = {}, matplotlib.axes.Axes.legend

    def legend(self, *args, **kwargs):
        seen.setdefault("labels", self.get_legend_handles_labels()[1])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "legend", legend)
    plot_curves(runs, tmp_path / "curves.png")
    assert seen["labels"] == [f"adam (D=13, seed 0) {r.name}" for r in runs]
    # runs that differ in a setting (here Adam's learning rate) are told apart by it
    other = pdec.train(compiled, "adam", steps=2, seed=0, run_root=tmp_path, lr=0.01, **SMALL).run_dir
    seen.clear()
    plot_curves([runs[0], other], tmp_path / "curves.png")
    default = get_optimizer("adam").HYPERPARAMETERS["lr"].default
    assert seen["labels"] == [f"adam (D=13, seed 0) lr={default}", "adam (D=13, seed 0) lr=0.01"]


def test_a_system_logs_each_unknowns_errors(tmp_path):
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / "kovasznay.py"), hidden=(5,), write=False)
    g = torch.Generator().manual_seed(4)
    X = torch.rand(300, 2, dtype=torch.float64, generator=g) * torch.tensor([1.5, 2.0]) + torch.tensor([-0.5, -0.5])
    wall = torch.cat([torch.zeros(10, 1) - 0.5, torch.rand(10, 1, generator=g, dtype=torch.float64) * 2 - 0.5], 1)
    points = {"interior": X[:40], "velocity": wall, "pressure": wall}
    run = pdec.train(compiled, "adam", steps=3, seed=0, run_root=tmp_path, points=points, eval_points=X,
                     progress=False, eval_every=1)
    with torch.no_grad():
        diff = run.model(X) - run.model.exact_solution(X)
        ref = run.model.exact_solution(X)
    final = pdec.load_run(run.run_dir).final   # from metrics.csv
    for k, u in enumerate(("u", "v", "p")):
        assert final[f"rel_l2_{u}"] == pytest.approx(float(diff[:, k].norm() / ref[:, k].norm()), rel=1e-12)
        assert final[f"abs_rms_{u}"] == pytest.approx(float(diff[:, k].pow(2).mean().sqrt()), rel=1e-12)
    assert final["rel_l2"] == pytest.approx(float(diff.norm() / ref.norm()), rel=1e-12)


def _split_biharmonic(exact_v: bool) -> pdec.Problem:
    """−Δu = v, −Δv = f on [0,1]² (u = sin πx sin πy), with an exact solution for u (and v)."""
    x, y = sp.symbols("x y")
    u, v = sp.Function("u")(x, y), sp.Function("v")(x, y)
    ue = sp.sin(sp.pi * x) * sp.sin(sp.pi * y)
    lap = lambda w: w.diff(x, 2) + w.diff(y, 2)   # noqa: E731
    return pdec.Problem(name="split", domain=pdec.Box({x: (0, 1), y: (0, 1)}), unknowns=[u, v],
                        interior=[-lap(u) - v, -lap(v) - 4 * sp.pi**4 * ue],
                        conditions={"wall": pdec.Condition([u, v], on=pdec.Boundary())},
                        exact={u: ue, **({v: 2 * sp.pi**2 * ue} if exact_v else {})})


def test_an_exact_solution_of_some_unknowns_measures_those(tmp_path, capsys):
    from pdec.train.cli_commands import _print_result

    report = pdec.check_problem(_split_biharmonic(exact_v=False))
    assert report.passed and [r.method for r in report.results] == ["skipped", "skipped", "symbolic", "skipped"]
    assert str(report).splitlines()[0] == ("SKIP interior[0]: not checked, it involves v(x, y), which has no "
                                          "exact solution")
    partial = pdec.compile(_split_biharmonic(exact_v=False), hidden=(5,), write=False, seed=0)
    full = pdec.compile(_split_biharmonic(exact_v=True), hidden=(5,), write=False, seed=0)
    assert partial.model.exact_unknowns == ("u",) and full.model.exact_unknowns is None
    X = torch.rand(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(partial.model.exact_solution(X), full.model.exact_solution(X)[:, :1])
    points = {"interior": X[:50], "wall": X[:20].round()}
    run = pdec.train(partial, "adam", steps=2, seed=0, run_root=tmp_path, points=points, eval_points=X,
                     progress=False, eval_every=1)
    with torch.no_grad():
        diff = run.model(X)[:, 0] - full.model.exact_solution(X)[:, 0]
    assert run.final["rel_l2"] == pytest.approx(float(diff.norm() / full.model.exact_solution(X)[:, 0].norm()),
                                                rel=1e-12)
    assert "rel_l2_u" not in run.final   # one unknown measured: its error is the run's
    _print_result(run)
    assert " of u; absolute RMS" in capsys.readouterr().out
    assert main(["plot", str(run.run_dir)]) == 0 and (run.run_dir / "solution.png").stat().st_size > 0


def test_engd_in_float32_with_a_tiny_damping_warns(tmp_path):
    compiled = pdec.compile(pdec.load_spec(ROOT / "specs" / "poisson2d.py"), hidden=(4,), write=False,
                            dtype="float32")
    with pytest.warns(pdec.PdecWarning, match=r"engd in float32 with damping 1e-10: .*raise the damping"):
        pdec.train(compiled, "engd", steps=1, seed=0, run_root=tmp_path, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", pdec.PdecWarning)
        pdec.train(compiled, "engd", steps=1, seed=0, run_root=tmp_path, damping=1e-4, **SMALL)


def test_threads_flag_sets_and_records_the_thread_count(tmp_path, capsys):
    spec = str(ROOT / "specs" / "heat1d.py")
    before = torch.get_num_threads()
    try:
        assert main(["train", spec, "--optimizer", "adam", "--steps", "1", "--threads", "1", "--no-progress",
                     "--runs", str(tmp_path), "--set", "n_interior=20", "--set", "n_condition=8",
                     "--set", "n_eval=20"]) == 0
        run_dir = next((tmp_path / "heat1d").iterdir())
        assert json.loads((run_dir / "config.json").read_text())["threads"] == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert main(["train", spec, "--threads", "0"]) == 2
    assert "--threads 0: give at least 1 thread" in capsys.readouterr().err


def test_resume_writes_no_module(tmp_path, monkeypatch):
    """A run compiled into --out DIR resumes without writing generated/<name>.py where it is resumed."""
    monkeypatch.chdir(tmp_path)
    small = ["--set", "n_interior=20", "--set", "n_condition=8", "--set", "n_eval=50", "--no-progress"]
    spec = str(ROOT / "specs" / "heat1d.py")
    assert main(["train", spec, "--optimizer", "adam", "--steps", "2", "--out", "mods", "--runs", "runs", *small]) == 0
    (run_dir,) = (tmp_path / "runs" / "heat1d").iterdir()
    module = (tmp_path / "mods" / "heat1d.py").read_bytes()
    assert main(["train", "--resume", str(run_dir), "--steps", "4", "--no-progress"]) == 0
    assert not (tmp_path / "generated").exists() and (tmp_path / "mods" / "heat1d.py").read_bytes() == module
    assert read_metrics(run_dir)[-1]["step"] == 4
