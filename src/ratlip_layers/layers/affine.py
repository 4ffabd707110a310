"""Conditional affine transformation (CAT) from DF-GAN/GALIP: the baseline that RAT replaces."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_float, check_same_batch, check_same_device, check_size, check_state, check_tensor
from .._checks import factory_kwargs
from .config import repr_of, resolve_impl, set_sizes
from .modulation import ModulationHead, modulate, modulate_twice

__all__ = ["Affine", "DFBlock"]


def check_inputs(layer: nn.Module, x: Tensor, cond: Tensor, state: object = None) -> None:
    """Validate the ``(x, cond)`` every conditioned layer takes (and a recurrent layer's ``state``)."""
    check_tensor("x", x, 4, "(B, C, H, W)")
    check_tensor("cond", cond, 2, "(B, cond_dim)")
    check_size("x", x, 1, layer.num_features, "channels C")
    check_size("cond", cond, 1, layer.cond_dim, "cond_dim")
    check_same_batch((("x", x), ("cond", cond)))
    check_same_device((("x", x), ("cond", cond)))
    if state is not None:
        check_state(state, x, layer.hidden_size)


class Affine(nn.Module):
    """Conditional affine transformation ``gamma(cond) * x + beta(cond)``; a fresh layer is the identity.

    Args:
        cond_dim: size of the condition vector (612 in RATLIP: 100 noise + 512 CLIP).
        num_features: number of channels ``C`` of ``x``.

    Shape:
        - x: :math:`(B, C, H, W)`
        - cond: :math:`(B, \\text{cond\\_dim})`
        - output: :math:`(B, C, H, W)`, dtype of ``x``

    Example:
        >>> x = torch.randn(2, 8, 4, 4)
        >>> torch.equal(Affine(16, 8)(x, torch.randn(2, 16)), x)
        True
    """

    def __init__(
        self, cond_dim: int, num_features: int, *,
        device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        set_sizes(self, cond_dim=cond_dim, num_features=num_features)
        self.head = ModulationHead(cond_dim, num_features, **factory_kwargs(device, dtype))

    def modulation(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """``(gamma, beta)``, each ``(B, C)``."""
        return self.head(cond)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        check_inputs(self, x, cond)
        return modulate(x, *self.head(cond))

    extra_repr = repr_of("cond_dim", "num_features")


class DFBlock(nn.Module):
    """DF-GAN's fusion block: Affine, LeakyReLU, Affine, LeakyReLU, with one condition.

    Args:
        cond_dim, num_features: as in :class:`Affine`.
        impl: ``"ref"``, ``"fused"`` or ``None`` (:func:`~ratlip_layers.layers.default_impl`): how
            :func:`modulate_twice` computes the block body; the same function either way.

    Shape:
        As :class:`Affine`.

    Example:
        >>> DFBlock(16, 8)(torch.randn(2, 8, 4, 4), torch.randn(2, 16)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(
        self, cond_dim: int, num_features: int, negative_slope: float = 0.2, *, impl: str | None = None,
        device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        set_sizes(self, cond_dim=cond_dim, num_features=num_features)
        self.negative_slope = check_float("negative_slope", negative_slope)
        self.impl = resolve_impl(impl)
        self.affine1, self.affine2 = (Affine(cond_dim, num_features, device=device, dtype=dtype) for _ in range(2))

    def modulation(self, cond: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(gamma1, beta1, gamma2, beta2)`` for :func:`modulate_twice`."""
        return (*self.affine1.modulation(cond), *self.affine2.modulation(cond))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        check_inputs(self, x, cond)
        return modulate_twice(x, *self.modulation(cond), self.negative_slope, impl=self.impl)

    extra_repr = repr_of("cond_dim", "num_features", "negative_slope", "impl")
