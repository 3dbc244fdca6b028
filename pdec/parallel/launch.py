"""``pdec train --nproc N``: run the same command as N ranks on this machine with torchrun's
launcher (``torch.distributed.run``), equivalent to ``torchrun --standalone --nproc-per-node N
-m pdec train …``.

The launcher gives each rank its environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT;
pdec sets OMP_NUM_THREADS to cores / N unless it is set), watches the ranks, and stops all of them when one fails; pdec then
names the failed rank and its exit code.
"""

from __future__ import annotations

import sys
from typing import Sequence


def strip_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (the ranks must not launch again)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def launch(nproc: int, pdec_argv: Sequence[str]) -> int:
    """Run ``python -m pdec <pdec_argv>`` as ``nproc`` ranks on this machine; return the exit code.

    Args:
        nproc: number of ranks (processes).
        pdec_argv: the pdec command line after ``pdec`` (e.g. ``["train", "specs/poisson2d.py", …]``),
            without ``--nproc``.

    Returns:
        0 when every rank succeeded; otherwise the failed rank's exit code (after a message on
        stderr naming the rank).
    """
    import os

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # the ranks share this machine's cores (torchrun alone would set 1 thread and warn about it)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    os.environ["PDEC_LAUNCHED_BY_PDEC"] = "1"  # the parent already printed the run's header

    args = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0", "-m", "pdec", *pdec_argv])
    try:
        run(args)
    except SignalException as exc:
        # the launcher passed SIGINT/SIGTERM on to the ranks; they finished the step they were in
        # and rank 0 saved a checkpoint (given up to 30 s before they are killed)
        print(f"pdec: stopped by {exc.sigval.name}; the ranks were asked to save a checkpoint", file=sys.stderr)
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()  # the root cause; the launcher then stopped the others
        code = failure.exitcode if isinstance(failure.exitcode, int) and failure.exitcode > 0 else 1
        others = f" ({len(exc.failures) - 1} other rank(s) stopped with it)" if len(exc.failures) > 1 else ""
        print(f"pdec: rank {rank} of {nproc} failed with exit code {failure.exitcode}{others}; the whole job "
              f"was stopped (see the rank's message above)", file=sys.stderr)
        return code
    return 0
