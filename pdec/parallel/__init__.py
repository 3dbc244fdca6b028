"""Data parallelism over collocation points on torch.distributed (gloo on CPU, NCCL on GPUs).

Modules, one job each:
    comm     the communicator every optimizer reduces through (single process: no-ops).
    shard    which rows of a batch a rank owns.
    memory   the per-rank memory estimate printed (and enforced) before training.
    launch   ``pdec train --nproc N``: start N ranks with torchrun's launcher.

Normalisation: every per-sample average (loss, gradient, Kronecker factors, Gramian products,
line-search trial losses) divides by the batch's *total* count N_τ (all ranks together), so the
sum over ranks of the per-rank contributions is the single-process quantity.
"""

from .comm import LOCAL, Communicator, TorchDistributed, from_environment
from .shard import Shard, batch_total, shard_batch, shard_rows

__all__ = ["LOCAL", "Communicator", "TorchDistributed", "from_environment", "Shard", "batch_total", "shard_batch",
           "shard_rows"]
