"""A distributed sampler that seeds every draw and can resume in the middle of an epoch."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler

from .._checks import check_nonnegative_int, check_positive_int
from .keys import DrawKey, draw_seed

__all__ = ["ResumableSampler"]


class ResumableSampler(DistributedSampler):
    """:class:`~torch.utils.data.DistributedSampler` that yields ``(index, draw_seed)`` keys and resumes.

    The draw seed depends on ``(seed, epoch, rank, position)`` only, so draws do not depend on the
    number of workers and :meth:`set_position` resumes an epoch exactly.

    Args:
        dataset: the dataset to sample (only its length is used).
        seed: seed of the order and of the draws; the other arguments are ``DistributedSampler``'s.

    Example:
        >>> from ratlip_layers.data import ResumableSampler
        >>> sampler = ResumableSampler(range(6), seed=0)
        >>> keys = list(sampler)
        >>> sampler.set_position(0, 4)
        >>> list(sampler) == keys[4:]
        True
    """

    def __init__(self, dataset: Dataset, *, num_replicas: int = 1, rank: int = 0, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False) -> None:
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"dataset must be a sized Dataset (with __len__), got {type(dataset).__name__}")
        num_replicas = check_positive_int("num_replicas", num_replicas)
        rank = check_nonnegative_int("rank", rank)
        if rank >= num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas - 1] = [0, {num_replicas - 1}], got {rank}")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                         seed=check_nonnegative_int("seed", seed), drop_last=drop_last)
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its beginning."""
        self.set_position(epoch, 0)

    def set_position(self, epoch: int, start: int) -> None:
        """Continue epoch ``epoch`` from this rank's ``start``-th sample."""
        epoch, start = check_nonnegative_int("epoch", epoch), check_nonnegative_int("start", start)
        if start > self.num_samples:
            raise ValueError(f"start must be in [0, {self.num_samples}] (samples per rank), got {start}")
        super().set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[DrawKey]:
        for position, index in enumerate(list(super().__iter__())[self.start :], start=self.start):
            yield index, draw_seed(self.seed, self.epoch, self.rank, position)

    def __len__(self) -> int:
        return self.num_samples - self.start
