"""Shuffle Attention (SA-Net, Zhang & Yang, ICASSP 2021) and the reference's SA convolution."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .._checks import check_divisible, check_float, check_size, check_tensor
from .._checks import factory_kwargs
from .config import FUSED, repr_of, resolve_impl, set_sizes
from .fused import is_channels_last, scale_shift

__all__ = ["ShuffleAttention", "SAConv"]


class ShuffleAttention(nn.Module):
    """SA-Net's shuffle attention: grouped channel and spatial gating, then a channel shuffle.

    Each of the ``groups`` groups splits in two halves, one gated by its global average (channel
    attention), the other by its group-normalised values (spatial attention); then the channels are
    shuffled across the halves. Parameter names follow SA-Net, so its state dicts load.

    Args:
        channels: number of channels ``C``; must be divisible by ``2 * groups``.
        groups: number of groups ``G``.
        impl: ``"ref"``, SA-Net's formulation (two copies), ``"fused"``, the same maths with one copy
            (for even ``groups``), or ``None`` (:func:`~ratlip_layers.layers.default_impl`).

    Shape:
        - input: :math:`(B, C, H, W)`
        - output: :math:`(B, C, H, W)`

    Example:
        >>> ShuffleAttention(32, groups=8)(torch.randn(2, 32, 5, 5)).shape
        torch.Size([2, 32, 5, 5])
    """

    def __init__(
        self, channels: int, groups: int = 8, *, eps: float = 1e-5, impl: str | None = None,
        device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        set_sizes(self, channels=channels, groups=groups)
        check_divisible("channels", channels, 2 * groups, "2 * groups")
        self.impl = resolve_impl(impl)
        eps = check_float("eps", eps)
        if eps <= 0:
            raise ValueError(f"eps must be positive, got {eps}")
        half = channels // (2 * groups)
        factory = factory_kwargs(device, dtype)
        self.cweight = nn.Parameter(torch.zeros(1, half, 1, 1, **factory))
        self.cbias = nn.Parameter(torch.ones(1, half, 1, 1, **factory))
        self.sweight = nn.Parameter(torch.zeros(1, half, 1, 1, **factory))
        self.sbias = nn.Parameter(torch.ones(1, half, 1, 1, **factory))
        self.gn = nn.GroupNorm(half, half, eps=eps, **factory)

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, 4, "(B, C, H, W)")
        check_size("x", x, 1, self.channels, "channels C")
        if x.shape[2] * x.shape[3] < 2:
            raise ValueError(
                "ShuffleAttention normalises each channel over its spatial positions, so it needs "
                f"H * W >= 2, got x of shape {tuple(x.shape)}"
            )
        # Under torch.compile the reference is traced: Inductor fuses it on its own.
        if self.impl != FUSED or self.groups % 2 or torch.compiler.is_compiling():
            return self._forward_ref(x)
        # Measured on CPU: gating strided channels_last views costs more than two layout copies, so
        # compute in NCHW and hand the next (channels_last) convolution the layout it expects.
        memory_format = torch.channels_last if is_channels_last(x) else torch.contiguous_format
        return self._forward_fused(x.contiguous()).contiguous(memory_format=memory_format)

    def _forward_ref(self, x: Tensor) -> Tensor:
        """SA-Net's formulation: regroup, gate both halves, concatenate, shuffle (two copies)."""
        dtype = x.dtype
        grouped = rearrange(x, "b (g c) h w -> (b g) c h w", g=self.groups)
        x_channel, x_spatial = grouped.chunk(2, dim=1)
        pooled = x_channel.mean(dim=(2, 3), keepdim=True)
        x_channel = x_channel * torch.sigmoid(self.cweight.to(dtype) * pooled + self.cbias.to(dtype))
        normed = F.group_norm(
            x_spatial, self.gn.num_groups, self.gn.weight.to(dtype), self.gn.bias.to(dtype), self.gn.eps
        )
        x_spatial = x_spatial * torch.sigmoid(self.sweight.to(dtype) * normed + self.sbias.to(dtype))
        out = rearrange(torch.cat((x_channel, x_spatial), dim=1), "(b g) c h w -> b (g c) h w", g=self.groups)
        # Channel shuffle with two groups: (B, 2, C/2, H, W) -> (B, C/2, 2, H, W).
        return rearrange(out, "b (two c) h w -> b (c two) h w", two=2)

    def _forward_fused(self, x: Tensor) -> Tensor:
        """The same maths with one copy instead of two, for NCHW-contiguous ``x`` and even ``groups``.

        Input channel ``((t * G/2 + r) * 2 + s) * c + j`` is (shuffle half ``t``, group ``r`` within
        it, branch ``s``, channel ``j``); after attention and the shuffle it lands at
        ``((r * 2 + s) * c + j) * 2 + t``. Both branches gate strided views of ``x`` and a single
        ``stack`` writes them to their shuffled places.
        """
        dtype = x.dtype
        batch, channels, height, width = x.shape
        per_branch = channels // (2 * self.groups)
        x_channel, x_spatial = x.view(batch * self.groups, 2 * per_branch, height, width).chunk(2, dim=1)
        pooled = x_channel.mean(dim=(2, 3), keepdim=True)
        y_channel = x_channel * torch.sigmoid(torch.addcmul(self.cbias.to(dtype), self.cweight.to(dtype), pooled))
        normed = F.group_norm(
            x_spatial, self.gn.num_groups, self.gn.weight.to(dtype), self.gn.bias.to(dtype), self.gn.eps
        )
        y_spatial = x_spatial * torch.sigmoid(scale_shift(normed, self.sweight.to(dtype), self.sbias.to(dtype)))
        split = (batch, 2, self.groups // 2, per_branch, height, width)
        to_shuffled = (0, 2, 3, 1, 4, 5)
        out = torch.stack([y.view(split).permute(to_shuffled) for y in (y_channel, y_spatial)], dim=2)
        return out.view(batch, channels, height, width)

    extra_repr = repr_of("channels", "groups", "impl")


class SAConv(nn.Module):
    """The reference's SA convolution: Conv2d (no bias), norm, activation, :class:`ShuffleAttention`.

    Args:
        out_channels: must be divisible by ``2 * groups``.
        padding: convolution padding; ``None`` means ``kernel_size // 2`` ("same" at stride 1).
        groups: shuffle-attention groups (not convolution groups).
        norm_layer: builds the norm from the channel count and factory kwargs.
        act_layer: builds the activation; LeakyReLU(0.01) by default, as in the reference.
        impl: the :class:`ShuffleAttention`'s implementation, ``"ref"``, ``"fused"`` or ``None``.

    Shape:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, H', W')`

    Example:
        >>> SAConv(32, 64)(torch.randn(2, 32, 7, 7)).shape
        torch.Size([2, 64, 7, 7])
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
        padding: int | None = None, groups: int = 8, *,
        norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
        act_layer: Callable[[], nn.Module] = functools.partial(nn.LeakyReLU, 0.01),
        impl: str | None = None, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        set_sizes(self, in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size,
                  stride=stride, groups=groups)
        check_divisible("out_channels", out_channels, 2 * groups, "2 * groups")
        if padding is None:
            padding = kernel_size // 2
        elif isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be None or a non-negative int, got {padding!r}")
        factory = factory_kwargs(device, dtype)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False, **factory)
        self.norm = norm_layer(out_channels, **factory)
        self.act = act_layer()
        self.attn = ShuffleAttention(out_channels, groups, impl=impl, **factory)

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, 4, "(B, C, H, W)")
        check_size("x", x, 1, self.in_channels, "channels C_in")
        return self.attn(self.act(self.norm(self.conv(x))))
