"""Item keys ``(index, draw_seed)``: which sample to load, and the seed of its random draws (crop, flip,
caption), so that a key gives the same tensors in any process. A bare index seeds from itself."""

from __future__ import annotations

import operator

import torch

__all__ = ["DrawKey", "draw_seed", "split_key"]

DrawKey = tuple[int, int]
"""``(index, draw_seed)``."""

_MASK64 = 0xFFFFFFFFFFFFFFFF


def draw_seed(*parts: int) -> int:
    """Mix integers (seed, epoch, position...) into one 63-bit seed, unrelated for nearby inputs.

    Example:
        >>> from ratlip_layers.data import draw_seed
        >>> draw_seed(0, 1, 2) == draw_seed(0, 1, 2), draw_seed(0, 1, 2) == draw_seed(0, 2, 1)
        (True, False)
    """
    state = 0x9E3779B97F4A7C15
    for i, part in enumerate(parts):
        if isinstance(part, bool) or not hasattr(part, "__index__"):
            raise TypeError(f"draw_seed parts must be ints, got {type(part).__name__} ({part!r}) "
                            f"at position {i}")
        state = (state ^ (operator.index(part) & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        state = (state ^ (state >> 31)) * 0x94D049BB133111EB & _MASK64
        state ^= state >> 29
    return state & (_MASK64 >> 1)


def split_key(key: int | DrawKey) -> tuple[int, torch.Generator]:
    """``(index, generator)`` of an item key (an index or an ``(index, draw_seed)`` pair)."""
    try:
        if isinstance(key, bool):
            raise TypeError
        if isinstance(key, (tuple, list)) and len(key) == 2:
            index, seed = operator.index(key[0]), operator.index(key[1])
        else:
            seed = draw_seed(index := operator.index(key))
    except TypeError:
        raise TypeError(f"an item key must be an int index or an (index, draw_seed) pair, "
                        f"got {key!r}") from None
    return index, torch.Generator().manual_seed(seed)
