"""The training loop: ``train(compiled, optimizer=..., steps=...) -> Run``.

Each run records everything in its directory (see :mod:`pdec.train.runs`), shows progress (tqdm,
or plain lines in a log file: :mod:`.progress`), saves a checkpoint periodically, on SIGINT/SIGTERM
and at the end, and stops with the last finite parameters when the loss or the parameters become
non-finite.

Data parallel (launched by torchrun, or ``pdec train --nproc N``): every rank runs this loop on its
shard of each batch with the same optimizer state; the optimizers all-reduce what they sum over
samples, the ranks agree each step on stopping (time budget, signals), and only rank 0 evaluates,
shows progress and writes the run directory.
"""

from __future__ import annotations

import json
import math
import platform
import shlex
import signal
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from .. import __version__
from ..activations import resolve_activation
from ..check import check_problem
from ..compiler import Compiled
from ..errors import PdecError, PdecWarning
from ..optim import OPTIMIZERS, get_optimizer
from ..parallel import Communicator, from_environment
from ..torch_compile import check_torch_compile, is_compile_error, use_torch_compile
from .allocator import keep_freed_memory
from .config import (RESUME_OVERRIDES, TrainConfig, coerce_setting, parse_sets, read_config_file, resolve_config,
                     toml_value)
from .progress import progress_bar
from .memory import MemoryEstimate, available_memory, check_memory, estimate_memory
from .runs import CHECKPOINT, MetricsLog, load_checkpoint, new_run_dir, read_metrics, save_checkpoint, write_json, write_text
from .sampling import GivenPoints, Points, PointSampler


class TrainingDiverged(PdecError):
    """The loss or the parameters became non-finite; the last finite parameters were kept."""


@dataclass
class Run:
    """A finished (or stopped) training run.

    Attributes:
        run_dir: its directory (None when ``save=False``).
        status: "completed", "interrupted", "diverged" or "failed" (torch.compile or a user's sampler
            failed mid-run; the checkpoint keeps the last completed step); a run read back by
            :func:`pdec.load_run` whose process ended without a summary (killed) is "unfinished".
        steps: optimisation steps done; elapsed: optimisation seconds (evaluation excluded).
        history: the metrics rows (dicts), as in metrics.csv.
        final: the last row's metrics (loss, rel_l2, abs_rms, ...).
    """

    run_dir: Path | None
    config: TrainConfig
    hyper: dict[str, Any]
    model: torch.nn.Module
    memory: MemoryEstimate | None = None
    status: str = "completed"
    stop_signal: int | None = None
    steps: int = 0
    elapsed: float = 0.0
    history: list[dict] = field(default_factory=list)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def evaluate(model, sampler: PointSampler | GivenPoints) -> dict[str, float]:
    """Relative L2 ‖u−u*‖/‖u*‖ and absolute RMS sqrt(mean (u−u*)²) on the held-out set (if u* known),
    over all outputs; for a system also per unknown (``rel_l2_<u>``, ``abs_rms_<u>``). A relative
    error is NaN (undefined) where u* vanishes on every evaluation point. For a data condition
    with held-out observations, ``heldout_rms_<condition>``: sqrt(mean (q − y)²) over them and
    their components (the unweighted misfit, in the data's units). For each learned parameter,
    ``learned_<name>``: its current value, and where the spec gives its true value,
    ``learned_err_<name>``: |value − true value|."""
    out = learned_values(model)
    weights = sampler.problem.weights
    with torch.no_grad():
        for name, rows in sampler.heldout.items():
            r = model.residual(name, rows) / math.sqrt(weights[name])
            out[f"heldout_rms_{name}"] = float(r.pow(2).mean().sqrt())
    exact = getattr(model, "exact_solution", None)
    if exact is None or sampler.eval_points is None:
        return out
    with torch.no_grad():
        X = sampler.eval_points
        columns = model.exact_columns()
        ref = exact(X)
        diff = model(X)[..., columns] - ref
        out.update(_errors(diff, ref))
        if ref.shape[-1] > 1:
            for k, c in enumerate(columns):
                name = model.unknowns[c]
                out.update({f"{key}_{name}": value for key, value in _errors(diff[:, k], ref[:, k]).items()})
        return out


def learned_values(model) -> dict[str, float]:
    """``learned_<name>`` (the current value) for each learned parameter of the model, then
    ``learned_err_<name>`` = |value − true value| for those whose true value the spec gives."""
    learned = getattr(model, "learned", {})
    out = {f"learned_{name}": float(p.detach()) for name, p in learned.items()}
    out.update({f"learned_err_{name}": abs(float(learned[name].detach()) - value)
                for name, value in getattr(model, "learned_exact", {}).items()})
    return out


def learned_columns(model) -> list[str]:
    """The learned-parameter columns of metrics.csv (see :func:`learned_values`)."""
    return list(learned_values(model))


def _loss_fields(loss: float, losses: Mapping[str, float]) -> dict[str, float]:
    """The loss columns of a metrics row: ``loss`` and ``loss_<term>`` for every term."""
    return {"loss": loss, **{f"loss_{k}": v for k, v in losses.items()}}


def _errors(diff: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    rel = float(diff.norm() / ref.norm()) if bool(ref.norm() > 0) else math.nan
    return {"rel_l2": rel, "abs_rms": float(diff.pow(2).mean().sqrt())}


def error_columns(model) -> list[str]:
    """The error columns of metrics.csv: rel_l2, abs_rms (over the unknowns the exact solution
    gives), and per unknown when it gives several."""
    given = [model.unknowns[c] for c in model.exact_columns()] \
        if getattr(model, "exact_solution", None) is not None else []
    per_unknown = [f"{key}_{u}" for key in ("rel_l2", "abs_rms") for u in given] if len(given) > 1 else []
    return ["rel_l2", "abs_rms", *per_unknown]


class _StopSignals:
    """Turns the first SIGINT/SIGTERM into a flag checked after each step (a second one aborts,
    except with ``patient``: a data-parallel rank must finish the step with the others)."""

    def __init__(self, patient: bool = False):
        self.received: int | None = None
        self.patient = patient
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.received is not None:
            if self.patient:
                return
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _versions() -> dict[str, str]:
    import sympy

    return {"pdec": __version__, "torch": torch.__version__, "sympy": sympy.__version__,
            "python": platform.python_version()}


def train(compiled: Compiled, optimizer: str | None = None, *, config_file: str | Path | None = None,
          sets: list[str] | None = None, run_root: str | Path = "runs", save: bool = True,
          resume: str | Path | None = None, comm: Communicator | None = None,
          points: Points | None = None, eval_points: torch.Tensor | None = None, initialize: bool = True,
          init_from: str | Path | None = None, **settings: Any) -> Run:
    """Train a compiled model.

    Args:
        compiled: from :func:`pdec.compile` (its model is trained in place).
        optimizer: registered name ("kfac", "kfac-star", "engd", "engd-layerwise",
            "hessian-free", "adam", "sgd", "lbfgs"); default "kfac".
        config_file: optional TOML file of settings; ``sets``: ``key=value`` strings (win).
        run_root: where ``<spec>/<run-id>/`` is created; ``save=False`` writes nothing.
        resume: a run directory to continue (its config is reused; ``steps``/``time_budget``
            may be raised and ``torch_compile`` switched; any other setting given, here or in
            ``config_file``/``sets``, must equal the run's, else PdecError; a diverged run is
            refused; the number of ranks may differ from the original run's).
        comm: the communicator of a data-parallel job (default: joined from torchrun's
            environment when present, else a single process).
        points: training points given instead of drawn from the spec's regions: one batch
            {term: (N_τ, d)} for the whole run, or ``draw(k) -> batch`` for the k-th batch (k = 0
            first, then one per re-sampling, every ``resample_every`` steps); see
            :class:`~pdec.train.sampling.GivenPoints`. ``n_interior``/``n_condition`` are then
            unused. A run started with given points resumes only with the same ``points``.
        eval_points: held-out points (N_eval, d) for the error metrics (default: ``n_eval``
            uniform points drawn with the seed).
        initialize: re-initialise the weights from the seed and the learned parameters to their
            initial values (default). False: start from the model's current weights and learned
            parameters (after another run, e.g. Adam then L-BFGS, or loaded ones).
        init_from: a run directory: start from the weights of its last checkpoint (its network's
            widths must be this model's), with this run's optimizer and settings; a new run.
        **settings: any :class:`TrainConfig` field (steps, time_budget, seed, n_interior, ...) or
            optimizer hyperparameter. A hyperparameter given nowhere takes the optimizer's default for
            this model's loss where it has one (``defaults_for``: KFAC's ``ema`` and ``init`` on a
            loss of one term), else its general default; the run's ``hyper`` holds what it used.

    Returns:
        :class:`Run`. Raises :class:`TrainingDiverged` after saving the last finite state.
    """
    if not isinstance(compiled, Compiled):
        raise PdecError(f"pdec.train takes the result of pdec.compile (a Compiled), got {type(compiled).__name__}"
                        + ("; compile it first: pdec.train(pdec.compile(problem), ...)"
                           if type(compiled).__name__ == "Problem" else ""))
    model = compiled.model
    checkpoint = None
    if resume is not None:
        run_dir = Path(resume)
        checkpoint, cfg, hyper = _open_resume(run_dir, compiled, points, optimizer, settings, config_file, sets,
                                              save)
        loss_defaults = {}   # the run's settings, as recorded
    else:
        overrides = dict(settings)
        if optimizer is not None:
            overrides["optimizer"] = optimizer
        cfg, hyper = resolve_config(overrides, config_file, sets)
        loss_defaults = {k: v for k, v in get_optimizer(cfg.optimizer).defaults_for(model).items()
                         if k not in cfg.explicit_hyper}
        hyper.update(loss_defaults)
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    _match_compiled(cfg, compiled, dtype, device)
    if cfg.keep_freed_memory and device.type == "cpu":
        keep_freed_memory()
    use_torch_compile(model, cfg.torch_compile)   # also off: the model may come from a compiled run
    if cfg.torch_compile:
        check_torch_compile(device)   # before anything is written: a broken toolchain starts no run
        torch.compiler.reset()        # this run compiles its own graphs, within its own clock
    comm = comm if comm is not None else from_environment(str(device))
    main = comm.is_main
    if comm.distributed and device.type == "cuda" and device.index not in (None, comm.local_rank):
        raise PdecError(f"rank {comm.rank} has its model on {device}; with one GPU per rank, compile with "
                        f"device='cuda:{comm.local_rank}' (LOCAL_RANK)")
    problem = compiled.problem
    exact_check = None   # recorded in config.json: "passed", "failed: <terms>" or why it could not run
    if checkpoint is None and main and problem.exact_solution:
        exact_check = _warn_if_exact_is_wrong(problem)
    if main and dtype == torch.float32 and cfg.optimizer == "engd" and hyper["damping"] < 1e-6:
        warnings.warn(f"{cfg.optimizer} in float32 with damping {hyper['damping']:g}: the Gramian's solve "
                      f"keeps about 7 digits, so its steps stall early; train in float64 (the default) or "
                      f"raise the damping (--set damping=1e-4)", PdecWarning, stacklevel=2)
    sampler = _make_sampler(problem, cfg, points, eval_points, dtype, device, comm, checkpoint)
    _check_same_points(comm, sampler)
    memory = estimate_memory(model, sampler.batch, cfg.optimizer, hyper)
    if main and cfg.progress:
        print(f"memory per rank (estimate): {memory.summary()}", file=sys.stderr)
        if checkpoint is None and loss_defaults:
            print(f"{cfg.optimizer}: defaults for a loss whose only term is the interior residual: "
                  f"{', '.join(f'{k} = {toml_value(v)}' for k, v in loss_defaults.items())} (--set overrides them; "
                  f"README, section KFAC's defaults for a loss of one term, says why)", file=sys.stderr)
    if cfg.memory_check:
        free = available_memory(device)
        fits = free is None or memory.total <= free
        if comm.all_reduce_max([0.0 if fits else 1.0])[0]:  # every rank stops, not only the one short
            check_memory(memory, device, free)  # raises on the rank short of memory, naming the sizes
            raise PdecError("another rank's memory check failed (see its message); nothing was trained")
    initial_weights = "seeded" if initialize else "given"
    if init_from is not None:
        if checkpoint is not None:
            raise PdecError("init_from starts a new run from another run's weights; resume continues a run: "
                            "give one of them")
        _load_weights(model, Path(init_from), problem)
        model.reset_learned()
        initialize, initial_weights = False, f"from {init_from}"
    if checkpoint is None:
        torch.manual_seed(cfg.seed)
        if initialize:
            for layer in model.layers:
                layer.reset_parameters()
            model.reset_learned()
    opt = get_optimizer(cfg.optimizer)(model, comm=comm, **hyper)
    n_params = sum(p.numel() for p in model.parameters())

    step, elapsed = 0, 0.0
    if checkpoint is not None:
        ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in checkpoint["model"].items()}
        if ours != theirs:   # e.g. compiled with another mode: other seed buffers
            saved = checkpoint["settings"]
            raise PdecError(f"the run in {run_dir} trained another module than this compiled model ("
                            f"{', '.join(sorted(set(ours) ^ set(theirs)) or [k for k in ours if ours[k] != theirs[k]])} "
                            f"differ); compile with the run's options: hidden={tuple(saved.get('hidden', ()))}, "
                            f"activation={saved.get('activation')!r}, mode={saved.get('mode')!r} (pdec train "
                            f"--resume does)")
        model.load_state_dict(checkpoint["model"])
        opt.load_state_dict(checkpoint["optimizer"])
        if points is None:   # GivenPoints was built from the checkpoint (and checked against it)
            sampler.load_state_dict(checkpoint["sampler"])
        torch.set_rng_state(checkpoint["torch_rng"])
        step, elapsed = checkpoint["step"], checkpoint["elapsed"]
    elif save and main:
        run_dir = new_run_dir(run_root, problem.name, cfg.optimizer, cfg.seed)
    else:
        run_dir = None
    comm.broadcast_([p.data for p in model.parameters()], src=0)  # every rank starts from rank 0's θ
    if not main:
        run_dir = None  # only rank 0 writes

    terms = list(sampler.batch)
    columns = (["step", "time", "loss"] + [f"loss_{t}" for t in terms] + error_columns(model)
               + [f"heldout_rms_{name}" for name in sampler.heldout] + learned_columns(model)
               + ["lr", *opt.METRICS])
    settings_record = {**asdict(cfg), **hyper}
    if run_dir is not None and checkpoint is None:
        record = _run_record(compiled, settings_record, hyper, n_params, dtype, device, comm, memory, sampler,
                             points, initial_weights, exact_check)
        if loss_defaults:   # the hyperparameters whose defaults came from the loss's terms
            record["defaults_for_the_loss"] = sorted(loss_defaults)
        write_json(run_dir / "config.json", record)
        write_text(run_dir / "module.py", compiled.source)   # the code this run trains, whatever generated/ holds
    log = MetricsLog(run_dir / "metrics.csv", columns, keep_until_step=step if checkpoint else None) \
        if run_dir is not None else None
    run = Run(run_dir, cfg, hyper, model, memory)
    if checkpoint is not None and main:   # a resumed run's history starts with the rows logged before
        run.history = [{**row, "step": int(row["step"])} for row in read_metrics(run_dir) if row["step"] <= step]

    def record(row: dict) -> None:
        if not main:
            return
        run.history.append(row)
        if log is not None:
            log.append(row)

    def checkpoint_state() -> dict:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(), "sampler": sampler.state_dict(),
                "torch_rng": torch.get_rng_state(), "step": step, "elapsed": elapsed,
                "settings": settings_record, "points": "given" if points is not None else "sampled"}

    def finish(status: str) -> None:
        run.status, run.steps, run.elapsed = status, step, elapsed
        final = run.final
        if status == "diverged":
            # the summary reports the parameters kept, which may be a step before the last row of
            # metrics.csv; the log keeps what was measured when it was measured
            loss, losses = opt.losses_at(sampler.batch)   # a collective: every rank takes part
            final = {"step": step, "time": elapsed, **_loss_fields(loss, losses), **evaluate(model, sampler)}
        if run_dir is not None:
            save_checkpoint(run_dir, checkpoint_state())
            write_json(run_dir / "summary.json", {**final, "status": status, "steps": step,
                                                  "time": elapsed, "parameters_D": n_params,
                                                  "ranks": comm.world_size})

    if checkpoint is None:
        loss0, losses0 = opt.losses_at(sampler.batch)  # a collective: every rank takes part
        record({"step": 0, "time": 0.0, **_loss_fields(loss0, losses0), **evaluate(model, sampler),
                "lr": float("nan")})

    def done() -> bool:
        return (cfg.steps and step >= cfg.steps) or (cfg.time_budget and elapsed >= cfg.time_budget)

    params = [p for p in model.parameters()]
    last_good = [p.detach().clone() for p in params]
    good_step = step   # the step count of last_good
    bar = progress_bar(cfg.steps or None, step, f"{problem.name}/{cfg.optimizer}", cfg.progress and main)
    try:
        with _StopSignals(patient=comm.distributed) as stop:
            while not done():
                snapshot = [p.detach().clone() for p in params]
                t0 = time.perf_counter()  # the step's time includes drawing its points
                if cfg.resample_every and step > 0 and step % cfg.resample_every == 0:
                    try:
                        sampler.resample()
                    except PdecError as exc:   # a user's Sampler or draw(k) failed: keep what was trained
                        finish("failed")
                        raise PdecError(f"{exc}; at step {step + 1}, kept the parameters of step {step}"
                                        + (f" in {run_dir}" if run_dir else "")) from exc
                    _check_same_points(comm, sampler)
                try:
                    info = opt.step(sampler.batch)
                except Exception as exc:
                    if not (cfg.torch_compile and is_compile_error(exc)):
                        raise
                    _restore(params, snapshot)
                    finish("failed")
                    cause = (str(exc).strip().splitlines() or [""])[0]
                    raise PdecError(f"torch.compile failed at step {step + 1} ({type(exc).__name__}: {cause}); "
                                    f"kept the parameters of step {step}"
                                    + (f" in {run_dir}: resume without it: pdec train --resume {run_dir} "
                                       f"--no-torch-compile" if run_dir else "")) from exc
                elapsed += time.perf_counter() - t0
                if not math.isfinite(info.loss):   # θ of this step already has a non-finite loss
                    failed = step + 1
                    _restore(params, last_good)
                    step = good_step
                    finish("diverged")
                    raise TrainingDiverged(f"non-finite loss at step {failed}; kept the parameters after "
                                           f"step {step}{f' in {run_dir}' if run_dir else ''}")
                last_good, good_step = snapshot, step
                if not all(torch.isfinite(p).all() for p in params):
                    _restore(params, snapshot)
                    finish("diverged")
                    raise TrainingDiverged(f"step {step + 1} made the parameters non-finite; kept the "
                                           f"parameters after step {step}{f' in {run_dir}' if run_dir else ''}")
                step += 1
                bar.update(1)
                stop_signal = stop.received
                if comm.distributed:
                    # one decision for every rank: rank 0's clock (its evaluation time excluded, as in
                    # a single process) and any rank's stop signal, as of this collective
                    elapsed, stopped = comm.all_reduce_max([elapsed if main else 0.0, stop.received or 0])
                    stop_signal = int(stopped) or None
                last = done() or stop_signal is not None
                if step % cfg.eval_every == 0 or last:
                    # the losses at the parameters this step produced, as the errors are (the step's
                    # own info.loss is at the parameters it started from); outside the clock, and a
                    # collective: every rank takes part
                    loss, losses = opt.losses_at(sampler.batch)
                    if not math.isfinite(loss):   # finite parameters, but an overflowing loss
                        _restore(params, snapshot)
                        step -= 1
                        finish("diverged")
                        raise TrainingDiverged(f"non-finite loss after step {step + 1}; kept the parameters "
                                               f"after step {step}{f' in {run_dir}' if run_dir else ''}")
                if main and (step % cfg.eval_every == 0 or last):
                    metrics = evaluate(model, sampler)
                    record({"step": step, "time": elapsed, **_loss_fields(loss, losses), **metrics, "lr": info.lr,
                            **{k: info.extra.get(k, math.nan) for k in opt.METRICS}})
                    post = {"loss": f"{loss:.2e}",
                            **{f"L_{k}": f"{v:.1e}" for k, v in losses.items()},
                            "steps/s": f"{step / max(elapsed, 1e-9):.1f}"}
                    if "rel_l2" in metrics:
                        post["rel_l2"] = f"{metrics['rel_l2']:.2e}"
                    for name in sampler.heldout:   # the fit on observations it does not train on
                        post[f"heldout_{name}"] = f"{metrics[f'heldout_rms_{name}']:.2e}"
                    for name in getattr(model, "learned", {}):   # where the inverse problem stands
                        post[name if name not in post else f"learned_{name}"] = f"{metrics[f'learned_{name}']:.5g}"
                    if cfg.time_budget:
                        post["left"] = f"{max(cfg.time_budget - elapsed, 0):.0f}s"
                    bar.set_postfix(post, refresh=False)
                if run_dir is not None and step % cfg.checkpoint_every == 0:
                    save_checkpoint(run_dir, checkpoint_state())
                if stop_signal is not None:
                    run.stop_signal = stop_signal
                    finish("interrupted")
                    return run
            finish("completed")
            if main:
                _warn_if_stalled(run)
    finally:
        bar.close()
    return run


def _make_sampler(problem, cfg: TrainConfig, points, eval_points, dtype, device, comm: Communicator,
                  checkpoint: dict | None) -> PointSampler | GivenPoints:
    """The run's training and evaluation points: given from Python (checked, and against a
    resumed run's checkpoint) or drawn from the spec's regions; only rank 0 keeps an evaluation set."""
    main = comm.is_main
    if points is not None:
        if cfg.sampling != "uniform":
            raise PdecError(f"sampling = {cfg.sampling!r} draws the spec's points, but points= gives them; "
                            f"leave one out")
        sampler = GivenPoints(problem, points, eval_points, cfg.seed, cfg.n_eval if main else 0, dtype, device,
                              comm.rank, comm.world_size, state=checkpoint["sampler"] if checkpoint else None)
        if not main:
            sampler.eval_points = None   # only rank 0 evaluates (every rank checked the points)
        if cfg.resample_every and not sampler.resamples:
            raise PdecError(f"resample_every = {cfg.resample_every}, but the points given are one fixed batch; "
                            f"give a function draw(k) -> batch to re-sample, or set resample_every = 0")
    else:
        if eval_points is not None:
            raise PdecError("eval_points is given without points=; give both, or neither")
        sampler = PointSampler(problem, cfg.n_interior, cfg.n_condition, cfg.seed, cfg.n_eval if main else 0,
                               dtype, device, comm.rank, comm.world_size, cfg.sampling)
    return sampler


def _run_record(compiled: Compiled, settings_record: dict, hyper: dict, n_params: int, dtype, device,
                comm: Communicator, memory: MemoryEstimate, sampler, points, initial_weights: str,
                exact_check: str | None) -> dict:
    """config.json of a new run: every resolved setting, the problem, versions, device, dtype, D,
    the plan, where the points, the evaluation set and the initial weights came from, and the
    learned parameters' starts and true values."""
    problem, model = compiled.problem, compiled.model
    return {
        # absolute, so that --resume works from any directory
        "spec": str(Path(problem.source).resolve()) if problem.source else None,
        "problem": problem.name, "problem_fingerprint": problem.fingerprint(),
        "settings": settings_record,
        "hyperparameters": hyper, "parameters_D": n_params, "dtype": str(dtype).replace("torch.", ""),
        "device": str(device), "threads": torch.get_num_threads(), "versions": _versions(), "command": sys.argv,
        "plan": {t: {"mode": p.mode, "S": p.S} for t, p in compiled.plan.terms.items()},
        "widths": list(model.widths), "activation": model.activation_name,
        "ranks": comm.world_size, "memory_per_rank_bytes": memory.parts,
        "points": ({"source": "given", "per_batch": {t: len(X) for t, X in sampler.full_batch.items()},
                    "resampled": sampler.resamples} if points is not None else {"source": "sampled"}),
        # observations trained on, and held out
        "data": {name: len(sampler.full_batch[name]) for name in problem.data_conditions},
        "data_heldout": {name: len(rows) for name, rows in sampler.heldout.items()},
        "eval_points": {"source": "given" if points is not None and sampler.eval_given else "sampled",
                        "N": 0 if sampler.eval_points is None else len(sampler.eval_points)},
        "initial_weights": initial_weights, "exact_solution_check": exact_check,
        # learned parameters: where training starts them, and their true values where known
        "learned": {name: {"initial": value, "exact": model.learned_exact.get(name)}
                    for name, value in model.learned_initial.items()}}


def _open_resume(run_dir: Path, compiled: Compiled, points, optimizer: str | None, settings: Mapping[str, Any],
                 config_file: str | Path | None, sets: list[str] | None, save: bool
                 ) -> tuple[dict, TrainConfig, dict[str, Any]]:
    """The checkpoint of the run in ``run_dir`` and the settings it continues with, after the
    checks that it may continue: the same terms, problem and kind of points, no setting changed but
    the budget (:func:`check_resume_request`), and budget left. Nothing in ``run_dir`` is written."""
    checkpoint = load_checkpoint(run_dir)
    saved_terms = sorted(checkpoint["sampler"]["batch"])
    if saved_terms != sorted(compiled.model.term_names):
        raise PdecError(f"the checkpoint in {run_dir} has the terms {', '.join(saved_terms)}, but the "
                        f"compiled spec has {', '.join(sorted(compiled.model.term_names))}: its conditions changed "
                        f"since the run started, so it cannot resume; start a new run")
    record_file = run_dir / "config.json"
    started = json.loads(record_file.read_text()).get("problem_fingerprint") if record_file.is_file() else None
    if started is not None and started != compiled.problem.fingerprint():
        raise PdecError(f"the spec's problem changed since the run in {run_dir} started (its residuals, "
                        f"conditions, weights, domain, parameters, exact solution or observed data): resuming "
                        f"would train another problem. Start a new run (--init-from {run_dir} starts it from this "
                        f"run's weights)")
    given = checkpoint.get("points") == "given"
    if given != (points is not None):
        raise PdecError(f"the run in {run_dir} was trained on "
                        + ("points given from Python: pass the same points= to resume it" if given else
                           "points drawn from the spec's regions: resume it without points="))
    saved = checkpoint["settings"]
    saved.update(check_resume_request(run_dir, saved, optimizer, settings, config_file, sets, save))
    cfg, hyper = resolve_config(saved)
    step0, elapsed0 = checkpoint["step"], checkpoint["elapsed"]
    if (cfg.steps and step0 >= cfg.steps) or (cfg.time_budget and elapsed0 >= cfg.time_budget):
        # nothing to continue: refuse before anything in the run directory is rewritten
        rule = (f"steps = {cfg.steps}" if cfg.steps and step0 >= cfg.steps
                else f"time budget = {cfg.time_budget:g} s")
        raise PdecError(f"{run_dir} has run {step0} steps ({elapsed0:.1f} s) and its {rule} is "
                        f"reached; to continue it, give a larger --steps or --time-budget (both "
                        f"count from the start of the run)")
    unrecorded = sorted(set(hyper) - set(saved))
    if unrecorded:   # the run was started by an older pdec, before these settings existed
        warnings.warn(f"{run_dir}: the run's record has no {', '.join(unrecorded)} (started by an older "
                      f"pdec); resuming with today's defaults: "
                      f"{', '.join(f'{k} = {hyper[k]!r}' for k in unrecorded)}", PdecWarning, stacklevel=3)
    return checkpoint, cfg, hyper


def _match_compiled(cfg: TrainConfig, compiled: Compiled, dtype, device) -> None:
    """The compiled model fixes widths, activation, mode, dtype and device: an explicit setting that
    contradicts it is an error (compile with it instead); the record then states the model's values.
    The device is recorded by type ("cuda", not "cuda:1"): each rank of a data-parallel job has its
    own GPU, and a resumed run may place them differently."""
    model = compiled.model
    actual = {"hidden": tuple(model.widths[1:-1]), "dtype": str(dtype).replace("torch.", ""),
              "device": device.type,
              "activation": model.activation_name, "mode": compiled.plan.mode if cfg.mode != "auto" else "auto"}
    for key, value in actual.items():
        wanted = getattr(cfg, key)
        if key == "device":
            same = torch.device(str(wanted)).type == value
        elif key == "activation":   # a name, or an expression as text ("z*tanh(z)" is "custom(z*tanh(z))")
            same = resolve_activation(wanted).name == value
        else:
            same = str(wanted) == str(value)
        if key in getattr(cfg, "explicit", ()) and not same:
            raise PdecError(f"setting {key} = {wanted!r} contradicts the compiled model ({key} = {value!r}); "
                            f"pass it to pdec.compile(...) instead")
        setattr(cfg, key, value)


def _check_same_points(comm: Communicator, sampler) -> None:
    """Data parallel with points given from Python: every rank must hold the same whole batch
    (``draw(k)`` may not depend on the rank). Compared by each term's count and sum (two
    all-reduces per batch); every rank raises alike."""
    if not comm.distributed or not isinstance(sampler, GivenPoints):
        return
    values = [v for X in sampler.full_batch.values() for v in (float(X.shape[0]), float(X.sum()))]
    high = comm.all_reduce_max(values)
    low = [-v for v in comm.all_reduce_max([-v for v in values])]
    if high != low:
        raise PdecError(f"the points given differ between ranks (batch k = {sampler.k}): draw(k) must return "
                        f"the same batch on every rank (seed it with k, not with the rank)")


#: The optimizers whose step size comes from the grid line search over 2⁻³⁰ … 2⁰ (their stalls are
#: README's "When training stalls").
_LINE_SEARCH = ("kfac", "engd", "engd-layerwise", "hessian-free")
STALLED_STEP = 2.0**-15   # every late step at most this: stalled
SLOW_STEP = 2.0**-12      # the late steps' median at most this while the loss fell by less than half: stalled


#: KFAC with its defaults for a loss of one term takes almost no step for its first steps, 15 on
#: heat1d_hard (docs/performance.md, "Hard constraints: why KFAC stalled on a loss of one term"),
#: longer on other problems: a run whose logged steps end at or before this, or whose loss is still
#: above half its start, is told to train longer before it changes its damping
ONE_TERM_START = 50


def _stall_advice(optimizer: str, hyper: dict, last_damping: float | None = None, learned: bool = False,
                  loss_defaults: Mapping[str, Any] | None = None, early: bool = False) -> str:
    """What to change when the line search of ``optimizer`` with ``hyper`` stalls (``last_damping``:
    KFAC's λ on the last logged step, when adaptive damping moved it; ``learned``: the model has
    learned parameters, which ENGD without its average sends far off, README "Learned parameters";
    ``loss_defaults``: the optimizer's defaults for the model's loss, the first advice where the run
    had other values; ``early``: with them, the run may still be in their slow start, see
    :data:`ONE_TERM_START`)."""
    other = {k: v for k, v in (loss_defaults or {}).items() if hyper.get(k) != v}
    if other:
        return (f"a new run may take its defaults for this loss ({' '.join(f'--set {k}={v}' for k, v in other.items())}"
                f"; this run had {', '.join(f'{k} = {hyper.get(k)}' for k in other)})")
    damping = hyper.get("damping")
    if loss_defaults and early:
        return (f"with its defaults for a loss of one term {optimizer} takes almost no step for its first tens "
                f"of steps (its first factors are singular): train longer, and if the loss still does not fall, "
                f"raise its damping (now {damping:.1e}; e.g. --set damping={max(1e-6, 100 * damping):.0e}) "
                f"(README, section KFAC's defaults for a loss of one term)")
    if optimizer == "kfac" and hyper.get("adaptive_damping") and last_damping is not None:
        return (f"adaptive damping had taken λ from {damping:.1e} to {last_damping:.1e}, so the damping alone "
                f"does not hold it back: try kfac-star or engd, or weigh the terms (interior_weight, weight)")
    raise_damping = (f"raise its damping (now {damping:.1e}; e.g. --set damping="
                     f"{max(1e-6, 100 * damping):.0e})")
    if optimizer in ("engd", "engd-layerwise") and hyper.get("ema", 0) > 0 and learned:
        return f"{raise_damping} (keep the Gramian's average: without it the learned parameters' first steps go far off)"
    if optimizer in ("engd", "engd-layerwise") and hyper.get("ema", 0) > 0:
        return f"drop the Gramian's average (--set ema=0, now {hyper['ema']:g}) or {raise_damping}"
    if optimizer == "kfac" and not hyper.get("adaptive_damping"):
        return f"{raise_damping} or let it follow the line search (--set adaptive_damping=true)"
    return raise_damping


def _warn_if_stalled(run: Run) -> None:
    """Warn when the line search has stopped making progress over the run's second half (at least 2
    logged rows: a run of 200 steps logs 50, 100, 150, 200) while the loss is above 1e-10 of its
    start: every logged step took at most 2⁻¹⁵, or the median step and the last were at most 2⁻¹²
    and the loss fell by less than half. On the runs README's "When training stalls" counts,
    converged ones (also at a data condition's noise floor) took median steps of 1.5e-3 or more
    there, stalled ones medians of 1.2e-4 or less."""
    rows = [r for r in run.history if r["step"] > 0]
    late = rows[len(rows) // 2:]
    if run.config.optimizer not in _LINE_SEARCH or len(late) < 2:
        return
    steps = [r.get("lr", math.nan) for r in late]
    if not all(math.isfinite(a) for a in steps):
        return
    converged = late[-1]["loss"] <= 1e-10 * run.history[0]["loss"]   # round-off: no step can gain
    tiny = all(a <= STALLED_STEP for a in steps)
    slow = (max(statistics.median(steps), steps[-1]) <= SLOW_STEP   # and not ended by a large last step
            and late[-1]["loss"] > 0.5 * late[0]["loss"])
    learned = len(getattr(run.model, "learned", {})) > 0
    loss_defaults = {} if run.model is None else get_optimizer(run.config.optimizer).defaults_for(run.model)
    if not converged and (tiny or slow):
        early = late[-1]["step"] <= ONE_TERM_START or late[-1]["loss"] > 0.5 * run.history[0]["loss"]
        advice = _stall_advice(run.config.optimizer, run.hyper, late[-1].get("damping"), learned, loss_defaults,
                               early)
        warnings.warn(f"{run.config.optimizer}: training stalled: on the logged steps {late[0]['step']}–"
                      f"{late[-1]['step']} the line search's steps were small (median "
                      f"{statistics.median(steps):.1e}, largest {max(steps):.1e}) and the loss went from "
                      f"{late[0]['loss']:.2e} to {late[-1]['loss']:.2e}; {advice}, or see the "
                      f"README's 'When training stalls'", PdecWarning, stacklevel=3)


def _warn_if_exact_is_wrong(problem) -> str:
    """Warn when the spec's exact solution fails :func:`pdec.check.check_problem` (a fraction of a
    second on the shipped specs): the run's errors are measured against it. Returns the outcome for
    the run's record: "passed", "failed: <terms>" or "not checked: <why>"."""
    try:
        report = check_problem(problem)
    except Exception as exc:   # e.g. a user's Sampler that fails on the check's points: train anyway
        warnings.warn(f"could not check the exact solution of {problem.source or problem.name} "
                      f"({type(exc).__name__}: {exc})", PdecWarning, stacklevel=3)
        return f"not checked: {type(exc).__name__}: {exc}"
    failed = [r.term for r in report.results if not r.passed]
    if failed:
        where = problem.source or f"problem {problem.name!r}"
        how = f"`pdec check {problem.source}`" if problem.source else "pdec.check.check_problem(problem)"
        warnings.warn(f"the exact solution of {where} does not satisfy {', '.join(failed)} (see {how}): the "
                      f"relative L2 and RMS errors of this run are measured against it", PdecWarning,
                      stacklevel=3)
        return f"failed: {', '.join(failed)}"
    return "passed"


def _load_weights(model, run_dir: Path, problem=None) -> None:
    """Copy the weights of ``run_dir``'s last checkpoint into ``model`` (same widths and activation).
    A run of another problem is allowed (a warm start from a related PDE), with a warning. The
    layers' weights only: learned parameters start from the spec's values."""
    if not (run_dir / CHECKPOINT).is_file():
        raise PdecError(f"{run_dir}: no {CHECKPOINT} to start from")
    record = json.loads((run_dir / "config.json").read_text())   # the run's widths and activation
    started = record.get("problem_fingerprint")
    if problem is not None and started is not None and started != problem.fingerprint():
        warnings.warn(f"{run_dir} trained another problem ({record.get('problem')!r}, or this spec "
                      f"before it changed); starting from its weights anyway", PdecWarning, stacklevel=3)
    theirs, ours = tuple(record["widths"]), tuple(model.widths)
    if theirs != ours:
        hidden = theirs[1:-1]
        if (theirs[0], theirs[-1]) != (ours[0], ours[-1]):
            raise PdecError(f"{run_dir}: its network has the widths {theirs}, this model {ours}: it maps "
                            f"{theirs[0]} inputs to {theirs[-1]} outputs, a network of another problem's "
                            f"variables and unknowns, so its weights cannot start this one")
        raise PdecError(f"{run_dir}: its network has the widths {theirs}, this model {ours}; to start from its "
                        f"weights use its hidden widths: --hidden {','.join(map(str, hidden))} on the command "
                        f"line, pdec.compile(..., hidden={hidden}) in Python")
    if record["activation"] != model.activation_name:
        raise PdecError(f"{run_dir}: its network uses {record['activation']}, this model "
                        f"{model.activation_name}; to start from its weights use --activation "
                        f"{shlex.quote(record['activation'])} (pdec.compile(..., activation="
                        f"{record['activation']!r}) in Python)")
    state = load_checkpoint(run_dir)["model"]
    model.load_state_dict({k: v for k, v in state.items() if k.startswith("layers.")}, strict=False)


def check_resume_request(run_dir: Path, saved: dict, optimizer: str | None = None,
                         settings: Mapping[str, Any] | None = None, config_file: str | Path | None = None,
                         sets: list[str] | None = None, save: bool = True) -> dict[str, Any]:
    """What a resume of ``run_dir`` (its recorded ``saved`` settings) may take from the request.

    A resumed run keeps its own settings: ``optimizer``, ``settings``, a ``config_file`` and
    ``sets`` may only repeat them (compared as resolved values: "cuda:0" is the device cuda, None
    is not given), except :data:`RESUME_OVERRIDES`, which are returned to apply. Anything else, a
    diverged run and ``save=False`` (resuming writes into the run's directory) raise PdecError.
    """
    _refuse_diverged(run_dir)
    if not save:
        raise PdecError(f"save=False: a resumed run writes into its directory {run_dir} (give save=True, or "
                        f"start a new run with init_from={str(run_dir)!r} and save=False)")
    asked: dict[str, Any] = {}
    if config_file is not None:
        for key, value in read_config_file(config_file).items():
            if isinstance(value, dict):   # an optimizer's table: the run's optimizer's applies
                if key == saved.get("optimizer"):
                    asked.update(value)
            else:
                asked[key] = value
    asked.update({k: v for k, v in (settings or {}).items() if v is not None})
    if optimizer is not None:
        asked["optimizer"] = optimizer
    asked.update(parse_sets(sets))
    defaults = asdict(TrainConfig())

    def resolved(key: str, value: Any) -> Any:
        if key == "device":
            return torch.device(str(value)).type
        if key in defaults:
            return coerce_setting(key, value, defaults[key])
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return tuple(value) if isinstance(value, list) else value

    changed = []
    for key, value in asked.items():
        if key in RESUME_OVERRIDES:
            continue
        try:
            same = key in saved and resolved(key, value) == resolved(key, saved[key])
        except (PdecError, RuntimeError, TypeError, ValueError):
            same = False
        if not same:
            changed.append(f"{key} = {value!r}")
    if changed:
        raise PdecError(f"a resumed run continues with its own settings; only {', '.join(RESUME_OVERRIDES)} may "
                        f"change, but {'; '.join(changed)} was given. Start a new run for other settings "
                        f"(--init-from {run_dir} starts it from this run's weights)")
    return {k: v for k, v in asked.items() if k in RESUME_OVERRIDES}


def _refuse_diverged(run_dir: Path) -> None:
    """A diverged run cannot be resumed: its checkpoint holds the last finite parameters, but the
    optimizer's state (factors, momentum) and the sampler's have already taken the failed steps,
    and the settings that diverged would stay the same (``--resume`` changes only the budget).
    Its weights remain a start for a new run with other settings (``--init-from``)."""
    summary_file = run_dir / "summary.json"
    if not summary_file.is_file():
        return
    summary = json.loads(summary_file.read_text())
    if summary.get("status") == "diverged":
        optimizer = json.loads((run_dir / "config.json").read_text()).get("settings", {}).get("optimizer") \
            if (run_dir / "config.json").is_file() else None
        knob = "lr=…" if optimizer in OPTIMIZERS and "lr" in OPTIMIZERS[optimizer].HYPERPARAMETERS else "damping=…"
        raise PdecError(f"{run_dir} diverged (its checkpoint keeps the parameters after step "
                        f"{summary.get('steps')}); resuming would repeat the settings that failed. Start a "
                        f"new run from its weights with other settings, e.g. pdec train SPEC --init-from "
                        f"{run_dir} --optimizer {optimizer or '…'} --set {knob}")


def _restore(params, values) -> None:
    with torch.no_grad():
        for p, v in zip(params, values):
            p.copy_(v)
