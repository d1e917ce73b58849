"""torch.distributed plumbing: one process per device, started by ``torchrun``.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`setup_distributed` reads them and joins the process group (NCCL
on GPUs, Gloo on CPU). Without them every helper here degrades to the single-process
case, so the trainer has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from ..models import PositionalEncoding

T = TypeVar("T")


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job. ``owns_group``: this context started the process
    group (and so ends it in :meth:`shutdown`)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum of ``tensor`` over ranks (in place; returned for chaining)."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_gather(self, obj: T) -> list[T]:
        """Every rank's ``obj`` (picklable), in rank order."""
        if not self.enabled:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def gather_to_main(self, obj: T) -> list[T] | None:
        """Every rank's ``obj`` in rank order on rank 0; None on the other ranks."""
        if not self.enabled:
            return [obj]
        gathered: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, gathered, dst=0)
        return gathered

    def broadcast(self, obj: T, src: int = 0) -> T:
        """Rank ``src``'s ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj if self.rank == src else None]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def from_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on rank 0 alone; its result, or the exception it raised, on every rank."""
        if not self.enabled:
            return fn()
        outcome: tuple[bool, Any] | None = None
        if self.is_main:
            try:
                outcome = (True, fn())
            except Exception as error:  # re-raised on every rank below
                outcome = (False, error)
        ok, value = self.broadcast(outcome)
        if not ok:
            raise value
        return value

    def shutdown(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def synchronize_running_scales(model: nn.Module, group: Any = None) -> int:
    """Make every running feature scale in ``model`` (``positional_scale="auto"``)
    all-reduce its batch statistics over the processes of ``group`` (None: all of them) at each
    training-mode update, as ``nn.SyncBatchNorm`` does: every rank then scales its
    windows by the same RMS, scores its shard of validation and test with it, and holds
    the buffer that rank 0's checkpoint saves. Returns the number of such layers.

    Every rank must then run the same number of training-mode forward passes (DDP needs
    that anyway).
    """
    count = 0
    for module in model.modules():
        if isinstance(module, PositionalEncoding) and module.scale == "auto":
            module.synchronize, module.process_group = True, group
            count += 1
    return count


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def check_device(device: str) -> torch.device | None:
    """The ``torch.device`` a ``--device`` value names (None for ``"auto"``); ``ValueError``
    naming the value when it is no device, not a CPU/CUDA one, or not present here.
    One check for train, evaluate and predict."""
    if device == "auto":
        return None
    try:
        requested = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r} (try 'auto', 'cpu', 'cuda' or 'cuda:0')") from None
    if requested.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported (try 'auto', 'cpu', 'cuda' or 'cuda:0')")
    if requested.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available here")
        if requested.index is not None and requested.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} requested but this machine has {torch.cuda.device_count()} "
                             "CUDA device(s)")
    return requested


def resolve_device(device: str = "auto") -> torch.device:
    """A single process's device: ``"auto"`` is CUDA when present, else the CPU (see :func:`check_device`)."""
    requested = check_device(device)
    if requested is not None:
        return requested
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup_distributed(device: str = "auto") -> tuple[DistributedContext, torch.device]:
    """Join the job ``torchrun`` started (if any) and pick this process's device.

    ``device``: ``"auto"`` (``cuda:LOCAL_RANK`` when CUDA is present, else CPU), or
    an explicit ``"cpu"``/``"cuda"``/``"cuda:N"``. A process group initialized by the
    caller is used as is.
    """
    check_device(device)
    if dist.is_available() and dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        context = DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank)
    elif launched_by_torchrun():
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        wants_cuda = device == "auto" or device.startswith("cuda")
        use_cuda = torch.cuda.is_available() and wants_cuda
        if use_cuda:
            torch.cuda.set_device(local_rank)
        backend = "nccl" if use_cuda else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=world)
        context = DistributedContext(rank, world, local_rank, owns_group=True)
    else:
        context = DistributedContext()
    if device == "auto":
        if not torch.cuda.is_available():
            chosen = torch.device("cpu")
        elif context.enabled:
            chosen = torch.device(f"cuda:{context.local_rank}")
        else:
            chosen = torch.device("cuda")
    else:
        chosen = torch.device(device)
        if chosen.type == "cuda" and chosen.index is None and context.enabled:
            chosen = torch.device(f"cuda:{context.local_rank}")
    return context, chosen
