"""The switch between the layers' fast path and their plain reference path.

The fast path (on by default) uses fused modulation with a hand-written backward
(:func:`~ratlip_layers.modulate_twice`), a Triton kernel for it on CUDA when Triton is installed,
a copy-free, channels_last-friendly :class:`~ratlip_layers.ShuffleAttention` and a lean LSTM step.
The plain path is the textbook composition of PyTorch ops, kept as the reference the fast path is
tested against. Both compute the same maths; under ``torch.compile`` the layers always trace the
plain path, which Inductor fuses on its own.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["is_fast_path_enabled", "set_fast_path"]

_ENABLED = True


def is_fast_path_enabled() -> bool:
    """Whether eager calls take the fast path (``True`` unless :class:`set_fast_path` turned it off).

    Example:
        >>> from ratlip_layers import is_fast_path_enabled
        >>> is_fast_path_enabled()
        True
    """
    return _ENABLED


def use_fast_path() -> bool:
    """Whether the current call should take the fast path: enabled, and not being traced by dynamo."""
    return _ENABLED and not torch.compiler.is_compiling()


def is_channels_last(x: Tensor) -> bool:
    """Whether ``x`` is a 4-D channels_last tensor that is not also NCHW-contiguous."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class set_fast_path:
    """Turn the fast path on or off, globally or, used as a context manager, for a block of code.

    Like :class:`torch.set_grad_enabled`, it takes effect immediately when called, and a ``with``
    statement restores the previous setting on exit.

    Args:
        enabled: ``True`` for the fast path, ``False`` for the plain reference path.

    Example:
        >>> from ratlip_layers import is_fast_path_enabled, set_fast_path
        >>> with set_fast_path(False):
        ...     is_fast_path_enabled()
        False
        >>> is_fast_path_enabled()
        True
    """

    def __init__(self, enabled: bool) -> None:
        global _ENABLED
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be a bool, got {type(enabled).__name__} ({enabled!r})")
        self.previous = _ENABLED
        _ENABLED = enabled

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _ENABLED
        _ENABLED = self.previous
