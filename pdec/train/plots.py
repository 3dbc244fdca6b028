"""Plots of runs (matplotlib, PNG): loss and error curves, and the learned solution on a 2-D slice."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ..errors import PdecWarning  # noqa: E402
from .runs import read_metrics  # noqa: E402


def _label(run_dir: Path) -> str:
    """"<optimizer> (D=…, <start>)": the seed, or where the weights and points came from when they
    were given (``pdec.train(points=…, initialize=False / init_from=…)``; ``"start": "paper"``: the
    paper's initial weights and points, benchmarks/paper.py --start paper)."""
    cfg = json.loads((run_dir / "config.json").read_text())
    settings = cfg["settings"]
    given = []
    weights = cfg.get("initial_weights", "seeded")
    if weights == "seeded":
        given.append(f"seed {settings['seed']}")
    else:
        given.append("weights given" if weights == "given" else f"weights {weights}")
    if cfg.get("points", {}).get("source") == "given":
        given.append("points given")
    start = "the paper's start" if cfg.get("start") == "paper" else ", ".join(given)
    return f"{settings['optimizer']} (D={cfg['parameters_D']}, {start})"


def _told_apart(label: str, run_dir: Path, alike: list[Path]) -> str:
    """``label`` plus the settings and hyperparameters in which ``run_dir`` differs from the other
    runs of ``alike`` (``key=value``), or its run id when they differ in none."""
    def settings(d: Path) -> dict:
        cfg = json.loads((d / "config.json").read_text())
        return {**cfg.get("settings", {}), **cfg.get("hyperparameters", {})}

    ours, others = settings(run_dir), [settings(d) for d in alike if d != run_dir]
    ignored = {"steps", "time_budget", "progress", "eval_every", "checkpoint_every"}
    differ = [k for k in ours if k not in ignored and any(o.get(k) != ours[k] for o in others)]
    return f"{label} {', '.join(f'{k}={ours[k]}' for k in differ)}" if differ else f"{label} {run_dir.name}"


def plot_curves(run_dirs: list[Path], out: Path, title: str | None = None) -> Path:
    """Loss and relative L2 against steps and wall time, runs overlaid: one 2×2 PNG (without an
    exact solution, the misfit on a data condition's held-out observations, if there is one). Runs
    with learned parameters get a third column: each parameter's value, its true value dashed."""
    records = [json.loads((r / "config.json").read_text()) for r in run_dirs]
    learned = dict.fromkeys(name for cfg in records for name in cfg.get("learned", {}))   # first run's order
    fig, axes = plt.subplots(2, 3 if learned else 2, figsize=(16 if learned else 11, 8), constrained_layout=True)
    if title:
        fig.suptitle(title)
    problems = {cfg.get("problem") for cfg in records}
    labels = []
    for run_dir, cfg in zip(run_dirs, records):
        label = _label(run_dir)
        if len(problems) > 1:   # runs of several problems: name each run's
            label = f"{cfg.get('problem')}: {label}"
        labels.append(label)
    # runs alike in all the label says are told apart by the settings in which they differ (fixed
    # against adaptive damping), or by their run ids (a rerun)
    labels = [_told_apart(label, run_dir, [d for d, other in zip(run_dirs, labels) if other == label])
              if labels.count(label) > 1 else label for label, run_dir in zip(labels, run_dirs)]
    metrics = [read_metrics(run_dir) for run_dir in run_dirs]
    error, error_label = error_curve(metrics)
    for rows, label in zip(metrics, labels):
        steps = [r["step"] for r in rows]
        times = [r["time"] for r in rows]
        for col, key in enumerate(["loss", error]):
            values = [r.get(key, float("nan")) for r in rows]
            axes[0, col].loglog([max(s, 1) for s in steps], values, label=label)
            axes[1, col].loglog([max(t, 1e-3) for t in times], values, label=label)
    for col, key in enumerate(["loss", error_label]):
        axes[0, col].set(xlabel="step", ylabel=key)
        axes[1, col].set(xlabel="time (s)", ylabel=key)
    if learned:
        _plot_learned(axes[:, 2], list(learned), metrics, records)
    for ax in axes.flat:
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _plot_learned(axes, names: list[str], metrics: list[list[dict]], records: list[dict]) -> None:
    """The learned parameters' values against steps (axes[0]) and time (axes[1]), one line per run
    and parameter, and each true value (config.json's ``learned``) as a dashed line."""
    several = len(names) > 1
    for rows, cfg in zip(metrics, records):
        for name in names:
            if f"learned_{name}" not in (rows[0] if rows else {}):
                continue
            values = [r[f"learned_{name}"] for r in rows]
            axes[0].semilogx([max(r["step"], 1) for r in rows], values)
            axes[1].semilogx([max(r["time"], 1e-3) for r in rows], values)
    for name in names:
        exact = next((cfg["learned"][name]["exact"] for cfg in records if name in cfg.get("learned", {})
                      and cfg["learned"][name]["exact"] is not None), None)
        if exact is not None:
            for ax in axes:
                ax.axhline(exact, color="k", ls="--", lw=1, label=f"true {name}" if several else "true value")
    label = ", ".join(names) if several else names[0]
    axes[0].set(xlabel="step", ylabel=f"learned {label}")
    axes[1].set(xlabel="time (s)", ylabel=f"learned {label}")
    if any(ax.get_legend_handles_labels()[0] for ax in axes):
        axes[0].legend(fontsize=8)


def error_curve(metrics: list[list[dict]]) -> tuple[str, str]:
    """The metrics column the error panels show, and its axis label: the relative L2 error when a
    run logged one, else the first data condition's held-out misfit (``heldout_rms_<name>``), else
    ``rel_l2`` (the panels stay empty). ``metrics``: each run's rows of metrics.csv."""
    rows = [r for run in metrics for r in run]
    if any(r.get("rel_l2") == r.get("rel_l2") and r.get("rel_l2") is not None for r in rows):
        return "rel_l2", "relative L2 error"
    held = list(dict.fromkeys(k for r in rows for k in r if k.startswith("heldout_rms_")))   # spec order
    if held:
        return held[0], f"held-out RMS misfit ({held[0].removeprefix('heldout_rms_')})"
    return "rel_l2", "relative L2 error"


def plot_solution(model, out: Path, resolution: int = 100, marks: torch.Tensor | None = None,
                  heldout: torch.Tensor | None = None) -> Path:
    """Learned solution, exact solution and |error| on the slice of the first two variables
    (other variables at their midpoint), like the paper's figure A6; one row per unknown. Without
    an exact solution, the learned solution alone. A problem of one variable: line plots.
    ``marks``: points (n, d) drawn on every panel as small crosses, such as the observations a
    data condition trains on, and ``heldout`` (n', d) as circles, those it holds out (on a problem
    of two variables only: other slices do not hold them).
    Returns the PNG's path."""
    exact = getattr(model, "exact_solution", None)
    names = list(model.variables)   # the generated module's own variables and box
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    if len(names) == 1:
        return _plot_line(model, exact, out, resolution, dtype, device)
    (a0, a1), (b0, b1) = (model.domain[v] for v in names[:2])
    mid = [sum(model.domain[v]) / 2 for v in names]
    s, t = torch.meshgrid(torch.linspace(a0, a1, resolution, dtype=dtype),
                          torch.linspace(b0, b1, resolution, dtype=dtype), indexing="ij")
    X = torch.tensor(mid, dtype=dtype).repeat(resolution * resolution, 1)
    X[:, 0], X[:, 1] = s.reshape(-1), t.reshape(-1)
    X = X.to(device)
    with torch.no_grad():
        U = model(X).cpu()                          # (R², m): one row of panels per unknown
        Ue = exact(X).cpu() if exact is not None else None
    U, Ue = _blank_outside(model, X, U, Ue)
    given = {c: j for j, c in enumerate(model.exact_columns())} if exact is not None else {}
    m, panels = U.shape[1], 3 if given else 1
    fig, axes = plt.subplots(m, panels, figsize=(14 if panels == 3 else 5.5, 4 * m), constrained_layout=True,
                             squeeze=False)
    for k, unknown in enumerate(model.unknowns):
        u = U[:, k]
        if k in given:
            ue = Ue[:, given[k]]
            shown = ([u, ue, (u - ue).abs()], ["learned", "exact", "|error|"])
        else:
            shown = ([u], ["learned (no exact solution in the spec)"])
            for ax in axes[k][1:]:
                ax.set_axis_off()
        for ax, data, title in zip(axes[k], *shown):
            im = ax.pcolormesh(s.numpy(), t.numpy(), data.reshape(resolution, resolution).numpy(),
                               shading="auto")
            fig.colorbar(im, ax=ax)
            ax.set(title=f"{unknown}: {title}", xlabel=names[0], ylabel=names[1])
            shown = [(P, style, text) for P, style, text in ((marks, "x", "observed, trained on"),
                                                             (heldout, "o", "observed, held out"))
                     if P is not None and len(names) == 2]
            for P, style, text in shown:
                ax.plot(P[:, 0].cpu().numpy(), P[:, 1].cpu().numpy(), style, color="white", markersize=3,
                        alpha=0.8, label=text, **({"fillstyle": "none"} if style == "o" else {}))
            if shown:
                ax.legend(loc="upper right", fontsize=7, framealpha=0.5)
            if model.time not in names[:2] and 0.25 <= (a1 - a0) / (b1 - b0) <= 4:
                ax.set_aspect("equal")   # two space variables of like extent: a disk looks round
    if len(names) > 2:
        fig.suptitle("slice " + ", ".join(f"{v} = {c:g}" for v, c in zip(names[2:], mid[2:])))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _blank_outside(model, X: torch.Tensor, U: torch.Tensor, Ue: torch.Tensor | None):
    """U (R, m) and Ue with NaN rows where X (R, d) is outside the domain (a spec's ``where``),
    so the plots leave those points blank."""
    outside = ~model.inside(X).cpu()
    if not outside.any():
        return U, Ue
    if outside.all():
        warnings.warn("no point of the plotted grid lies in the domain (a domain thinner than the grid's "
                      "spacing, or away from the slice): the solution panels are blank", PdecWarning, stacklevel=3)
    U = U.masked_fill(outside[:, None], float("nan"))
    return U, (Ue.masked_fill(outside[:, None], float("nan")) if Ue is not None else None)


def _plot_line(model, exact, out: Path, resolution: int, dtype, device) -> Path:
    """A problem of one variable: the learned (and exact) solution, and |error|, against it."""
    (name,) = model.variables
    a, b = model.domain[name]
    X = torch.linspace(a, b, 10 * resolution, dtype=dtype).reshape(-1, 1)
    with torch.no_grad():
        U = model(X.to(device)).cpu()
        Ue = exact(X.to(device)).cpu() if exact is not None else None
    U, Ue = _blank_outside(model, X, U, Ue)
    given = {c: j for j, c in enumerate(model.exact_columns())} if exact is not None else {}
    panels = 2 if given else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), constrained_layout=True, squeeze=False)
    x = X[:, 0].numpy()
    for k, unknown in enumerate(model.unknowns):
        axes[0, 0].plot(x, U[:, k].numpy(), label=f"{unknown} learned")
        if k in given:
            axes[0, 0].plot(x, Ue[:, given[k]].numpy(), "--", label=f"{unknown} exact")
            axes[0, 1].semilogy(x, (U[:, k] - Ue[:, given[k]]).abs().numpy(), label=str(unknown))
    axes[0, 0].set(xlabel=name, title="solution")
    axes[0, 0].legend(fontsize=8)
    if given:
        axes[0, 1].set(xlabel=name, title="|error|")
        axes[0, 1].legend(fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
