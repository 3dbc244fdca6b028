"""Loading a spec file: ``load_spec("specs/heat1d.py") -> Problem``."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

from .errors import SpecError
from .spec import Problem


def load_spec(path: str | Path) -> Problem:
    """Import a spec file and return its validated :class:`Problem`.

    The file must bind a :class:`Problem` to the module-level name ``problem``.

    Raises:
        SpecError: the file is missing, fails to import (the message gives the exception and the
            line in the spec), defines no problem, or the problem is invalid.
    """
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise SpecError("no such spec file", spec=src)
    module_name = f"_pdec_spec_{path.stem}_{abs(hash(path.resolve())) % 10**8}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SpecError("not a Python file", spec=src)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SpecError:
        raise
    except Exception as exc:  # the user's code failed: report where, not a traceback
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        line = f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
        hint = ""
        if isinstance(exc, TypeError) and ("truth value of Relational" in str(exc) or "for &" in str(exc)
                                           or "for |" in str(exc)):
            hint = (" (SymPy inequalities do not chain and do not take and/or: write (a < b) & (b < c); "
                    "& and | bind tighter than <, so put each inequality in parentheses)")
        raise SpecError(f"failed to import: {type(exc).__name__}: {exc}{line}{hint}", spec=src) from None
    finally:
        sys.modules.pop(module_name, None)
    problem = getattr(module, "problem", None)
    if problem is None:
        raise SpecError("defines no problem: bind a pdec.Problem to the name `problem`", spec=src)
    if not isinstance(problem, Problem):
        raise SpecError(f"`problem` is a {type(problem).__name__}, not a pdec.Problem", spec=src)
    problem.source = src
    return problem.validate()
