"""The ``impl`` choice, and the size checks and reprs the layers' constructors share.

``impl="ref"`` is the plain composition of PyTorch ops that the docs' equations describe; ``"fused"``
the same maths with fewer passes over memory (``layers/fused.py``). A layer fixes its ``impl`` when
built; under ``torch.compile`` a fused layer traces its reference ops, which Inductor fuses itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from torch import nn

from .._checks import check_positive_int

__all__ = ["default_impl"]

IMPLS = ("ref", "fused")
REF, FUSED = IMPLS
IMPL_ENV_VAR = "RATLIP_LAYERS_IMPL"

# Read once: a layer's implementation is fixed when it is built, never re-read per call.
_DEFAULT = os.environ.get(IMPL_ENV_VAR, FUSED).strip().lower()


def default_impl() -> str:
    """The implementation layers built with ``impl=None`` get.

    Returns:
        ``"fused"``, or ``RATLIP_LAYERS_IMPL`` (``ref`` or ``fused``) as set before the first import
        of ``ratlip_layers``, as timm's ``TIMM_FUSED_ATTN`` works.

    Raises:
        ValueError: ``RATLIP_LAYERS_IMPL`` holds something other than ``ref`` or ``fused``.

    Example:
        >>> from ratlip_layers.layers import DFBlock, default_impl
        >>> default_impl() in ("ref", "fused")
        True
        >>> DFBlock(8, 4).impl == default_impl(), DFBlock(8, 4, impl="ref").impl
        (True, 'ref')
    """
    if _DEFAULT not in IMPLS:
        raise ValueError(f"{IMPL_ENV_VAR} must be one of {IMPLS}, got {_DEFAULT!r}")
    return _DEFAULT


def resolve_impl(impl: str | None) -> str:
    """``impl`` checked, or :func:`default_impl` for ``None``; what the layers' constructors store."""
    if impl is None:
        return default_impl()
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS} or None, got {impl!r}")
    return impl


def set_sizes(module: nn.Module, **sizes: object) -> None:
    """Store each size on ``module`` as an attribute of that name, checked to be a positive int."""
    for name, value in sizes.items():
        setattr(module, name, check_positive_int(name, value))


def repr_of(*names: str) -> Callable[[nn.Module], str]:
    """An ``extra_repr`` method listing the attributes ``names`` as ``name=value``."""
    return lambda self: ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
