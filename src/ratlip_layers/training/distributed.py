"""Process-group set-up for ``torchrun`` and the few collectives the trainer needs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from .._checks import check_device, check_nonnegative_int, check_positive_int

__all__ = ["DistributedContext", "init_distributed", "resolve_device"]


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"``: the local rank's GPU if CUDA is available, else the CPU; ``"cuda"``: the local
    rank's GPU; anything else as ``torch.device`` reads it."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = check_device("device", name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was asked for but CUDA is not available; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


@dataclass(frozen=True)
class DistributedContext:
    """Who this process is: ``rank`` of ``world_size``, on ``device``; rank 0 does all the I/O.

    Example:
        >>> from ratlip_layers.training import DistributedContext
        >>> ctx = DistributedContext()
        >>> ctx.enabled, ctx.is_main, ctx.gather("loss")
        (False, True, ['loss'])
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        check_positive_int("world_size", self.world_size)
        check_nonnegative_int("local_rank", self.local_rank)
        if check_nonnegative_int("rank", self.rank) >= self.world_size:
            raise ValueError(
                f"rank must be an int in [0, world_size - 1] = [0, {self.world_size - 1}], got {self.rank}"
            )
        if self.device is None:
            raise TypeError("device must be a torch.device or a device string such as 'cpu', got None")
        object.__setattr__(self, "device", check_device("device", self.device))  # frozen: parse once

    @property
    def enabled(self) -> bool:
        """Whether there are several processes."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (every rank must call it)."""
        if not self.enabled:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.enabled:
            dist.barrier()


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the process group ``torchrun`` describes in the environment (NCCL on GPUs, Gloo on
    CPUs; each process drives the GPU of its ``LOCAL_RANK``, see :func:`resolve_device`), or run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device, local_rank)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if target.type == "cuda" else "gloo")
    return DistributedContext(rank, world_size, local_rank, target)
