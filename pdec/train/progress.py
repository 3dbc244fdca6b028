"""Training progress on the terminal (tqdm), in a notebook (tqdm's widget), or in a log file.

tqdm redraws its bar with carriage returns; a log file (``pdec train … 2> log``, a batch job's
output) keeps every redraw on one line that grows for the whole run. When stderr is not a
terminal and no notebook is running, :class:`LineProgress` writes a plain line instead, every
``interval`` seconds and once at the end.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm.auto import tqdm
from tqdm.autonotebook import tqdm as _notebook_or_std
from tqdm.std import tqdm as _std

IN_NOTEBOOK = _notebook_or_std is not _std


class LineProgress:
    """tqdm's ``update`` / ``set_postfix`` / ``close`` as plain lines, for output that is not a terminal.

    Each line reads ``<desc>: step <n>[/<total>], <elapsed> s, key=value, …`` with the postfix
    last set; ``close`` writes the last state if it has not been written yet.
    """

    def __init__(self, total: int | None, initial: int, desc: str, file: TextIO, interval: float = 10.0):
        self.total, self.n, self.desc, self.file, self.interval = total, initial, desc, file, interval
        self.postfix: dict[str, Any] = {}
        self.start = self.last = time.perf_counter()
        self.written_n: int | None = None

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps; write a line if ``interval`` seconds passed since the last one."""
        self.n += n
        if time.perf_counter() - self.last >= self.interval:
            self._write()

    def set_postfix(self, postfix: dict[str, Any], refresh: bool = False) -> None:
        """The key=value pairs of the following lines (``refresh`` is accepted and ignored)."""
        self.postfix = dict(postfix)

    def close(self) -> None:
        """Write the final state, unless the last line already shows it."""
        if self.written_n != self.n:
            self._write()

    def _write(self) -> None:
        self.last = time.perf_counter()
        self.written_n = self.n
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        fields = [f"step {count}", f"{self.last - self.start:.0f} s"]
        fields += [f"{k}={v}" for k, v in self.postfix.items()]
        print(f"{self.desc}: " + ", ".join(fields), file=self.file, flush=True)


def progress_bar(total: int | None, initial: int, desc: str, enabled: bool, file: TextIO | None = None,
                 interval: float = 10.0):
    """A progress display for ``total`` steps (None: unknown, e.g. a time budget) from ``initial``.

    tqdm on a terminal or in a notebook; :class:`LineProgress` when ``file`` (default stderr) is
    not a terminal; a disabled tqdm when ``enabled`` is False.
    """
    file = sys.stderr if file is None else file
    if enabled and not IN_NOTEBOOK and not (hasattr(file, "isatty") and file.isatty()):
        return LineProgress(total, initial, desc, file, interval)
    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", desc=desc,
                dynamic_ncols=True, file=file, mininterval=0.5)
