"""A distributed sampler that can resume in the middle of an epoch and seeds every draw."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler

from .._checks import check_nonnegative_int, check_positive_int
from .keys import DrawKey, draw_seed

__all__ = ["ResumableSampler"]


class ResumableSampler(DistributedSampler):
    """:class:`~torch.utils.data.DistributedSampler` that yields ``(index, draw_seed)`` keys and resumes.

    The order of an epoch is the parent's (a permutation seeded by ``seed + epoch``, shared across
    ranks and split between them). Each key also carries a draw seed that is a function of
    ``(seed, epoch, rank, position)`` only, so crops, flips and caption choices do not depend on
    the number of data-loader workers, and :meth:`set_position` restarts an epoch exactly where a
    checkpoint left it.

    Args:
        dataset: the dataset to sample (only its length is used).
        num_replicas: number of DDP ranks (1 without DDP).
        rank: this process's rank.
        shuffle: permute each epoch.
        seed: seed of the order and of the draws.
        drop_last: drop the tail that does not divide evenly between ranks.

    Example:
        >>> from ratlip_layers.data import ResumableSampler
        >>> sampler = ResumableSampler(range(6), seed=0)
        >>> keys = list(sampler)
        >>> sampler.set_position(0, 4)
        >>> list(sampler) == keys[4:]
        True
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"dataset must be a sized Dataset (with __len__), got {type(dataset).__name__}")
        num_replicas = check_positive_int("num_replicas", num_replicas)
        rank = check_nonnegative_int("rank", rank)
        if rank >= num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas - 1] = [0, {num_replicas - 1}], got {rank}")
        if isinstance(seed, bool) or not hasattr(seed, "__index__"):
            raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r})")
        seed = seed.__index__()
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its beginning."""
        self.set_position(epoch, 0)

    def set_position(self, epoch: int, start: int) -> None:
        """Continue epoch ``epoch`` from this rank's ``start``-th sample."""
        epoch = check_nonnegative_int("epoch", epoch)
        if isinstance(start, bool) or not hasattr(start, "__index__"):
            raise TypeError(f"start must be an int, got {type(start).__name__} ({start!r})")
        start = start.__index__()
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"start must be in [0, {self.num_samples}] (samples per rank), got {start}")
        super().set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[DrawKey]:
        indices = list(super().__iter__())
        for position in range(self.start, len(indices)):
            yield indices[position], draw_seed(self.seed, self.epoch, self.rank, position)

    def __len__(self) -> int:
        return self.num_samples - self.start
