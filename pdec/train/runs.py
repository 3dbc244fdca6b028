"""Run directories: ``runs/<spec>/<run-id>/`` with config.json, module.py (the generated module's
text), metrics.csv, checkpoint.pt, summary.json.

Files are written atomically (temporary file + rename), so an interrupted write never leaves a
truncated checkpoint or summary.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"


def new_run_dir(root: str | Path, spec_name: str, optimizer: str, seed: int) -> Path:
    """A fresh, unique run directory (created)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / spec_name / f"{stamp}-{optimizer}-seed{seed}"
    path, k = base, 1
    while path.exists():
        path = base.with_name(f"{base.name}-{k}")
        k += 1
    path.mkdir(parents=True)
    return path


def write_text(path: Path, text: str) -> None:
    """Write a file atomically (temporary file + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _strict(value: Any) -> Any:
    """``value`` with NaN and ±inf floats as None, so that the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as strict JSON (non-finite floats as null), atomically."""
    write_text(path, json.dumps(_strict(data), indent=2, default=str, allow_nan=False) + "\n")


def save_checkpoint(run_dir: Path, state: dict) -> None:
    tmp = run_dir / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, run_dir / CHECKPOINT)


def load_checkpoint(run_dir: Path, map_location="cpu") -> dict:
    """The run's checkpoint, its tensors on ``map_location`` (default the CPU, where RNG states must
    be; the model, optimizer and sampler states are moved to their device as they are loaded)."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        from ..errors import PdecError

        raise PdecError(f"{run_dir}: no {CHECKPOINT} (not a run directory, or its run saved none)")
    return torch.load(path, weights_only=False, map_location=map_location)


class MetricsLog:
    """Appends rows to metrics.csv; on resume, rows past the checkpoint's step are dropped."""

    def __init__(self, path: Path, columns: list[str], keep_until_step: int | None = None):
        self.path = path
        self.columns = columns
        if keep_until_step is not None and path.is_file():
            with path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= keep_until_step]
            with path.open("w", newline="") as f:
                w = csv.DictWriter(f, columns)
                w.writeheader()
                w.writerows(rows)
        elif not path.is_file():
            with path.open("w", newline="") as f:
                csv.DictWriter(f, columns).writeheader()

    def append(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(row)
            f.flush()


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """metrics.csv as a list of dicts of floats (empty cells -> nan)."""
    with (Path(run_dir) / "metrics.csv").open() as f:
        return [{k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()}
                for row in csv.DictReader(f)]
