"""Input validation shared by the public modules: each message names what was expected and what
arrived. The checks only compare shapes in Python, so ``torch.compile`` traces them away."""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "check_captions", "check_device", "check_divisible", "check_float", "check_module",
    "check_nonnegative_int", "check_path", "check_positive_int", "check_same_batch", "check_same_device",
    "check_shape", "check_size", "check_state", "check_tensor", "factory_kwargs", "floating_dtype",
]


def _int_at_least(name: str, value: object, minimum: int, what: str) -> int:
    """``value`` through ``operator.index`` (Python ints, NumPy/torch integer scalars, not bools)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})") from None
    if number < minimum:
        raise ValueError(f"{name} must be {what}, got {number}")
    return number


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` (anything with ``__index__`` but a bool, as ``nn.Linear`` takes) as an int > 0."""
    return _int_at_least(name, value, 1, "a positive int")


def check_nonnegative_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` >= 0 (a seed, a rank, an index); raise otherwise."""
    return _int_at_least(name, value, 0, "a non-negative int")


def check_module(name: str, value: object) -> Any:
    if not isinstance(value, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def check_path(name: str, value: object) -> Any:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__} ({value!r})")
    return value


def check_captions(name: str, captions: object) -> list[str]:
    """Return ``captions`` as a list; raise unless it is a non-empty sequence of ``str``."""
    if isinstance(captions, str) or not isinstance(captions, Sequence):
        raise TypeError(f"{name} must be a list of str (wrap a single caption in a list), "
                        f"got {type(captions).__name__}")
    if len(captions) == 0:
        raise ValueError(f"{name} must hold at least one caption, got an empty list")
    for i, caption in enumerate(captions):
        if not isinstance(caption, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(caption).__name__} ({caption!r})")
    return list(captions)


def check_device(name: str, device: object) -> torch.device | None:
    """Return ``device`` as a ``torch.device`` (``None`` stays ``None``); ``ValueError`` if malformed."""
    if device is None or isinstance(device, torch.device):
        return device
    try:
        return torch.device(device)  # type: ignore[call-overload]
    except (RuntimeError, TypeError):
        raise ValueError(f"{name} must be None, a torch.device or a device string such as 'cpu' or "
                         f"'cuda:0', got {device!r}") from None


def check_float(name: str, value: object) -> float:
    """Return ``value`` as a finite ``float`` (ints and NumPy/torch scalars too); raise otherwise."""
    if isinstance(value, (bool, str)) or not hasattr(value, "__float__"):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


def check_divisible(name: str, value: int, divisor: int, divisor_name: str) -> None:
    if (below := value - value % divisor) != value:
        raise ValueError(f"{name} ({value}) must be divisible by {divisor_name} ({divisor}); the nearest "
                         f"valid values are {below or divisor} and {below + divisor}")


def check_tensor(name: str, x: object, ndim: int, layout: str) -> Tensor:
    """Check that ``x`` is a floating tensor of rank ``ndim``; ``layout`` reads like ``"(B, C, H, W)"``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {layout}, got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(f"{name} must be a {ndim}-D tensor of shape {layout}, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_size(name: str, x: Tensor, dim: int, expected: int, what: str) -> None:
    if x.shape[dim] != expected:
        raise ValueError(f"{name} must have {what} = {expected} (dim {dim}), got shape {tuple(x.shape)}")


def check_same_batch(named: Sequence[tuple[str, Tensor]]) -> None:
    first_name, first = named[0]
    for name, t in named[1:]:
        if t.shape[0] != first.shape[0]:
            raise ValueError(f"batch sizes differ: {first_name} has {first.shape[0]} samples (shape "
                             f"{tuple(first.shape)}) but {name} has {t.shape[0]} (shape {tuple(t.shape)})")


def check_same_device(named: Sequence[tuple[str, Tensor]]) -> None:
    first_name, first = named[0]
    for name, t in named[1:]:
        if t.device != first.device:
            raise ValueError(f"{name} is on {t.device} but {first_name} is on {first.device}; "
                             "move them to the same device")


def check_state(state: object, x: Tensor, hidden_size: int) -> None:
    """Validate an LSTM state ``(h, c)``, each of shape ``(B, hidden_size)`` on ``x``'s device."""
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        length = f" of length {len(state)}" if isinstance(state, (tuple, list)) else ""
        raise TypeError(f"state must be None or a pair (h, c) of tensors, got {type(state).__name__}{length}")
    for name, t in zip(("state h", "state c"), state):
        check_tensor(name, t, 2, "(batch, hidden_size)")
        if tuple(t.shape) != (len(x), hidden_size):
            raise ValueError(f"{name} must have shape (batch, hidden_size) = ({len(x)}, {hidden_size}), "
                             f"got {tuple(t.shape)}")
        check_same_device((("x", x), (name, t)))


def floating_dtype(dtype: torch.dtype | None) -> torch.dtype | None:
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be None or a floating-point torch.dtype, got {dtype!r}")
    return dtype


def factory_kwargs(device: object, dtype: object) -> dict[str, Any]:
    """``{"device": ..., "dtype": ...}`` for a module's parameters, both checked."""
    device = check_device("device", device)
    return {"device": device, "dtype": floating_dtype(dtype)}  # type: ignore[arg-type]


def check_shape(name: str, x: object, shape: tuple[int, ...]) -> Tensor:
    """Check that ``x`` is a floating tensor of shape ``(B, *shape)``, such as a CLIP token map."""
    layout = f"(B, {', '.join(map(str, shape))})"
    check_tensor(name, x, len(shape) + 1, layout)
    if tuple(x.shape[1:]) != shape:
        raise ValueError(f"{name} must have shape {layout}, got {tuple(x.shape)}")
    return x
