"""Data-parallel training: the process group, disjoint shares of a step's rows, and small collectives.

A run with ``training.data_parallel: N > 1`` is N processes started by torchrun (``torch.distributed.run``,
see :mod:`divpref.training.job`): one per GPU with NCCL, or N gloo processes on CPU. Every process reads the
same data and computes the same batch order; step ``s``'s rows are split into N disjoint, contiguous shares
(:func:`step_share`), each process accumulates the weighted loss sums of its share's micro-batches, and DDP
sums the gradients (each process scales its loss by N, which undoes DDP's averaging). So a step's gradient is
that of the whole batch, whatever N. With N = 1 no process group exists and nothing here talks to anyone.

torch is imported inside the functions only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Parallel:
    """This process's place in the run: ``rank`` of ``world_size`` (``local_rank`` picks its GPU)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and the training log; the others only compute."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


SINGLE_PROCESS = Parallel()
"""A run of one process: no process group (the default of every function that takes a :class:`Parallel`)."""


def from_environment() -> Parallel:
    """The :class:`Parallel` torchrun sets in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (default: alone)."""
    return Parallel(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_process_group(parallel: Parallel) -> None:
    """Join the torchrun process group (NCCL on CUDA, gloo on CPU); a no-op for a single process."""
    if not parallel.distributed:
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(parallel.local_rank)
        dist.init_process_group("nccl", device_id=torch.device("cuda", parallel.local_rank))
    else:
        dist.init_process_group("gloo")


def destroy_process_group(parallel: Parallel) -> None:
    """Leave the process group (end of a distributed run)."""
    if parallel.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def step_share(rows: np.ndarray, parallel: Parallel) -> np.ndarray:
    """This process's disjoint, contiguous share of a step's rows (sizes differ by <= 1; may be empty)."""
    return np.array_split(np.asarray(rows), parallel.world_size)[parallel.rank]


def micro_batches(rows: np.ndarray, micro_batch_size: int) -> list[np.ndarray]:
    """``rows`` in consecutive chunks of at most ``micro_batch_size`` (none for no rows)."""
    if micro_batch_size < 1:
        raise ValueError(f"micro_batch_size must be at least 1, got {micro_batch_size}")
    return [rows[start : start + micro_batch_size] for start in range(0, len(rows), micro_batch_size)]


def all_reduce_sum(value: float, parallel: Parallel) -> float:
    """Sum of ``value`` over all processes (float64 on the wire)."""
    if not parallel.distributed:
        return value
    import torch
    import torch.distributed as dist

    device = torch.device("cuda", parallel.local_rank) if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item())


def gather_objects(item: Any, parallel: Parallel) -> list[Any]:
    """Every process's ``item``, in rank order (a one-element list for a single process)."""
    if not parallel.distributed:
        return [item]
    import torch.distributed as dist

    gathered: list[Any] = [None] * parallel.world_size
    dist.all_gather_object(gathered, item)
    return gathered


def barrier(parallel: Parallel) -> None:
    """Wait for every process (e.g. until rank 0 has written a checkpoint)."""
    if parallel.distributed:
        import torch.distributed as dist

        dist.barrier()


def wrap_model(model: Any, parallel: Parallel) -> Any:
    """``model`` in DistributedDataParallel over its trainable parameters only; unchanged for one process.

    Frozen (and 8-bit) weights and buffers are loaded identically by every process from the same files, so
    DDP neither broadcasts nor reduces them; the trainable LoRA and head weights are broadcast from rank 0.
    """
    if not parallel.distributed:
        return model
    import torch
    from torch.nn.parallel import DistributedDataParallel

    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    frozen += [name for name, _ in model.named_buffers()]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, frozen)
    device_ids = [parallel.local_rank] if torch.cuda.is_available() else None
    return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)


def unwrap(model: Any) -> Any:
    """The module inside a DDP wrapper (or ``model`` itself)."""
    return getattr(model, "module", model)


def gradient_sync(model: Any, sync: bool) -> Any:
    """Context for one micro-batch's backward: DDP reduces gradients only when ``sync`` (the last one)."""
    from contextlib import nullcontext

    if sync or not hasattr(model, "no_sync"):
        return nullcontext()
    return model.no_sync()
