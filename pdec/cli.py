"""The ``pdec`` command line: compile, inspect, check, list, train, settings, plot, compare.

Every command takes a spec file; errors caused by the input print one message and exit 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Sequence

from .errors import PdecError

SPECS_DIR = Path("specs")


def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes comma-separated widths like 64,64, got {text!r}")
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"--hidden needs positive widths, got {text!r}")
    return widths


def _add_compile_options(p: argparse.ArgumentParser, out: bool = True) -> None:
    p.add_argument("--hidden", type=_hidden, default=(64,), help="hidden widths, comma-separated (default 64)")
    p.add_argument("--activation", default="tanh",
                   help="tanh (default), sin, sigmoid, softplus, or a SymPy expression of z such as "
                        "'z*tanh(z)'")
    p.add_argument("--mode", default="auto", choices=["auto", "laplacian", "collapsed", "taylor"],
                   help="propagation mode of the interior residual (default: cheapest exact); "
                        "laplacian on a residual like ∂_t u − κΔu keeps ∂_t h a column of its own")
    if out:
        p.add_argument("--out", type=Path, default=Path("generated"), help="output directory (default generated/)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="pdec", description="pdec compiles a PDE written in SymPy (a spec file) into a PyTorch "
        "physics-informed network and trains it (KFAC, KFAC*, ENGD, Hessian-free, Adam, SGD, L-BFGS).",
        epilog="Start with: pdec train specs/poisson2d.py --optimizer kfac --steps 300. "
               "`pdec COMMAND --help` describes each command.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"pdec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("compile", help="generate the PyTorch module of a spec into generated/")
    p.add_argument("spec", nargs="*", type=Path, help="spec file(s), e.g. specs/heat1d.py")
    p.add_argument("--all", action="store_true", help="compile every spec in specs/")
    _add_compile_options(p)

    p = sub.add_parser("inspect", help="needed derivatives, chosen mode and why, columns, S, graph "
                                       "(writes nothing; `pdec compile` writes the module)")
    p.add_argument("spec", type=Path, help="spec file, e.g. specs/heat1d.py")
    _add_compile_options(p, out=False)

    p = sub.add_parser("check", help="verify the exact solution against the PDE and conditions")
    p.add_argument("spec", type=Path, help="spec file whose exact solution to verify")
    p.add_argument("--points", type=int, default=5, help="random points for the numeric fallback")

    p = sub.add_parser("list", help="the shipped specs in specs/, or the spec files given")
    p.add_argument("paths", nargs="*", metavar="SPEC",
                   help="spec files to list instead of specs/*.py, e.g. mine/*.py (each file runs, as "
                        "pdec compile runs it)")

    from .train.cli_commands import add_training_commands  # training stage owns its options

    add_training_commands(sub)
    return parser


def _cmd_compile(args) -> int:
    from . import compile as compile_problem, load_spec

    specs = list(args.spec)
    if args.all:
        specs += sorted(SPECS_DIR.glob("*.py"))
    if not specs:
        raise PdecError("name a spec file, or pass --all")
    for path in specs:
        problem = load_spec(path)
        target = Path(args.out) / f"{problem.name}.py"
        before = target.read_text(encoding="utf-8", errors="replace") if target.is_file() else None
        c = compile_problem(problem, hidden=args.hidden, activation=args.activation, mode=args.mode,
                            out_dir=args.out)
        state = "unchanged" if before == c.source else "written"
        print(f"{path} -> {c.source_path} ({state}; mode {c.plan.mode}, S = {c.plan.S})")
    return 0


def _cmd_inspect(args) -> int:
    from . import compile as compile_problem, load_spec
    from .activations import resolve_activation
    from .codegen.emit import Options

    c = compile_problem(load_spec(args.spec), hidden=args.hidden, activation=args.activation,
                        mode=args.mode, write=False)
    print(c.plan.describe())
    # Inspecting writes nothing: generated/ holds the shipped specs' default modules, which
    # another mode or width would overwrite. Print the command that writes this module instead.
    options = Options(tuple(args.hidden), resolve_activation(args.activation), args.mode)
    command = shlex.join(options.compile_args(str(args.spec)))
    print(f"generated module (not written): {command} writes generated/{c.problem.name}.py")
    return 0


def _cmd_check(args) -> int:
    from . import load_spec
    from .check import check_problem

    report = check_problem(load_spec(args.spec), n_points=args.points)
    print(report)
    return 0 if report.passed else 1


def _cmd_list(args) -> int:
    from . import load_spec
    from .analysis import analyse
    from .plan import make_plan

    if not args.paths:
        specs = sorted(SPECS_DIR.glob("*.py"))
        if not specs:
            raise PdecError(f"no specs in {SPECS_DIR}/ (run from the repository root, or name spec files)")
    else:
        specs = [Path(p) for p in args.paths]
        for path in specs:   # a folder's every .py would run: scripts too, not only specs
            if path.is_dir():
                raise PdecError(f"{path} is a folder: name its spec files, e.g. {path.as_posix()}/*.py")
    failed = 0
    for path in specs:
        try:
            problem = load_spec(path)
        except PdecError as exc:   # one bad file does not hide the others
            print(f"{str(path):28s} error: {exc}")
            failed += 1
            continue
        plan = make_plan(analyse(problem))
        print(f"{str(path):28s} {problem.name:14s} {plan.mode:10s} S={plan.S:<4d} {problem.description}")
    return 1 if failed else 0


def _plain_warnings() -> None:
    """pdec's own warnings (:class:`~pdec.errors.PdecWarning`) print as one line, ``pdec: warning:
    …``, not with the source line that raised them, and only on rank 0 of a data-parallel run;
    other warnings keep Python's format."""
    import warnings

    from .errors import PdecWarning

    if int(os.environ.get("RANK", "0") or 0) > 0:   # data parallel: rank 0 says it once for all ranks
        warnings.filterwarnings("ignore", category=PdecWarning)
    default = warnings.showwarning
    if getattr(default, "pdec_plain", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PdecWarning):
            print(f"pdec: warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    show.pdec_plain = True
    warnings.showwarning = show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pdec``; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    _plain_warnings()
    handlers = {"compile": _cmd_compile, "inspect": _cmd_inspect, "check": _cmd_check, "list": _cmd_list}
    try:
        if args.command in handlers:
            return handlers[args.command](args)
        return args.handler(args)
    except PdecError as exc:
        rank = f" (rank {os.environ['RANK']})" if int(os.environ.get("WORLD_SIZE", 1)) > 1 else ""
        print(f"pdec: error{rank}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pdec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # the reader of stdout left (pdec list | head -1): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())   # Python's flush at exit would raise again
        return 141
