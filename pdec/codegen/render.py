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
    """``text`` broken at spaces into lines of at most ``width`` columns (a longer word stays whole):
    the first line starts at column ``first_col``, the others after ``indent`` spaces.

    For docstring text, and for code inside brackets: printed expressions and reprs have spaces
    only between tokens, so a break never splits one."""
    lines = textwrap.wrap(text, width=width, initial_indent=" " * first_col, subsequent_indent=" " * indent,
                          break_long_words=False, break_on_hyphens=False)
    if not lines:
        return text
    return "\n".join([lines[0][first_col:], *lines[1:]])


def render_module(context: dict) -> str:
    """Render ``module.py.j2`` with a context from :func:`pdec.codegen.emit.build_context`.

    The template's ``runtime_imports`` is GeneratedPINN plus the :data:`RUNTIME_FUNCTIONS` the
    rendered code calls (found in a first rendering).
    """
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["wrap"] = wrap
    template = env.get_template("module.py.j2")
    text = template.render(**context, runtime_imports="GeneratedPINN")
    used = [name for name in RUNTIME_FUNCTIONS if re.search(rf"(?<![\w.]){name}\(", text)]
    if used:
        text = template.render(**context, runtime_imports=", ".join(["GeneratedPINN", *used]))
    text = text.replace(KEEP_SPACE, " ")
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
