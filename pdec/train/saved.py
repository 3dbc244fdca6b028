"""Reading a saved run back: ``pdec.load_run(run_dir) -> Run`` with its trained model.

What ``pdec train`` leaves in ``runs/<spec>/<run-id>/`` (:mod:`pdec.train.runs`) is enough to
rebuild the network it trained: ``module.py`` is the generated module's text, ``config.json`` the
widths, activation and dtype, and ``checkpoint.pt`` the weights of the last completed step.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..compiler import load_generated, torch_device
from ..errors import PdecError
from .config import resolve_config
from .loop import Run
from .runs import CHECKPOINT, load_checkpoint, read_metrics

#: ``Run.status`` of a run whose process ended without writing summary.json (killed, or still
#: running): the weights are those of its last periodic checkpoint.
UNFINISHED = "unfinished"


def load_run(run_dir: str | Path, device: torch.device | str | None = None) -> Run:
    """The run saved in ``run_dir`` (``runs/<spec>/<run-id>``), its model holding the weights of
    the run's last checkpoint.

    The model is built from the module the run trained (its ``module.py``, whatever the spec or
    ``generated/`` hold now), in the run's dtype, on ``device`` (default: the CPU). Evaluate the
    learned solution with ``run.model(X)``: X is (N, d), one point per row, the columns in the order
    of ``run.model.variables``; the result is (N, m), one column per unknown of
    ``run.model.unknowns``. ``run.model.interior_residual(X)`` gives the PDE residual (N, M).

    Returns:
        :class:`Run` with ``status`` from summary.json ("completed", "interrupted", "diverged",
        "failed"; ``"unfinished"`` when the process ended without one, e.g. killed), ``steps`` and
        ``elapsed`` of the checkpoint, and ``history``: the rows of metrics.csv up to its step.
        ``run.model`` is in eval mode. To train the run further: ``pdec train --resume RUN_DIR``
        (in Python, ``pdec.train(pdec.compile(spec, hidden=…, activation=…, mode=…), resume=run_dir)``
        with the run's options, which ``run.config`` holds).

    Raises:
        PdecError: ``run_dir`` is not a run directory, or holds no checkpoint yet.
    """
    run_dir = Path(run_dir)
    record_file = run_dir / "config.json"
    if not record_file.is_file():
        raise PdecError(f"{run_dir}: not a run directory (no config.json); runs are saved as "
                        f"runs/<spec>/<run-id>/")
    if not (run_dir / CHECKPOINT).is_file():
        raise PdecError(f"{run_dir}: no {CHECKPOINT} yet (the run saves one every checkpoint_every steps "
                        f"and when it stops)")
    record = json.loads(record_file.read_text())
    cfg, hyper = resolve_config(record["settings"])
    model = build_model(run_dir, record, cfg, torch_device(device) if device is not None else torch.device("cpu"))
    checkpoint = load_checkpoint(run_dir)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    step = int(checkpoint["step"])
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    # summary.json is written with the last checkpoint; an older one belongs to a resume that stopped
    status = summary.get("status", UNFINISHED) if summary.get("steps") == step else UNFINISHED
    history = [{**row, "step": int(row["step"])} for row in read_metrics(run_dir) if row["step"] <= step]
    return Run(run_dir, cfg, hyper, model, status=status, steps=step, elapsed=float(checkpoint["elapsed"]),
               history=history)


def build_model(run_dir: Path, record: dict, cfg, device: torch.device) -> torch.nn.Module:
    """The run's network with freshly initialised weights: from its ``module.py``, or, for a run
    recorded before runs kept their module, compiled again from its spec (in memory)."""
    dtype = getattr(torch, cfg.dtype)
    if (run_dir / "module.py").is_file():
        return load_generated(run_dir / "module.py")(hidden=cfg.hidden, dtype=dtype, device=device)
    spec = record.get("spec")
    if not spec or not Path(spec).is_file():
        raise PdecError(f"{run_dir}: the run kept no module.py and its spec {spec!r} is not there to "
                        f"compile it again")
    from ..compiler import compile as compile_problem

    return compile_problem(spec, hidden=cfg.hidden, activation=cfg.activation, mode=cfg.mode, dtype=dtype,
                           device=device, write=False).model
