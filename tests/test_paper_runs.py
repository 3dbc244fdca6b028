"""pdec's KFAC and KFAC* follow the paper's published 2d Poisson runs step by step.

Same data, initial weights, targets and hyperparameters as the paper's logged runs (see
tests/paper_runs.py): the losses agree to round-off for the first tens of steps (KFAC within
1e-10 for 15 steps, KFAC* for 40). Later the runs part: round-off differences (1e-15 after the
first step) grow about 2× per step (benchmarks/paper_runs.py prints the whole runs).
"""

from __future__ import annotations

import pytest

from pdec.optim import get_optimizer
from paper_runs import RUNS, paper_log, paper_poisson2d


@pytest.mark.parametrize("optimizer, steps", [("kfac", 15), ("kfac-star", 40)])
def test_matches_the_papers_published_run(optimizer, steps):
    model, batch, _ = paper_poisson2d()
    hyper, _ = RUNS[optimizer]
    opt = get_optimizer(optimizer)(model, **hyper)
    logged = {step: loss for step, loss, _, _ in paper_log(optimizer)}
    assert all(s in logged for s in range(steps + 1))
    for step in range(steps + 1):
        loss = opt.step(batch).loss    # the loss before this step, as the paper logs it
        assert loss == pytest.approx(logged[step], rel=1e-9, abs=0), f"step {step}"
