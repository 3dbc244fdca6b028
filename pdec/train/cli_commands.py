"""``pdec train``, ``pdec plot`` and ``pdec compare`` (registered by :mod:`pdec.cli`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ..errors import PdecError


def add_training_commands(sub) -> None:
    """Add the training sub-commands to the CLI's sub-parser collection."""
    p = sub.add_parser("train", help="(re)generate the module if needed, then train it",
                       description="Settings: defaults -> --config file -> flags -> --set key=value. "
                                   "generated/<name>.py is rewritten when it is out of date; with other "
                                   "widths, activation or mode than that file's, the module stays in "
                                   "memory and the run directory keeps it as module.py.")
    p.add_argument("spec", nargs="?", type=Path, help="spec file (omit with --resume)")
    p.add_argument("--optimizer", help="kfac (default), kfac-star, engd, engd-layerwise, hessian-free, "
                                       "adam, sgd, lbfgs")
    p.add_argument("--steps", type=int, help="number of steps (with --resume: in all, counted from the "
                                             "run's start)")
    p.add_argument("--time-budget", type=float, help="seconds of optimisation, evaluation excluded (with "
                                                     "--resume: in all)")
    p.add_argument("--device", help="cpu (default) or cuda")
    p.add_argument("--dtype", choices=["float64", "float32"], help="default float64")
    p.add_argument("--seed", type=int, help="controls initialisation and every sampler")
    _add_network_flags(p)
    p.add_argument("--config", type=Path, help="TOML file of settings")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting or hyperparameter (repeatable)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="runs root (default runs/)")
    p.add_argument("--out", type=Path, default=Path("generated"),
                   help="where generated/<name>.py is kept when it is this spec's module (default generated/)")
    p.add_argument("--resume", type=Path, help="continue or extend the run in this directory (a diverged run is refused: use --init-from)")
    p.add_argument("--init-from", type=Path, metavar="RUN_DIR",
                   help="a new run that starts from the weights of RUN_DIR's last checkpoint (same widths), "
                        "e.g. KFAC after an Adam run")
    p.add_argument("--no-progress", action="store_true", help="no progress output (a tqdm bar on a terminal, a line every 10 s in a log file)")
    p.add_argument("--torch-compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the loss and the line search's trial pass (faster steps after a "
                        "compile of seconds to tens of seconds at the first steps; needs a C++ compiler on a "
                        "CPU); with --resume, switches it for the rest of the run")
    _add_threads_option(p)
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data parallel over N processes on this machine (torch.distributed: gloo on CPU, "
                        "NCCL on GPUs; the same as torchrun --nproc-per-node N -m pdec train ...)")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("settings", help="the settings and hyperparameters --set and a config file take, "
                                        "with their defaults")
    p.add_argument("--optimizer", help="only this optimizer's hyperparameters (default: every optimizer's)")
    p.set_defaults(handler=cmd_settings)

    p = sub.add_parser("plot", help="loss and error curves of runs (PNG), and the learned solution")
    p.add_argument("runs", nargs="+", type=Path, help="run directories (runs/<spec>/<run-id>); several are overlaid")
    p.add_argument("--out", type=Path, help="PNG path (default: <first run>/curves.png)")
    p.set_defaults(handler=cmd_plot)

    p = sub.add_parser("compare", help="train several optimizers at the same budget; table and plot")
    p.add_argument("spec", type=Path, help="spec file")
    p.add_argument("--optimizers", default="kfac,kfac-star,engd,hessian-free,lbfgs,adam,sgd",
                   help="comma-separated optimizers, trained one after the other (default: %(default)s)")
    p.add_argument("--time-budget", type=float, default=60.0,
                   help="seconds of optimisation per optimizer (default: %(default)s)")
    p.add_argument("--steps", type=int, default=0, help="step limit per optimizer (0: budget only)")
    p.add_argument("--seed", type=int, default=0, help="the same seed for every optimizer (default 0)")
    _add_network_flags(p)
    p.add_argument("--config", type=Path, help="TOML file of settings, with [optimizer] tables")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting (repeatable); an optimizer's hyperparameter applies to the "
                        "optimizers that have it")
    p.add_argument("--runs", type=Path, default=Path("runs"),
                   help="runs root (default runs/); the plot goes to <runs>/<spec name>/compare-<time>.png")
    p.add_argument("--out", type=Path, default=Path("generated"),
                   help="where generated/<name>.py is kept when it is this spec's module (default generated/)")
    p.add_argument("--device", default=None, help="cpu (default) or cuda")
    p.add_argument("--torch-compile", action="store_true",
                   help="torch.compile the loss and the line search's trial pass, for every optimizer "
                        "(each run compiles within its own time budget)")
    _add_threads_option(p)
    p.set_defaults(handler=cmd_compare)


def _add_network_flags(p) -> None:
    """--hidden, --activation, --mode: the settings of the same names (as for pdec compile)."""
    p.add_argument("--hidden", metavar="W[,W…]", help="hidden widths, comma-separated (default 64; the "
                                                      "setting hidden)")
    p.add_argument("--activation", help="tanh (default), sin, sigmoid, softplus, or a SymPy expression of z")
    p.add_argument("--mode", choices=["auto", "laplacian", "collapsed", "taylor"],
                   help="propagation mode of the interior residual (default auto)")


def _add_threads_option(p) -> None:
    """--threads N, for train and compare."""
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads of torch (default: torch's, one per core); on a shared or busy machine "
                        "--threads 1 avoids threads waiting on each other, which can slow a small net "
                        "tenfold. Results differ in the last digits between thread counts")


def _compile_for(spec: Path, cfg, device=None, write="own", out_dir: Path = Path("generated")):
    import torch

    from .. import compile as compile_problem, load_spec

    # generated/<name>.py is rewritten only when it is this module out of date; with other widths,
    # activation or mode (or another spec of the same name) the module stays in memory and the
    # run directory keeps its text (module.py)
    return compile_problem(load_spec(spec), hidden=cfg.hidden, activation=cfg.activation, mode=cfg.mode,
                           dtype=getattr(torch, cfg.dtype), device=device or _device(cfg.device),
                           write=write, out_dir=out_dir)


def _resolve_for_spec(spec, overrides: dict, config, sets):
    """``resolve_config`` of the command line's settings; a ``--set`` key that is one of the spec's
    parameters gets an error that says so (settings are the run's, parameters the spec's)."""
    from .config import resolve_config

    try:
        return resolve_config(overrides, config, sets)
    except PdecError:
        keys = [item.split("=", 1)[0].strip() for item in sets or []]
        try:
            from .. import load_spec

            names = {str(k) for k in load_spec(spec).parameters}
        except Exception:   # the spec's own errors come after the settings' error
            names = set()
        hit = next((k for k in keys if k in names), None)
        if hit is None:
            raise
        raise PdecError(f"{hit} is a parameter of {spec}, not a training setting: set it in the spec "
                        f"(parameters={{{hit}: ...}}), or from Python, "
                        f"dataclasses.replace(pdec.load_spec(...), parameters={{...}}, name=...)") from None


def _module_note(compiled, out_dir: Path = Path("generated")) -> str:
    """Where the trained module's text is, for the line printed before training."""
    if compiled.source_path is not None:
        return str(compiled.source_path)
    from ..compiler import is_generated_module

    path = out_dir / f"{compiled.problem.name}.py"
    why = ("was written for other options or another spec" if is_generated_module(path)
           else "is not a module pdec generated")
    return f"module.py in the run directory ({path.as_posix()} {why}; left as is)"


def _device(name: str):
    from ..compiler import torch_device

    return torch_device(name)


def _rank_device(name: str, comm):
    """The device a rank trains on: GPU LOCAL_RANK for a data-parallel CUDA job."""
    if comm.distributed and name.startswith("cuda"):
        return _device(f"cuda:{comm.local_rank}")
    return _device(name)


def _flag_overrides(args) -> dict:
    out = {"optimizer": args.optimizer, "steps": args.steps, "time_budget": args.time_budget,
           "device": args.device, "dtype": args.dtype, "seed": args.seed, "hidden": args.hidden,
           "activation": args.activation, "mode": args.mode}
    if getattr(args, "no_progress", False):
        out["progress"] = False
    if getattr(args, "torch_compile", None) is not None:
        out["torch_compile"] = args.torch_compile
    return {k: v for k, v in out.items() if v is not None}


def _print_result(run) -> None:
    f = run.final
    parts = [f"{run.status} after {run.steps} steps, {run.elapsed:.1f} s", f"loss {f.get('loss', float('nan')):.3e}"]
    if "rel_l2" in f:
        rel = (f"relative L2 {f['rel_l2']:.3e}" if f["rel_l2"] == f["rel_l2"] or f["abs_rms"] != f["abs_rms"]
               else "relative L2 undefined (the exact solution is 0 on the evaluation points)")
        model = run.model
        per = [u for u in model.unknowns if f"rel_l2_{u}" in f] if model is not None else []
        if per:   # a system: each unknown's own relative error (undefined where its u* is 0)
            rel += " (" + ", ".join(f"{u} {f[f'rel_l2_{u}']:.2e}" if f[f"rel_l2_{u}"] == f[f"rel_l2_{u}"]
                                    else f"{u} undefined" for u in per) + ")"
        if model is not None and len(model.exact_columns()) < len(model.unknowns):
            rel += f" of {', '.join(model.unknowns[c] for c in model.exact_columns())}"
        parts += [rel, f"absolute RMS {f['abs_rms']:.3e}"]
    parts += [f"held-out RMS misfit of {key.removeprefix('heldout_rms_')} {value:.3e}"
              for key, value in f.items() if key.startswith("heldout_rms_")]
    for name in getattr(run.model, "learned", {}):   # each learned parameter, and its distance to the truth
        err = f.get(f"learned_err_{name}")
        parts.append(f"learned {name} = {f[f'learned_{name}']:.6g}"
                     + (f" (error {err:.2e})" if err is not None else ""))
    print("; ".join(parts))
    if run.run_dir is not None:
        print(f"run directory: {run.run_dir}")


def _set_threads(n: int | None) -> None:
    """--threads N: torch's CPU thread count for this process (config.json records it)."""
    if n is None:
        return
    if n < 1:
        raise PdecError(f"--threads {n}: give at least 1 thread")
    import torch

    torch.set_num_threads(n)


def cmd_train(args) -> int:
    from ..parallel.comm import launched_by_torchrun

    _set_threads(args.threads)

    if args.nproc < 1:
        raise PdecError(f"--nproc must be ≥ 1, got {args.nproc}")
    if args.nproc > 1 and not launched_by_torchrun():
        return _launch_ranks(args)
    return _train_here(args)


def _launch_ranks(args) -> int:
    """Check the command once here (errors print once, no rank starts), compile the module, then
    start ``args.nproc`` ranks running the same command."""
    from ..parallel.launch import launch, strip_nproc
    from .runs import CHECKPOINT

    if args.resume is not None and args.init_from is not None:
        raise PdecError("--resume continues a run; --init-from starts a new one from a run's weights: give one")
    if args.init_from is not None and not (args.init_from / CHECKPOINT).is_file():
        raise PdecError(f"{args.init_from}: no {CHECKPOINT} to start from")
    if args.resume is not None:
        if not (args.resume / "config.json").is_file():
            raise PdecError(f"{args.resume}: not a run directory (no config.json)")
        from .loop import check_resume_request

        saved = json.loads((args.resume / "config.json").read_text())
        check_resume_request(args.resume, saved["settings"], args.optimizer, _flag_overrides(args), args.config,
                             args.set)   # every rank would refuse alike: refuse once, here
    else:
        if args.spec is None:
            raise PdecError("name a spec file (or --resume RUN_DIR)")
        cfg, _ = _resolve_for_spec(args.spec, _flag_overrides(args), args.config, args.set)
        if cfg.device.startswith("cuda"):
            import torch

            available = torch.cuda.device_count()
            if args.nproc > available:
                raise PdecError(f"--nproc {args.nproc} with --device cuda needs {args.nproc} GPUs; "
                                f"torch sees {available}")
        compiled = _compile_for(args.spec, cfg, device="cpu", out_dir=args.out)  # writes generated/ once
        print(f"{args.spec} -> {_module_note(compiled, args.out)} (mode {compiled.plan.mode}, S = {compiled.plan.S}); "
              f"training with {cfg.optimizer} on {cfg.device}, {cfg.dtype}, {args.nproc} ranks")
    sys.stdout.flush()
    return launch(args.nproc, strip_nproc(args.argv))


def _train_here(args) -> int:
    from ..parallel import from_environment
    from .config import resolve_config
    from .loop import TrainingDiverged, train

    if args.resume is not None:
        cfg_file = args.resume / "config.json"
        if not cfg_file.is_file():
            raise PdecError(f"{args.resume}: not a run directory (no config.json)")
        saved = json.loads(cfg_file.read_text())
        if not saved.get("spec"):
            raise PdecError(f"{args.resume} trained a problem built in Python (no spec file): resume it from "
                            f"Python with pdec.train(compiled, resume=...)")
        if args.spec is not None and args.spec.resolve() != Path(saved["spec"]).resolve():
            raise PdecError(f"{args.resume} trained {saved['spec']}, not {args.spec}: resume it without the "
                            f"spec, or start a new run of {args.spec} (--init-from {args.resume})")
        if not Path(saved["spec"]).is_file():
            raise PdecError(f"{args.resume} trained the spec {saved['spec']} (the path in its config.json), "
                            f"which is not there any more: put the spec back there to resume")
        cfg, _ = resolve_config(saved["settings"])
        comm = from_environment(cfg.device)
        # in memory: the run is the record of its module, and a resume writes no generated/ file
        # (the run may have compiled into another --out, or the spec may have changed, which train() refuses)
        compiled = _compile_for(Path(saved["spec"]), cfg, _rank_device(cfg.device, comm), write=False)
        # every flag goes to train(), which refuses settings a resumed run may not change
        run_kwargs = dict(resume=args.resume, init_from=args.init_from, config_file=args.config,
                          sets=args.set, **_flag_overrides(args))   # train() refuses init_from with resume
    else:
        if args.spec is None:
            raise PdecError("name a spec file (or --resume RUN_DIR)")
        overrides = _flag_overrides(args)
        cfg, _ = _resolve_for_spec(args.spec, overrides, args.config, args.set)  # validate before compiling
        from .. import load_spec

        load_spec(args.spec)  # a spec that fails stops here: no run directory is created
        comm = from_environment(cfg.device)
        compiled = _compile_for(args.spec, cfg, _rank_device(cfg.device, comm), out_dir=args.out)
        if comm.is_main and not os.environ.get("PDEC_LAUNCHED_BY_PDEC"):
            ranks = f", {comm.world_size} ranks" if comm.distributed else ""
            print(f"{args.spec} -> {_module_note(compiled, args.out)} (mode {compiled.plan.mode}, S = {compiled.plan.S}); "
                  f"training with {cfg.optimizer} on {cfg.device}, {cfg.dtype}{ranks}")
        run_kwargs = dict(config_file=args.config, sets=args.set, run_root=args.runs, init_from=args.init_from,
                          **overrides)
    try:
        run = train(compiled, comm=comm, **run_kwargs)
    except TrainingDiverged as exc:  # every rank sees the same non-finite loss
        comm.close()
        if comm.is_main:
            print(f"pdec: training stopped: {exc}")
        return 1
    # (an error on one rank skips this: its exit ends the job; the others must not wait for it)
    comm.close()
    if not comm.is_main:
        return 128 + int(run.stop_signal or 2) if run.status == "interrupted" else 0
    _print_result(run)
    if run.status == "interrupted":
        return 128 + int(run.stop_signal or 2)
    return 0


def cmd_settings(args) -> int:
    """``pdec settings [--optimizer NAME]``: every key ``--set`` accepts, its default and meaning."""
    from ..optim import get_optimizer
    from .config import describe_settings

    if args.optimizer is not None:
        get_optimizer(args.optimizer)   # an unknown name: the error with the closest valid one
    print(describe_settings(args.optimizer))
    return 0


def cmd_plot(args) -> int:
    import torch

    from .plots import plot_curves, plot_solution
    from .runs import load_checkpoint
    from .saved import load_run

    files = [r for r in args.runs if r.is_file()]   # e.g. compare's PNG caught by runs/<spec>/*
    if files:
        print(f"skipped {len(files)} file(s), not run directories: {', '.join(map(str, files))}")
    args.runs = [r for r in args.runs if not r.is_file()]
    if not args.runs:
        raise PdecError("no run directory given (runs/<spec>/<run-id>)")
    for r in args.runs:
        if not (r / "metrics.csv").is_file():
            raise PdecError(f"{r}: not a run directory (no metrics.csv)")
    out = args.out or args.runs[0] / "curves.png"
    print(f"wrote {plot_curves(args.runs, out)}")
    for r in args.runs:
        model = load_run(r).model   # the module the run trained, whatever the spec says now
        sampler = load_checkpoint(r)["sampler"]   # a data condition's rows: its observation points
        trained = [sampler["batch"][t][:, :model.n_in] for t in model.observed if t in sampler["batch"]]
        held = [rows[:, :model.n_in] for rows in sampler.get("heldout", {}).values()]
        png = plot_solution(model, r / "solution.png", marks=torch.cat(trained) if trained else None,
                            heldout=torch.cat(held) if held else None)
        print(f"wrote {png}")
    return 0


def cmd_compare(args) -> int:
    from .loop import TrainingDiverged, train
    from .plots import plot_curves

    _set_threads(args.threads)

    from ..optim import get_optimizer
    from .config import TRAIN_KEYS

    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    if not names:
        raise PdecError("--optimizers names no optimizer")
    # every built-in optimizer trains learned parameters; one registered without them is refused
    # before the first run trains, not after (the spec is read here only for such an optimizer)
    unable = [n for n in names if not get_optimizer(n).TRAINS_LEARNED]
    if unable:
        from .. import load_spec

        learned = [str(k) for k in load_spec(args.spec).learned]
        if learned:
            raise PdecError(f"{args.spec} learns {', '.join(learned)}, which {', '.join(unable)} does not train "
                            f"(its TRAINS_LEARNED is false)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise PdecError(f"--optimizers names {', '.join(repeated)} more than once (one run per optimizer; "
                        f"compare settings of one optimizer with pdec train and pdec plot)")
    # Check every optimizer and setting before the first one trains. A --set key that is one
    # optimizer's hyperparameter goes to the optimizers that have it; a key no one has is an error.
    keys = {item.split("=", 1)[0].strip() for item in args.set if "=" in item}
    known = set(TRAIN_KEYS).union(*(get_optimizer(n).HYPERPARAMETERS for n in names))
    for key in sorted(keys - set(TRAIN_KEYS)):
        takers = [n for n in names if key in get_optimizer(n).HYPERPARAMETERS]
        if takers:   # one name can mean different things to two optimizers (adaptive_damping)
            print(f"--set {key}: applies to {', '.join(takers)}")
    plans = []
    for name in names:
        ours = set(TRAIN_KEYS) | set(get_optimizer(name).HYPERPARAMETERS) | (keys - known)
        sets = [item for item in args.set if "=" not in item or item.split("=", 1)[0].strip() in ours]
        overrides = {"optimizer": name, "time_budget": args.time_budget, "steps": args.steps, "seed": args.seed,
                     **{k: getattr(args, k) for k in ("hidden", "activation", "mode") if getattr(args, k)}}
        if args.device:
            overrides["device"] = args.device
        if args.torch_compile:
            overrides["torch_compile"] = True
        cfg, _ = _resolve_for_spec(args.spec, overrides, args.config, sets)
        plans.append((name, cfg, sets, overrides))
    rows, dirs = [], []
    for name, cfg, sets, overrides in plans:
        compiled = _compile_for(args.spec, cfg, out_dir=args.out)
        try:
            run = train(compiled, config_file=args.config, sets=sets, run_root=args.runs, **overrides)
            status = run.status
        except TrainingDiverged as exc:
            print(f"{name}: {exc}")
            continue
        dirs.append(run.run_dir)
        if status == "interrupted":  # a signal ends the whole comparison, not just this run
            print(f"{name}: interrupted after {run.steps} steps ({run.run_dir}); stopping")
            return 128 + int(run.stop_signal or 2)
        f = run.final
        extra = {f"held-out {k.removeprefix('heldout_rms_')}": v for k, v in f.items() if k.startswith("heldout_rms_")}
        extra.update({f"learned {k}": f[f"learned_{k}"] for k in run.model.learned})
        rows.append((name, run.steps, run.elapsed / max(run.steps, 1), f.get("loss", float("nan")),
                     f.get("rel_l2", float("nan")), f.get("abs_rms", float("nan")), extra, status))
    # a column per data condition with held-out observations and per learned parameter (every run
    # of one problem logs the same)
    head = "".join(f" {c:>22s}" for c in (rows[0][6] if rows else {}))
    print(f"\n{'optimizer':15s} {'steps':>7s} {'s/step':>9s} {'loss':>10s} {'rel L2':>10s} {'abs RMS':>10s}{head}  status")
    for name, steps, per, loss, rel, rms, extra, status in rows:
        cells = "".join(f" {v:22.3e}" for v in extra.values())
        print(f"{name:15s} {steps:7d} {per:9.4f} {loss:10.3e} {rel:10.3e} {rms:10.3e}{cells}  {status}")
    if dirs:
        out = Path(args.runs) / compiled.problem.name / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.png"
        print(f"wrote {plot_curves(dirs, out)}")
    return 0
