"""A rank's share of a batch.

Every rank draws the *whole* batch from the one seeded stream (cheap: uniform random numbers) and
keeps a contiguous block of rows of each term, so the union over ranks, in rank order, is exactly
the single-process batch, for any number of ranks.
"""

from __future__ import annotations

from typing import Mapping

import torch


class Shard(dict):
    """term -> this rank's points (n_τ, d), plus ``totals``: term -> N_τ over all ranks.

    Per-sample averages over a shard divide by ``totals[τ]`` (see :func:`batch_total`), so that
    summing them over ranks gives the average over the whole batch.
    """

    def __init__(self, points: Mapping[str, torch.Tensor], totals: Mapping[str, int]):
        super().__init__(points)
        self.totals = dict(totals)


def shard_rows(n: int, rank: int, world_size: int) -> slice:
    """Rows of an n-row block owned by ``rank``: [⌊rank·n/W⌋, ⌊(rank+1)·n/W⌋) (sizes differ by ≤ 1)."""
    return slice(rank * n // world_size, (rank + 1) * n // world_size)


def shard_batch(batch: Mapping[str, torch.Tensor], rank: int, world_size: int) -> Shard:
    """This rank's rows of every term of a full batch (term -> (N_τ, d))."""
    return Shard({t: X[shard_rows(X.shape[0], rank, world_size)] for t, X in batch.items()},
                 {t: X.shape[0] for t, X in batch.items()})


def batch_total(batch: Mapping[str, torch.Tensor], term: str) -> int:
    """N_τ of the whole batch: the shard's recorded total, or the rows present for a plain batch."""
    totals = getattr(batch, "totals", None)
    return totals[term] if totals is not None else batch[term].shape[0]
