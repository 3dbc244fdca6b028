"""Rendering the module template (Jinja, strict: an undefined name is an error)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"


def template_dir() -> Path:
    """The repository's ``templates/`` directory (pdec is installed editable, see README)."""
    if not (TEMPLATE_DIR / "module.py.j2").is_file():
        raise FileNotFoundError(f"pdec templates not found in {TEMPLATE_DIR}; install pdec from its "
                                "repository with `pip install -e .`")
    return TEMPLATE_DIR


def template_sources() -> str:
    """Concatenated text of every template (part of the generated files' content hash)."""
    return "".join(p.read_text() for p in sorted(template_dir().glob("*.j2")))


#: Functions of :mod:`pdec.runtime` that generated code may call; imported only where used.
RUNTIME_FUNCTIONS = ("horner_step", "tanh")


LINE_WIDTH = 100
#: Stands for a space that :func:`wrap` must not break at (inside one item of a repr); the
#: rendered text has it replaced by a space.
KEEP_SPACE = "\ue000"


def wrap(text: str, first_col: int, indent: int, width: int = LINE_WIDTH) -> str:
    """``text`` with each line longer than ``width`` columns broken at spaces (a longer word stays
    whole): its first line starts at column ``first_col``, a broken line's continuations after
    ``indent`` spaces plus the line's own indentation. Lines that fit, and the text's own line
    breaks, stay as they are.

    For docstring text, and for code inside brackets: printed expressions and reprs have spaces
    only between tokens, so a break never splits one."""
    out = []
    for i, line in enumerate(text.split("\n")):
        col = first_col if i == 0 else 0
        own = line[:len(line) - len(line.lstrip(" "))]
        pieces = textwrap.wrap(line, width=width, initial_indent=" " * col, subsequent_indent=" " * indent + own,
                               break_long_words=False, break_on_hyphens=False, drop_whitespace=True)
        if len(line) + col <= width or not pieces:
            out.append(line)
        else:
            out.append("\n".join([pieces[0][col:], *pieces[1:]]))
    return "\n".join(out)


def code_wrap(code: str, first_col: int, indent: int, width: int = LINE_WIDTH) -> str:
    """:func:`wrap` for one line of Python: breaks only at spaces inside brackets, where Python
    continues the line implicitly (a break at top level, e.g. after ``=``, would not parse)."""
    out, depth, quote = [], 0, None
    for ch in code:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        out.append(KEEP_SPACE if ch == " " and (depth == 0 or quote) else ch)
    return wrap("".join(out), first_col, indent, width)


def command_wrap(command: str, first_col: int, width: int = LINE_WIDTH) -> str:
    """A shell command in a ``#`` comment, starting at ``first_col``: past ``width`` columns it is
    continued with `` \\`` on further comment lines, each starting at an option (``--name``)."""
    if first_col + len(command) <= width:
        return command
    lines, current = [], ""
    for part in command.replace(" --", "\0--").split("\0"):
        col = first_col if not lines else 6
        if current and col + len(current) + 1 + len(part) + 2 > width:
            lines.append(current)
            current = part
        else:
            current = f"{current} {part}" if current else part
    lines.append(current)
    return " \\\n#     ".join(lines)


def comment(text: str, col: int, width: int = LINE_WIDTH) -> str:
    """``text`` as ``# …`` comment lines starting at column ``col``, broken at spaces to fit
    ``width``; continuation lines are indented two more spaces after the ``#``."""
    lines = textwrap.wrap(text, width=width - col - 2, subsequent_indent="  ", break_long_words=False,
                          break_on_hyphens=False) or [""]
    return ("\n" + " " * col).join(f"# {line}" for line in lines)


def render_module(context: dict) -> str:
    """Render ``module.py.j2`` with a context from :func:`pdec.codegen.emit.build_context`.

    The template's ``runtime_imports`` is GeneratedPINN plus the :data:`RUNTIME_FUNCTIONS` the
    rendered code calls (found in a first rendering).
    """
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["wrap"] = wrap
    env.filters["comment"] = comment
    env.filters["code_wrap"] = code_wrap
    env.filters["command_wrap"] = command_wrap
    env.globals["nb"] = KEEP_SPACE   # a space that wrap() never breaks at (e.g. inside "(..., 4, 1)")
    template = env.get_template("module.py.j2")
    text = template.render(**context, runtime_imports="GeneratedPINN")
    used = [name for name in RUNTIME_FUNCTIONS if re.search(rf"(?<![\w.]){name}\(", text)]
    if used:
        text = template.render(**context, runtime_imports=", ".join(["GeneratedPINN", *used]))
    text = text.replace(KEEP_SPACE, " ")
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
