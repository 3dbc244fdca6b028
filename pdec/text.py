"""Short text for the lists that descriptions, comments and docstrings show (100 variables of a
100d problem would fill a line of 700 characters)."""

from __future__ import annotations

from typing import Sequence


def name_list(items: Sequence[str], limit: int = 10, head: int = 3, tail: int = 1) -> str:
    """``items`` joined by ", ", or, past ``limit`` items, the first ``head``, "…" and the last ``tail``.

    Meant for runs (x1 … x100, columns 1 … 100): the caller shortens only lists whose middle a
    reader can infer.

    >>> name_list([f"x{i}" for i in range(1, 101)])
    'x1, x2, x3, …, x100'
    """
    items = list(items)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join([*items[:head], "…", *items[len(items) - tail:]])
