"""Errors pdec raises for bad user input.

Every error a user can cause with a spec derives from :class:`SpecError`; the CLI prints
its message alone (no traceback), so the message must name the spec file and the term.
"""

from __future__ import annotations


class PdecError(Exception):
    """Base class of every error pdec raises on purpose."""


class PdecWarning(UserWarning):
    """A warning pdec gives on purpose (the CLI prints it as one line, ``pdec: warning: …``)."""


class SpecError(PdecError):
    """A spec is malformed: the message names the spec (file) and the offending term."""

    def __init__(self, message: str, *, spec: str | None = None, term: str | None = None):
        self.spec = spec
        self.term = term
        where = []
        if spec:
            where.append(spec)
        if term:
            where.append(f"term {term!r}")
        prefix = f"{': '.join(where)}: " if where else ""
        super().__init__(prefix + message)


class ModeError(PdecError):
    """A propagation mode was forced that cannot represent the residual exactly."""
