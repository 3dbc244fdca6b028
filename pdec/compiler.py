"""``pdec.compile``: problem -> analysis -> plan -> generated module -> instantiated model."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import sympy as sp
import torch

from . import __version__
from .activations import resolve_activation
from .analysis import analyse
from .codegen.emit import Options, build_context, content_hash
from .codegen.render import render_module, template_sources
from .loader import load_spec
from .plan import Plan, make_plan
from .runtime import GeneratedPINN
from .spec import Problem

DEFAULT_OUT_DIR = Path("generated")


@dataclass
class Compiled:
    """Result of :func:`compile`.

    Attributes:
        problem: the validated problem.
        plan: the propagation plan (``plan.mode``, ``plan.S``, ``plan.terms[...]``, ``plan.describe()``).
        source: text of the generated module.
        source_path: where it was written (None when ``write=False``).
        module_class: the generated ``nn.Module`` subclass.
        model: an instance with the requested widths, dtype and device.
    """

    problem: Problem
    plan: Plan
    source: str
    source_path: Path | None
    module_class: type
    model: GeneratedPINN


def generate_source(problem: Problem, hidden: Sequence[int] = (64,), activation="tanh",
                    mode: str = "auto") -> tuple[Plan, str]:
    """Analyse, plan and render; returns (plan, module source). Deterministic."""
    problem.validate()
    act = resolve_activation(activation)
    plan = make_plan(analyse(problem), mode)
    options = Options(tuple(int(h) for h in hidden), act, mode)
    spec_text = Path(problem.source).read_text() if problem.source and Path(problem.source).is_file() \
        else sp.srepr(problem.interior_residuals)
    digest = content_hash(spec_text, template_sources(), options.header(), __version__)
    return plan, render_module(build_context(plan, options, __version__, digest))


def load_generated(path: str | Path) -> type:
    """Import a generated module file and return its model class."""
    path = Path(path)
    name = f"_pdec_generated_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    classes = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, GeneratedPINN) and v is not GeneratedPINN]
    if len(classes) != 1:
        raise ImportError(f"{path} does not define exactly one generated model class")
    return classes[0]


def compile(problem: Problem | str | Path, hidden: Sequence[int] = (64,), activation="tanh", mode: str = "auto",
            dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
            out_dir: str | Path = DEFAULT_OUT_DIR, write: bool = True, seed: int | None = None) -> Compiled:
    """Compile a problem into a generated PyTorch module and instantiate it.

    Args:
        problem: a :class:`~pdec.spec.Problem`, or the path of a spec file (read with
            :func:`pdec.load_spec`).
        hidden: hidden-layer widths of the MLP d -> hidden -> m.
        activation: "tanh" (default), "sin", "sigmoid", "softplus", or a SymPy expression of one
            symbol.
        mode: "auto", or force "laplacian", "collapsed" or "taylor" for the interior residual
            ("laplacian" on ∂_t u − κ Δ_x u: ∂_t h in its own column, the paper's stack).
        dtype, device: of the model's parameters and buffers (float64 by default, as in the paper).
        out_dir: where ``<name>.py`` is written; the file is rewritten only when its text changes.
        write: False keeps the module in memory (a temporary file is still used to import it).
        seed: if given, ``torch.manual_seed(seed)`` right before the weights are initialised.

    Returns:
        :class:`Compiled` with ``.plan``, ``.source_path`` and ``.model``.
    """
    if isinstance(problem, (str, os.PathLike)):
        problem = load_spec(problem)
    elif not isinstance(problem, Problem):
        raise TypeError(f"pdec.compile takes a Problem or the path of a spec file, got {type(problem).__name__}")
    plan, source = generate_source(problem, hidden, activation, mode)
    if write:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{problem.name}.py"
        if not path.is_file() or path.read_text() != source:
            tmp = path.with_suffix(f".py.{os.getpid()}.tmp")  # ranks of one job may write at once
            tmp.write_text(source)
            tmp.replace(path)
        cls = load_generated(path)
        source_path = path
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmpdir:
            path = Path(tmpdir) / f"{problem.name}.py"
            path.write_text(source)
            cls = load_generated(path)
        source_path = None
    if seed is not None:
        torch.manual_seed(seed)
    model = cls(hidden=tuple(hidden), dtype=dtype, device=device)
    return Compiled(problem, plan, source, source_path, cls, model)
