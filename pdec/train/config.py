"""Run configuration: defaults -> a TOML file -> ``--set key=value`` overrides.

Keys are flat: the training keys of :class:`TrainConfig` plus the chosen optimizer's
hyperparameters. A TOML file may also hold one table per optimizer (``[kfac]``, ``[adam]``, …);
only the chosen optimizer's table applies, after the file's top-level keys. An unknown key is an
error that suggests the closest valid one.
"""

from __future__ import annotations

import ast
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Mapping

from ..errors import PdecError
from ..optim import OPTIMIZERS, get_optimizer
from .sampling import SAMPLINGS


def _setting(default: Any, help: str):
    """A :class:`TrainConfig` field with its line of help (``pdec settings``)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Training settings (everything but the optimizer's own hyperparameters); each field's help
    is its ``metadata["help"]`` (:data:`SETTING_HELP`)."""

    optimizer: str = _setting("kfac", " or ".join([", ".join(sorted(OPTIMIZERS)[:-1]), sorted(OPTIMIZERS)[-1]]))
    steps: int = _setting(0, "step limit (0: none, then time_budget is required)")
    time_budget: float = _setting(0.0, "seconds of optimisation, evaluation excluded (0: none)")
    seed: int = _setting(0, "seeds the initial weights and every sampler")
    hidden: tuple[int, ...] = _setting((64,), "hidden widths (--hidden 64,64)")
    activation: str = _setting("tanh", "tanh, sin, sigmoid, softplus, or a SymPy expression of z")
    mode: str = _setting("auto", "propagation of the interior residual: auto, laplacian, collapsed or taylor")
    dtype: str = _setting("float64", "float64 (the paper's) or float32")
    device: str = _setting("cpu", "cpu or cuda")
    n_interior: int = _setting(900, "interior points per batch")
    n_condition: int = _setting(120, "condition points per batch, split evenly over the conditions (a condition "
                                     "on Data holds its own observations)")
    n_eval: int = _setting(9000, "held-out points for the error metrics")
    resample_every: int = _setting(0, "draw a new batch every K steps (0: fixed points)")
    sampling: str = _setting("uniform", "training points: uniform (pseudo-random) or sobol (quasi-random)")
    eval_every: int = _setting(50, "log and evaluate every K steps")
    checkpoint_every: int = _setting(500, "checkpoint every K steps (and at the end, on Ctrl-C and on SIGTERM)")
    progress: bool = _setting(True, "a progress bar (or a line every 10 s in a log file)")
    keep_freed_memory: bool = _setting(True, "glibc: keep freed memory mapped (faster steps; pdec.train.allocator)")
    memory_check: bool = _setting(True, "refuse a run whose estimated memory per rank exceeds what is free")
    torch_compile: bool = _setting(False, "torch.compile the loss and the line search's trial pass "
                                          "(pdec.torch_compile)")

    def validate(self) -> "TrainConfig":
        if self.steps < 0 or self.time_budget < 0:
            raise PdecError("steps and time_budget must be ≥ 0")
        if self.steps == 0 and self.time_budget == 0:
            raise PdecError("give --steps N or --time-budget SECONDS")
        if self.sampling not in SAMPLINGS:
            raise PdecError(f"sampling must be {' or '.join(map(repr, SAMPLINGS))}, got {self.sampling!r}")
        if self.dtype not in ("float64", "float32"):
            raise PdecError(f"dtype must be float64 or float32, got {self.dtype!r}")
        for k in ("n_interior", "eval_every", "checkpoint_every"):
            if getattr(self, k) < 1:
                raise PdecError(f"{k} must be ≥ 1, got {getattr(self, k)}")
        if self.n_condition < 0 or self.n_eval < 0 or self.resample_every < 0:
            raise PdecError("n_condition, n_eval and resample_every must be ≥ 0")
        return self


TRAIN_KEYS = {f.name for f in fields(TrainConfig)}

#: One line per training setting, for ``pdec settings``.
SETTING_HELP = {f.name: f.metadata["help"] for f in fields(TrainConfig)}


def describe_settings(optimizer: str | None = None) -> str:
    """The settings ``--set`` and a TOML file accept, with defaults (as TOML values) and one line of
    help each: the training settings, then the hyperparameters of ``optimizer`` (None: of every
    optimizer) with their ranges or choices in brackets."""
    def row(key: str, default: Any, text: str) -> str:
        return f"  {key} = {toml_value(default)}".ljust(34) + f"  {text}"

    defaults = asdict(TrainConfig())
    lines = ["training settings:"] + [row(k, defaults[k], SETTING_HELP[k]) for k in defaults]
    for name in ([optimizer] if optimizer else sorted(OPTIMIZERS)):
        cls = get_optimizer(name)
        lines += ["", f"{name} hyperparameters:"]
        for key, h in cls.HYPERPARAMETERS.items():
            limits = ([f"{'>' if h.lo_open else '≥'} {h.lo}"] if h.lo is not None else []) + \
                     ([f"≤ {h.hi}"] if h.hi is not None else []) + \
                     ([" or ".join(map(str, h.choices))] if h.choices else [])
            lines.append(row(key, h.default, h.help + (f" [{', '.join(limits)}]" if limits else "")))
    return "\n".join(lines)


def toml_value(value: Any) -> str:
    """A default as a TOML file writes it: true, 1.5e-12, "kfac", [64]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


#: The settings a resumed run may change: how long it runs and how it executes, not what it computes
#: (torch_compile changes round-off only).
RESUME_OVERRIDES = ("steps", "time_budget", "progress", "torch_compile")


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        return text


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def coerce_setting(key: str, value: Any, default: Any) -> Any:
    """A training setting's value in the type of its ``default`` (widths from "64,64", on/off from
    "off", …); a PdecError naming the setting otherwise."""
    if isinstance(default, tuple):
        given = value
        if isinstance(value, str):
            value = value.split(",")
        elif isinstance(value, int):
            value = (value,)
        try:
            widths = tuple(int(str(v).strip()) for v in value if str(v).strip())
        except (TypeError, ValueError):
            widths = ()
        if not widths or any(w < 1 for w in widths):
            raise PdecError(f"setting {key} = {given!r}: expected positive integers such as 64 or 64,64")
        return widths
    if isinstance(default, bool):
        # bool("off") is True: only true/false (and their usual spellings) are an on/off setting
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise PdecError(f"setting {key} = {value!r}: expected true or false")
    if isinstance(default, int) and isinstance(value, (int, float)) and float(value).is_integer():
        return int(value)
    if isinstance(default, float) and isinstance(value, (int, float)):
        return float(value)
    if type(default) is not type(value):
        kind = {"str": "a string", "int": "an integer", "float": "a number"}.get(type(default).__name__,
                                                                             type(default).__name__)
        raise PdecError(f"setting {key} = {value!r}: expected {kind}")
    return value


def read_config_file(config_file: str | Path) -> dict[str, Any]:
    """A TOML config's settings: top-level keys, and one table per optimizer (``[kfac]``) whose keys
    are checked against that optimizer's settings (a typo waits otherwise until one uses it)."""
    path = Path(config_file)
    if not path.is_file():
        raise PdecError(f"config file {path} not found")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise PdecError(f"{path}: invalid TOML: {exc}")
    for key, value in data.items():
        if isinstance(value, dict):
            table_cls = get_optimizer(key)  # a table must be named after an optimizer
            known = TRAIN_KEYS | set(table_cls.HYPERPARAMETERS)
            for name in value:
                if name not in known:
                    close = get_close_matches(name, sorted(known), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise PdecError(f"{path}: [{key}] has an unknown setting {name!r}{hint}")
    return data


def parse_sets(sets: list[str] | None) -> dict[str, Any]:
    """``--set key=value`` strings as a dict (values read as Python literals, else text)."""
    out: dict[str, Any] = {}
    for item in sets or []:
        if "=" not in item:
            raise PdecError(f"--set takes key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = _parse_value(v.strip())
    return out


def _no_lr(optimizer: str) -> str:
    """How an optimizer without ``lr`` chooses its step (the end of the message for --set lr=…)."""
    if optimizer == "kfac-star":
        return "; its step size and momentum come from a 2 × 2 quadratic model; first_lr sets the first step)"
    return "; its step size comes from a line search)"


def resolve_config(overrides: Mapping[str, Any] | None = None, config_file: str | Path | None = None,
                   sets: list[str] | None = None) -> tuple[TrainConfig, dict[str, Any]]:
    """Merge defaults, a TOML file, explicit overrides and ``key=value`` strings (later wins).

    Returns:
        (training config, resolved optimizer hyperparameters). The config's ``explicit`` and
        ``explicit_hyper`` name the keys a file, an override or ``key=value`` gave; :func:`pdec.train`
        then puts the optimizer's defaults for the model's loss (``defaults_for``) in place of the others.
    """
    merged: dict[str, Any] = {}
    tables: dict[str, dict] = {}
    if config_file:
        for key, value in read_config_file(config_file).items():
            if isinstance(value, dict):
                tables[key] = value
            else:
                merged[key] = value
    later: dict[str, Any] = {k: v for k, v in (overrides or {}).items() if v is not None}
    later.update(parse_sets(sets))

    optimizer = later.get("optimizer", merged.get("optimizer", TrainConfig.optimizer))
    merged.update(tables.get(optimizer, {}))  # the chosen optimizer's [table] of the file
    merged.update(later)
    opt_cls = get_optimizer(optimizer)
    valid = sorted(TRAIN_KEYS | set(opt_cls.HYPERPARAMETERS))
    train, hyper = {}, {}
    defaults = asdict(TrainConfig())
    for key, value in merged.items():
        if key in TRAIN_KEYS:
            train[key] = coerce_setting(key, value, defaults[key])
        elif key in opt_cls.HYPERPARAMETERS:
            hyper[key] = value
        else:
            owners = sorted(name for name, cls in OPTIMIZERS.items() if key in cls.HYPERPARAMETERS)
            if owners:   # a real hyperparameter, of other optimizers
                raise PdecError(f"{key!r} is a hyperparameter of {', '.join(owners)}, not of {optimizer!r} "
                                f"(its own: {', '.join(sorted(opt_cls.HYPERPARAMETERS))}"
                                + (_no_lr(optimizer) if key == "lr" else ")"))
            close = get_close_matches(key, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PdecError(f"unknown setting {key!r}{hint} (valid for optimizer {optimizer!r}: {', '.join(valid)})")
    cfg = TrainConfig(**train).validate()
    cfg.explicit = frozenset(train)  # keys set by a file, an override or --set (not defaults)
    cfg.explicit_hyper = frozenset(hyper)   # likewise for the optimizer's hyperparameters
    return cfg, opt_cls.resolve(hyper)
