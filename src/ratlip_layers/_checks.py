"""Input validation shared by the public modules.

Every check is a handful of Python comparisons on shapes, so it costs nothing measurable next to a
forward pass, and it is traced away by ``torch.compile``. Messages always name what was expected
and what arrived.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "check_positive_int",
    "check_divisible",
    "check_tensor",
    "check_same_batch",
    "check_same_device",
    "check_size",
    "check_state",
    "floating_dtype",
]


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is a positive ``int``; raise ``TypeError``/``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def check_divisible(name: str, value: int, divisor: int, divisor_name: str) -> None:
    """Raise ``ValueError`` unless ``divisor`` divides ``value``."""
    if value % divisor != 0:
        raise ValueError(
            f"{name} ({value}) must be divisible by {divisor_name} ({divisor}); "
            f"the nearest valid values are {value - value % divisor or divisor} and "
            f"{value - value % divisor + divisor}"
        )


def check_tensor(name: str, x: object, ndim: int, layout: str) -> Tensor:
    """Check that ``x`` is a floating tensor of rank ``ndim``; ``layout`` reads like ``"(B, C, H, W)"``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {layout}, got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(
            f"{name} must be a {ndim}-D tensor of shape {layout}, got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_size(name: str, x: Tensor, dim: int, expected: int, what: str) -> None:
    """Raise ``ValueError`` unless ``x.shape[dim] == expected``."""
    if x.shape[dim] != expected:
        raise ValueError(
            f"{name} must have {what} = {expected} (dim {dim}), got shape {tuple(x.shape)}"
        )


def check_same_batch(named: Sequence[tuple[str, Tensor]]) -> None:
    """Raise ``ValueError`` unless every tensor has the same leading (batch) size."""
    first_name, first = named[0]
    for name, t in named[1:]:
        if t.shape[0] != first.shape[0]:
            raise ValueError(
                f"batch sizes differ: {first_name} has {first.shape[0]} samples "
                f"(shape {tuple(first.shape)}) but {name} has {t.shape[0]} (shape {tuple(t.shape)})"
            )


def check_same_device(named: Sequence[tuple[str, Tensor]]) -> None:
    """Raise ``ValueError`` unless every tensor lives on the same device."""
    first_name, first = named[0]
    for name, t in named[1:]:
        if t.device != first.device:
            raise ValueError(
                f"{name} is on {t.device} but {first_name} is on {first.device}; "
                "move them to the same device"
            )


def check_state(state: object, batch: int, hidden_size: int) -> tuple[Tensor, Tensor]:
    """Validate an LSTM state ``(h, c)``, each of shape ``(batch, hidden_size)``."""
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise TypeError(
            f"state must be None or a pair (h, c) of tensors, got {type(state).__name__}"
            + (f" of length {len(state)}" if isinstance(state, (tuple, list)) else "")
        )
    h, c = state
    for name, t in (("state h", h), ("state c", c)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if tuple(t.shape) != (batch, hidden_size):
            raise ValueError(
                f"{name} must have shape (batch, hidden_size) = ({batch}, {hidden_size}), "
                f"got {tuple(t.shape)}"
            )
    return h, c


def floating_dtype(dtype: torch.dtype | None) -> torch.dtype | None:
    """Validate a factory ``dtype`` argument (``None`` or a floating dtype)."""
    if dtype is not None and not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype}")
    return dtype
