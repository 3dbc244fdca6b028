"""Paper rerun: the four small problems of Dangel, Müller, Zeinhofer (NeurIPS 2024), all 8 optimizers.

Problems (settings and each optimizer's best hyperparameters from configs/, see their headers):

    poisson2d  2d Poisson,  2-64-1 (D = 257), 900 / 120 fixed points       configs/poisson2d-257.toml
    heat1d     1+1d heat,   2-64-1 (D = 257), 900 / 120 fixed points       configs/heat1d-257.toml
    poisson5d  5d Poisson,  5-64-1 (D = 449), 3 000 / 500, re-sampled      configs/poisson5d-449.toml
    heat4d     4+1d heat,   5-64-1 (D = 449), 3 000 / 500, re-sampled      configs/heat4d-449.toml

(re-sampled: a new batch every step, KFAC and KFAC* every 100 steps, as in the paper.)
Each run gets --time-budget seconds of optimisation (evaluation excluded; default 120 s, the
paper's reference numbers below are its errors at 120 s on a GPU). One seed per row; with
--seeds 3, 2d Poisson KFAC and Adam run seeds 0, 1, 2 and the table shows their median.

Every finished row is appended at once to --results (JSON lines, with date, machine and command),
so an interrupted benchmark keeps what it measured; rows already there (same problem, optimizer,
seed, budget, device, --set and --start) are skipped unless --rerun, so it resumes; the key
leaves out pdec's defaults, so after a default changes, --rerun the cells it touches (the table
shows the latest row of each key). Each run has its own
directory under --runs (default runs/paper), recorded in the row. At the end it prints absolute
RMS and relative L2 errors next to the paper's and checks the targets:

  1. pdec's absolute RMS error is at most the paper's for KFAC, KFAC*, ENGD (full and layer-wise)
     and Adam on every problem;
  2. the best second-order method (KFAC, KFAC*, ENGD, ENGD layer-wise, Hessian-free) is at least
     30x below Adam on every problem.

    python benchmarks/paper.py                                   # 4 x 8 runs of 120 s (≈ 65 min)
    python benchmarks/paper.py --problem poisson2d --optimizers kfac,adam --seeds 3
    python benchmarks/paper.py --table-only                      # table from the results file
    python benchmarks/paper.py --table-only --plots docs         # and docs/paper-<problem>.png

--plots DIR draws, per problem, the seed-0 runs of the table's cells overlaid (loss and relative
L2 error against steps and wall time, `pdec plot`), from the run directories the rows name.

--start paper starts every run where the paper's own run started instead of from pdec's seed:
its initial weights and its training and evaluation points, drawn as its training script draws
them (tests/paper_runs.py; data_seed 0, model_seed 1, float32 draws and targets), re-drawn on
the same steps. The optimizer, its hyperparameters and the clock are pdec's, as above; the rows
carry "start": "paper" and the table shows them with --start paper. This compares with the
paper's one run on equal terms: the same draw of initial weights and points.

    python benchmarks/paper.py --start paper --optimizers kfac,kfac-star,engd,engd-layerwise,adam
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

import pdec
from pdec.train.config import resolve_config
from pdec.train.runs import write_json

ROOT = Path(__file__).resolve().parents[1]

PROBLEMS = {  # name -> (label, spec, config)
    "poisson2d": ("2d Poisson, D = 257", "specs/poisson2d.py", "configs/poisson2d-257.toml"),
    "heat1d": ("1+1d heat, D = 257", "specs/heat1d.py", "configs/heat1d-257.toml"),
    "poisson5d": ("5d Poisson, D = 449", "specs/poisson5d.py", "configs/poisson5d-449.toml"),
    "heat4d": ("4+1d heat, D = 449", "specs/heat4d.py", "configs/heat4d-449.toml"),
}
OPTIMIZERS = ["kfac", "kfac-star", "engd", "engd-layerwise", "hessian-free", "adam", "sgd", "lbfgs"]
SECOND_ORDER = ["kfac", "kfac-star", "engd", "engd-layerwise", "hessian-free"]
AT_MOST_PAPER = ["kfac", "kfac-star", "engd", "engd-layerwise", "adam"]
MULTI_SEED = {("poisson2d", "kfac"), ("poisson2d", "adam")}  # median of --seeds seeds
FACTOR_BELOW_ADAM = 30.0
PAPER_BUDGET = 120.0

# The paper's absolute RMS errors after 120 s (RTX 6000 GPU), per problem and optimizer.
PAPER_120S = {
    "poisson2d": {"kfac": 9.2e-6, "kfac-star": 5.5e-6, "engd": 1.8e-2, "engd-layerwise": 5.8e-7,
                  "hessian-free": 3.6e-6, "adam": 7.5e-4, "sgd": 1.6e-4, "lbfgs": 1.8e-4},
    "heat1d": {"kfac": 2.9e-4, "kfac-star": 2.5e-5, "engd": 4.3e-7, "engd-layerwise": 3.0e-3,
               "hessian-free": 1.3e-5, "adam": 6.0e-4, "sgd": 1.4e-3, "lbfgs": 2.7e-4},
    "poisson5d": {"kfac": 8.8e-3, "kfac-star": 2.0e-4, "engd": 5.5e-7, "engd-layerwise": 2.2e-5,
                  "hessian-free": 5.2e-4, "adam": 7.1e-2, "sgd": 3.7e-2, "lbfgs": 1.1e-2},
    "heat4d": {"kfac": 9.4e-4, "kfac-star": 2.8e-4, "engd": 6.1e-6, "engd-layerwise": 7.5e-5,
               "hessian-free": 3.1e-4, "adam": 8.5e-3, "sgd": 5.6e-2, "lbfgs": 3.1e-3},
}


# ----------------------------------------------------------------------------------- helpers
def machine_info(device: str) -> dict:
    info = {"processor": platform.processor(), "machine": platform.machine(), "platform": platform.platform(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "device": device}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


def row_key(row: dict) -> tuple:
    return (row["problem"], row["optimizer"], int(row["seed"]), float(row["time_budget"]),
            row.get("device", "cpu"), tuple(row.get("sets", [])), row.get("start", "pdec"))


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"warning: {path}:{n}: not JSON, skipped", file=sys.stderr)
    return rows


def _run_dirs(root: Path) -> set[Path]:
    return set(root.iterdir()) if root.is_dir() else set()


def _paper_start(problem: str, compiled, resample_every: int) -> dict:
    """pdec.train's arguments for a run from the paper's own start (tests/paper_runs.py): its
    initial weights (copied into the model), its training points and re-draws, its evaluation set."""
    sys.path.insert(0, str(ROOT / "tests"))
    from paper_runs import paper_setup

    setup = paper_setup(problem, resample_every, compiled.model)
    # the k-th batch is the one the paper's script draws at step k·resample_every
    points = (lambda k: setup.batch(k * resample_every)) if resample_every else setup.batch(0)
    return {"points": points, "eval_points": setup.X_eval, "initialize": False}


def run_one(problem: str, optimizer: str, seed: int, args, start: str = "pdec") -> dict:
    """Train one (problem, optimizer, seed) for the time budget; return its result row.

    ``start="paper"``: from the paper's initial weights and points instead of pdec's seed (the
    run directory then goes under ``<runs>/paper-start/``)."""
    label, spec, config = PROBLEMS[problem]
    config = ROOT / config
    overrides = {"optimizer": optimizer, "time_budget": args.time_budget, "steps": 0, "seed": seed,
                 "device": args.device, "progress": False}
    cfg, hyper = resolve_config(overrides, config, args.set)
    if start == "paper" and args.device != "cpu":
        raise SystemExit("--start paper runs on the CPU only (the paper's draws are made there)")
    loaded = pdec.load_spec(ROOT / spec)
    run_root = Path(args.runs) / ("paper-start" if start == "paper" else "")
    before = _run_dirs(run_root / loaded.name)
    row = {"problem": problem, "label": label, "optimizer": optimizer, "seed": seed,
           "time_budget": args.time_budget, "device": args.device, "sets": list(args.set),
           "config": str(Path(config).relative_to(ROOT)), "hidden": list(cfg.hidden),
           "n_interior": cfg.n_interior, "n_condition": cfg.n_condition, "n_eval": cfg.n_eval,
           "resample_every": cfg.resample_every, "hyper": hyper}
    if start == "paper":
        row["start"] = "paper"
    t0 = time.perf_counter()
    try:
        compiled = pdec.compile(loaded, hidden=cfg.hidden, activation=cfg.activation, mode=cfg.mode,
                                dtype=getattr(torch, cfg.dtype), device=cfg.device, write=False)
        row["D"] = sum(p.numel() for p in compiled.model.parameters())
        given = _paper_start(problem, compiled, cfg.resample_every) if start == "paper" else {}
        run = pdec.train(compiled, config_file=config, sets=args.set, save=True, run_root=run_root,
                         **given, **overrides)
        row.update(status=run.status, steps=run.steps, time=run.elapsed, run_dir=str(run.run_dir), hyper=run.hyper,
                   **{k: run.final.get(k) for k in ("loss", "rel_l2", "abs_rms")})
    except pdec.TrainingDiverged as exc:  # the run directory holds the last finite state's metrics
        new = sorted(_run_dirs(run_root / loaded.name) - before)
        summary = json.loads((new[-1] / "summary.json").read_text()) if new else {}
        row.update(status="diverged", message=str(exc), steps=summary.get("steps", 0),
                   time=summary.get("time", 0.0), run_dir=str(new[-1]) if new else None,
                   **{k: summary.get(k) for k in ("loss", "rel_l2", "abs_rms")})
    except pdec.PdecError as exc:
        new = sorted(_run_dirs(run_root / loaded.name) - before)
        row.update(status="error", message=str(exc), steps=0, time=0.0,
                   run_dir=str(new[-1]) if new else None, loss=None, rel_l2=None, abs_rms=None)
    if start == "paper" and row.get("run_dir"):   # say so in the record (and in `pdec plot`'s legend)
        record = Path(row["run_dir"]) / "config.json"
        write_json(record, {**json.loads(record.read_text()), "start": "paper"})
    row["wall"] = time.perf_counter() - t0
    row["ms_per_step"] = 1e3 * row["time"] / row["steps"] if row.get("steps") else None
    return row


def _fmt(x, spec=".2e", width=9) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return f"{'-':>{width}s}"
    return f"{x:{width}{spec}}"


def summarize(rows: list[dict], budget: float, problems: list[str], optimizers: list[str],
              seeds: int, sets: list[str] | None = None, device: str = "cpu", start: str = "pdec") -> dict:
    """(problem, optimizer) -> aggregated cell for rows at ``budget`` on ``device`` run with exactly
    the --set overrides ``sets`` (default: none, the configs' values) from ``start`` ("pdec": pdec's
    seeds; "paper": the paper's initial weights and points); the latest row per seed wins."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        same = (float(row.get("time_budget", -1)) == float(budget) and row.get("device", "cpu") == device
                and list(row.get("sets", [])) == list(sets or []) and row.get("start", "pdec") == start)
        if same:
            latest[(row["problem"], row["optimizer"], int(row["seed"]))] = row
    cells = {}
    for p in problems:
        for o in optimizers:
            wanted = range(seeds) if (p, o) in MULTI_SEED and start == "pdec" else range(1)
            runs = [latest[(p, o, s)] for s in wanted if (p, o, s) in latest]
            if not runs:
                continue
            ok = [r for r in runs if r.get("abs_rms") is not None]
            med = (lambda k: statistics.median(r[k] for r in ok)) if ok else (lambda k: None)
            steps = [r["steps"] for r in runs if r.get("steps")]
            cells[(p, o)] = {"abs_rms": med("abs_rms"), "rel_l2": med("rel_l2"), "n": len(runs),
                             "steps": int(statistics.median(steps)) if steps else 0,
                             "ms_per_step": statistics.median(r["ms_per_step"] for r in runs if r.get("ms_per_step"))
                             if any(r.get("ms_per_step") for r in runs) else None,
                             "status": ",".join(sorted({r["status"] for r in runs}))}
    return cells


def print_table(rows: list[dict], budget: float, problems: list[str], optimizers: list[str], seeds: int,
                sets: list[str] | None = None, device: str = "cpu", start: str = "pdec") -> bool:
    cells = summarize(rows, budget, problems, optimizers, seeds, sets, device, start)
    origin = "from the paper's own start" if start == "paper" else "from pdec's seeds"
    print(f"\nPaper rerun at {budget:g} s per run, {origin} (paper: abs RMS at {PAPER_BUDGET:g} s on an "
          f"RTX 6000 GPU)")
    if budget != PAPER_BUDGET:
        print(f"  note: budget {budget:g} s is not the paper's {PAPER_BUDGET:g} s; the targets are only indicative")
    head = (f"{'problem':20s} {'optimizer':15s} {'seeds':>5s} {'steps':>7s} {'ms/step':>8s} "
            f"{'rel L2':>9s} {'abs RMS':>9s} {'paper':>9s} {'ratio':>7s}  target")
    print(head)
    print("-" * len(head))
    all_met, lines = True, []
    for p in problems:
        label = PROBLEMS[p][0]
        for o in optimizers:
            c = cells.get((p, o))
            ref = PAPER_120S[p][o]
            if c is None:
                print(f"{label:20s} {o:15s} {'':>5s} {'(no result)':>7s}")
                if o in AT_MOST_PAPER:
                    all_met = False
                continue
            rms = c["abs_rms"]
            ratio = rms / ref if rms is not None else None
            if o in AT_MOST_PAPER:
                met = rms is not None and rms <= ref
                all_met &= met
                mark = "≤ paper: " + ("yes" if met else "NO")
            else:
                mark = ""
            status = "" if c["status"] == "completed" else f" [{c['status']}]"
            print(f"{label:20s} {o:15s} {c['n']:5d} {c['steps']:7d} {_fmt(c['ms_per_step'], '.2f', 8)} "
                  f"{_fmt(c['rel_l2'])} {_fmt(rms)} {_fmt(ref)} {_fmt(ratio, '.3g', 7)}  {mark}{status}")
        # target 2: best second-order method ≥ 30x below Adam
        second = [(cells[(p, o)]["abs_rms"], o) for o in SECOND_ORDER
                  if (p, o) in cells and cells[(p, o)]["abs_rms"] is not None]
        adam = cells.get((p, "adam"), {}).get("abs_rms")
        if second and adam is not None:
            best, who = min(second)
            factor = adam / best if best > 0 else math.inf
            met = factor >= FACTOR_BELOW_ADAM
            lines.append(f"  {label:20s} best second-order {who} {best:.2e}, Adam {adam:.2e}: "
                         f"{factor:.1f}x below Adam ({'yes' if met else 'NO'}, need ≥ {FACTOR_BELOW_ADAM:g}x)")
        else:
            met = False
            lines.append(f"  {label:20s} best second-order vs Adam: missing results")
        all_met &= met
    print(f"\nTarget 2 (best second-order method ≥ {FACTOR_BELOW_ADAM:g}x below Adam, abs RMS):")
    print("\n".join(lines))
    print(f"\nTarget 1 (abs RMS ≤ paper for {', '.join(AT_MOST_PAPER)}) and target 2 on every problem: "
          f"{'MET' if all_met else 'NOT MET'}")
    return all_met


# -------------------------------------------------------------------------------------- main
def _names(text: str, known: list[str], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in known]
    if bad:
        raise SystemExit(f"unknown {what} {', '.join(bad)} (known: {', '.join(known)})")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--problem", default=",".join(PROBLEMS), help="comma-separated: " + ", ".join(PROBLEMS))
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma-separated (default: all 8)")
    parser.add_argument("--time-budget", type=float, default=PAPER_BUDGET,
                        help="seconds of optimisation per run (default 120); also selects the table's rows")
    parser.add_argument("--seeds", type=int, default=1,
                        help="seeds 0..K-1 for 2d Poisson KFAC and Adam (median in the table); others: seed 0")
    parser.add_argument("--every-cell-seeds", action="store_true",
                        help="run --seeds seeds for every cell (the table still shows seed 0 outside 2d "
                             "Poisson KFAC and Adam; the rows keep every seed)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "paper.jsonl")
    parser.add_argument("--runs", type=Path, default=Path("runs/paper"), help="run directories root")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting in every run (recorded; part of a row's identity)")
    parser.add_argument("--rerun", action="store_true", help="run rows that are already in the results file")
    parser.add_argument("--table-only", action="store_true", help="print the table from the results file")
    parser.add_argument("--start", choices=["pdec", "paper"], default="pdec",
                        help="pdec: initial weights and points from pdec's seeds (default); paper: the "
                             "paper's own start (its initial weights and points); one run per cell")
    parser.add_argument("--plots", type=Path, default=None, metavar="DIR",
                        help="also write DIR/paper-<problem>.png from the table's seed-0 run directories")
    args = parser.parse_args(argv)
    problems = _names(args.problem, list(PROBLEMS), "problem")
    optimizers = _names(args.optimizers, OPTIMIZERS, "optimizer")
    if args.seeds < 1:
        raise SystemExit("--seeds must be ≥ 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available to torch")

    if not args.table_only:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        done = {row_key(r) for r in read_rows(args.results) if r.get("status") in ("completed", "diverged")}
        machine = machine_info(args.device)
        command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
        for p in problems:
            for o in optimizers:
                multi = ((p, o) in MULTI_SEED or args.every_cell_seeds) and args.start == "pdec"
                for seed in (range(args.seeds) if multi else range(1)):
                    key = (p, o, seed, float(args.time_budget), args.device, tuple(args.set), args.start)
                    if key in done and not args.rerun:
                        print(f"{p:10s} {o:15s} seed {seed}: already in {args.results}, skipped (--rerun to redo)")
                        continue
                    row = run_one(p, o, seed, args, args.start)
                    row.update(date=time.strftime("%Y-%m-%d %H:%M:%S"), machine=machine, command=command,
                               pdec=pdec.__version__)
                    with args.results.open("a") as f:
                        f.write(json.dumps(row, default=str) + "\n")
                    extra = f" ({row['message']})" if row.get("message") else ""
                    print(f"{p:10s} {o:15s} seed {seed}: {row['status']}, {row['steps']} steps in {row['time']:.1f} s, "
                          f"rel L2 {_fmt(row['rel_l2'], '.2e', 0)}, abs RMS {_fmt(row['abs_rms'], '.2e', 0)}"
                          f"{extra} -> {row['run_dir']}", flush=True)
                    if row["status"] == "interrupted":  # SIGINT/SIGTERM: stop the whole rerun
                        print("interrupted: stopping (completed rows are kept; rerun to resume)")
                        return 130

    rows = read_rows(args.results)
    if not rows:
        print(f"no results in {args.results}")
        return 1
    budgets = sorted({float(r.get("time_budget", -1)) for r in rows})
    if float(args.time_budget) not in budgets:
        print(f"no rows at --time-budget {args.time_budget:g} s in {args.results}; "
              f"budgets there: {', '.join(f'{b:g}' for b in budgets)} s")
    print_table(rows, args.time_budget, problems, optimizers, args.seeds, args.set, args.device, args.start)
    if args.plots is not None:
        write_plots(rows, args.time_budget, problems, optimizers, args.set, args.device, args.plots, args.start)
    return 0


def write_plots(rows: list[dict], budget: float, problems: list[str], optimizers: list[str],
                sets: list[str], device: str, out_dir: Path, start: str = "pdec") -> None:
    """Per problem, the seed-0 runs of the table's cells overlaid in DIR/paper-<problem>.png
    (DIR/paper-start-<problem>.png for the runs from the paper's start)."""
    from pdec.train.plots import plot_curves

    latest = {}
    for row in rows:
        if (float(row.get("time_budget", -1)) == float(budget) and row.get("device", "cpu") == device
                and list(row.get("sets", [])) == list(sets) and int(row["seed"]) == 0 and row.get("run_dir")
                and row.get("start", "pdec") == start):
            latest[(row["problem"], row["optimizer"])] = Path(row["run_dir"])
    for p in problems:
        dirs = [latest[(p, o)] for o in optimizers if (p, o) in latest]
        missing = [d for d in dirs if not (d / "metrics.csv").exists()]
        if missing:
            print(f"{p}: run directories not found ({', '.join(map(str, missing))}); no plot")
            continue
        if dirs:
            origin = "the paper's start" if start == "paper" else "seed 0"
            name = f"paper-start-{p}.png" if start == "paper" else f"paper-{p}.png"
            title = f"{PROBLEMS[p][0]}: {origin}, {budget:g} s per run on {device} (benchmarks/paper.py)"
            print(f"wrote {plot_curves(dirs, out_dir / name, title)}")


if __name__ == "__main__":
    raise SystemExit(main())
