"""Channel-wise modulation: the ``gamma * x + beta`` shared by CAT and RAT, and the head predicting it."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_float, check_tensor
from .config import FUSED, repr_of, resolve_impl
from .fused import fused_modulate_twice

__all__ = ["modulate_twice"]


def modulate(x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    """``gamma * x + beta`` for a ``(B, C, H, W)`` map and ``(B, C)`` scales, in ``x``'s dtype; unchecked."""
    return torch.addcmul(beta.to(x.dtype)[:, :, None, None], gamma.to(x.dtype)[:, :, None, None], x)


def modulate_twice(
    x: Tensor, gamma1: Tensor, beta1: Tensor, gamma2: Tensor, beta2: Tensor, negative_slope: float = 0.2,
    *, impl: str = "ref",
) -> Tensor:
    """The body of a DF/RAT block: ``lrelu(gamma2 * lrelu(gamma1 * x + beta1) + beta2)``.

    Args:
        gamma1, beta1, gamma2, beta2: per-sample, per-channel scales and shifts, cast to ``x.dtype``.
        impl: ``"ref"``, PyTorch ops composed, or ``"fused"``, one autograd node with a hand-written
            backward (the reference under ``torch.compile`` and for a negative ``negative_slope``).

    Returns:
        The block's output, same shape, dtype and memory format as ``x``.

    Shape:
        - x: :math:`(B, C, H, W)`
        - gamma1, beta1, gamma2, beta2: :math:`(B, C)`

    Example:
        >>> one, zero = torch.ones(1, 2), torch.zeros(1, 2)
        >>> args = (-torch.ones(1, 2, 3, 3), one, zero, one, zero, 0.5)
        >>> modulate_twice(*args)[0, 0, 0, 0].item()
        -0.25
        >>> torch.equal(modulate_twice(*args, impl="fused"), modulate_twice(*args))
        True
    """
    check_tensor("x", x, 4, "(B, C, H, W)")
    expected = tuple(x.shape[:2])
    for name, t in (("gamma1", gamma1), ("beta1", beta1), ("gamma2", gamma2), ("beta2", beta2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (B, C) = {expected}, got {type(t).__name__}")
        if tuple(t.shape) != expected:
            raise ValueError(f"{name} must have shape (B, C) = {expected} to match x, got {tuple(t.shape)}")
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}; move them to the same device")
    negative_slope = check_float("negative_slope", negative_slope)
    if resolve_impl(impl) == FUSED and negative_slope >= 0 and not torch.compiler.is_compiling():
        return fused_modulate_twice(x, gamma1, beta1, gamma2, beta2, negative_slope)
    h = F.leaky_relu(modulate(x, gamma1, beta1), negative_slope)
    return F.leaky_relu(modulate(h, gamma2, beta2), negative_slope)


class ModulationHead(nn.Module):
    """``(gamma, beta)``, each ``(B, num_features)``, from a ``(B, in_features)`` condition; unchecked.

    DF-GAN's two MLPs ``Linear(in -> C), ReLU, Linear(C -> C)`` packed: the first layers into one
    ``Linear(in -> 2C)``, the second into one batched matmul. A fresh head yields ``gamma = 1``,
    ``beta = 0``.

    Example:
        >>> gamma, beta = ModulationHead(8, 4)(torch.randn(2, 8))
        >>> bool((gamma == 1).all() and (beta == 0).all())
        True
    """

    def __init__(self, in_features: int, num_features: int, **factory: Any) -> None:
        super().__init__()
        self.in_features, self.num_features = in_features, num_features
        self.fc1 = nn.Linear(in_features, 2 * num_features, **factory)
        # [0] is gamma's, [1] beta's; weights stored (out, in) like nn.Linear.
        self.weight2 = nn.Parameter(torch.zeros(2, num_features, num_features, **factory))
        self.bias2 = nn.Parameter(torch.stack((torch.ones(num_features, **factory),
                                               torch.zeros(num_features, **factory))))

    def forward(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        hidden = F.relu(self.fc1(cond.to(self.fc1.weight.dtype)))
        hidden = hidden.view(-1, 2, self.num_features).transpose(0, 1)
        return torch.baddbmm(self.bias2.unsqueeze(1), hidden, self.weight2.transpose(1, 2)).unbind(0)

    extra_repr = repr_of("in_features", "num_features")
