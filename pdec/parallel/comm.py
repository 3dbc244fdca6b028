"""The communicator: sums and broadcasts between ranks, or nothing in a single process.

Optimizers hold one (``LOCAL`` by default) and call it wherever a quantity summed over samples
must become the sum over every rank's samples. Each call packs its tensors into one flat buffer,
so a step issues a handful of collectives regardless of the number of layers and terms.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Sequence

import torch


class Communicator:
    """A single process: every collective is the identity (the default, ``LOCAL``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this rank writes files and shows progress (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_reduce_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Replace each tensor, in place, by its sum over ranks."""

    def all_reduce_max(self, values: Sequence[float]) -> list[float]:
        """The maximum over ranks of each value (e.g. stop flags, elapsed time)."""
        return [float(v) for v in values]

    def broadcast_(self, tensors: Sequence[torch.Tensor], src: int) -> None:
        """Overwrite each tensor, in place, with rank ``src``'s values."""

    def barrier(self) -> None:
        """Wait for every rank."""

    def close(self) -> None:
        """Leave the process group."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, world_size={self.world_size})"


LOCAL = Communicator()


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat_(buffer: torch.Tensor, tensors: Sequence[torch.Tensor]) -> None:
    start = 0
    for t in tensors:
        n = t.numel()
        t.copy_(buffer[start:start + n].view_as(t))
        start += n


class TorchDistributed(Communicator):
    """The default ``torch.distributed`` process group (gloo or NCCL).

    Args:
        device: where the collectives' buffers live (the model's device: CPU for gloo, the
            rank's GPU for NCCL).
    """

    def __init__(self, device: torch.device | str = "cpu"):
        import torch.distributed as dist

        self.dist = dist
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        self.device = torch.device(device)

    def all_reduce_(self, tensors: Sequence[torch.Tensor]) -> None:
        tensors = [t for t in tensors if t.numel()]
        if not tensors:
            return
        buffer = _flat(tensors).to(self.device)
        self.dist.all_reduce(buffer)
        _unflat_(buffer, tensors)

    def all_reduce_max(self, values: Sequence[float]) -> list[float]:
        buffer = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        self.dist.all_reduce(buffer, op=self.dist.ReduceOp.MAX)
        return buffer.tolist()

    def broadcast_(self, tensors: Sequence[torch.Tensor], src: int) -> None:
        tensors = [t for t in tensors if t.numel()]
        if not tensors:
            return
        buffer = _flat(tensors).to(self.device)
        self.dist.broadcast(buffer, src)
        _unflat_(buffer, tensors)

    def barrier(self) -> None:
        self.dist.barrier()

    def close(self) -> None:
        """Wait for every rank, then leave the group (a rank leaving while another still
        communicates can abort the other)."""
        if self.dist.is_initialized():
            self.dist.barrier()
            self.dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    """Whether this process is one rank of a torchrun / torch.distributed job (WORLD_SIZE set)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def from_environment(device: str = "cpu", timeout_s: float = 600.0) -> Communicator:
    """The communicator of this process: ``LOCAL``, or a process group joined from torchrun's
    environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).

    The backend is NCCL for a CUDA device (each rank takes GPU ``LOCAL_RANK``) and gloo otherwise.
    A collective that waits longer than ``timeout_s`` (a rank hung) fails the job.
    """
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return LOCAL
    import torch.distributed as dist

    cuda = str(device).startswith("cuda")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
    return TorchDistributed(device)
