"""The generator's residual blocks, GALIP's M-block and G-block, each with two fusions.

A fusion is a public :class:`~ratlip_layers.DFBlock` (CAT) or :class:`~ratlip_layers.RATBlock`
(RAT), called as a user of the layers calls it, so the LSTM state goes through every RAT layer of
the network in order: a block takes ``(x, cond, state)`` and returns ``(x, state)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import factory_kwargs
from ..layers import DFBlock, LSTMState, RATBlock, SAConv

__all__ = ["ConditionedBlock", "GBlock", "MapperBlock"]


def _fusion(
    kind: str,
    cond_dim: int,
    channels: int,
    hidden_size: int,
    cell: nn.LSTMCell | None,
    impl: str | None,
    factory: dict,
) -> DFBlock | RATBlock:
    if kind == "rat":
        return RATBlock(cond_dim, channels, hidden_size, cell=cell, impl=impl, **factory)
    return DFBlock(cond_dim, channels, impl=impl, **factory)


def _conv(
    in_channels: int,
    out_channels: int,
    shuffle_attention: bool,
    sa_groups: int,
    impl: str | None,
    factory: dict,
) -> nn.Module:
    if shuffle_attention:
        return SAConv(in_channels, out_channels, 3, groups=sa_groups, impl=impl, **factory)
    return nn.Conv2d(in_channels, out_channels, 3, 1, 1, **factory)


class ConditionedBlock(nn.Module):
    """A residual block with two fusions (``fuse1``, ``fuse2``), each a DFBlock or a RATBlock.

    Args:
        cond_dim: size of the condition.
        fuse1_channels: channels the first fusion modulates.
        fuse2_channels: channels the second fusion modulates.
        in_channels: input channels (a 1x1 shortcut convolution when they differ from ``out_channels``).
        out_channels: output channels.
        fusion: ``"cat"`` or ``"rat"``.
        hidden_size: LSTM hidden size of the RAT layers.
        cell: an LSTM cell shared by every RAT layer, or ``None`` for one per affine.
        impl: implementation of the fusions and shuffle attention, ``"ref"``, ``"fused"`` or
            ``None`` (:func:`~ratlip_layers.layers.default_impl`).
        device: factory device.
        dtype: factory dtype.
    """

    def __init__(
        self,
        cond_dim: int,
        fuse1_channels: int,
        fuse2_channels: int,
        in_channels: int,
        out_channels: int,
        *,
        fusion: str,
        hidden_size: int,
        cell: nn.LSTMCell | None,
        impl: str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = factory_kwargs(device, dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.fuse1 = _fusion(fusion, cond_dim, fuse1_channels, hidden_size, cell, impl, factory)
        self.fuse2 = _fusion(fusion, cond_dim, fuse2_channels, hidden_size, cell, impl, factory)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, **factory)
            if in_channels != out_channels
            else nn.Identity()
        )

    @staticmethod
    def _fuse(
        fuse: DFBlock | RATBlock, x: Tensor, cond: Tensor, state: LSTMState | None
    ) -> tuple[Tensor, LSTMState | None]:
        """Run one fusion; a RAT fusion steps ``state``, a CAT fusion passes it on unchanged."""
        if isinstance(fuse, RATBlock):
            return fuse(x, cond, state)
        return fuse(x, cond), state


class MapperBlock(ConditionedBlock):
    """GALIP's M-block: conv3x3 (in -> mid), fusion, conv (mid -> out), fusion, plus the shortcut.

    The second convolution is an :class:`SAConv` when ``shuffle_attention`` is on (RATLIP), a plain
    3x3 convolution otherwise (GALIP). Keyword arguments as :class:`ConditionedBlock`.

    Shape:
        - x: :math:`(B, C_{in}, H, W)`; cond: :math:`(B, \\text{cond\\_dim})`
        - state: ``None`` (zeros) or ``(h, c)``, each :math:`(B, \\text{hidden\\_size})`
        - output: ``(out, state)``, ``out`` :math:`(B, C_{out}, H, W)`, ``state`` advanced by the
          RAT fusions (``None`` stays ``None`` without them)

    Example:
        >>> from ratlip_layers.models.blocks import MapperBlock
        >>> block = MapperBlock(12, 8, 4, 8, fusion="rat", hidden_size=6, cell=None,
        ...                     shuffle_attention=True, sa_groups=2)
        >>> out, (h, c) = block(torch.randn(2, 8, 5, 5), torch.randn(2, 12), None)
        >>> out.shape, h.shape
        (torch.Size([2, 8, 5, 5]), torch.Size([2, 6]))
    """

    def __init__(
        self,
        cond_dim: int,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        *,
        fusion: str,
        hidden_size: int,
        cell: nn.LSTMCell | None,
        shuffle_attention: bool,
        sa_groups: int,
        impl: str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        factory = factory_kwargs(device, dtype)
        super().__init__(
            cond_dim,
            mid_channels,
            out_channels,
            in_channels,
            out_channels,
            fusion=fusion,
            hidden_size=hidden_size,
            cell=cell,
            impl=impl,
            **factory,
        )
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 3, 1, 1, **factory)
        self.conv2 = _conv(mid_channels, out_channels, shuffle_attention, sa_groups, impl, factory)

    def forward(self, x: Tensor, cond: Tensor, state: LSTMState | None) -> tuple[Tensor, LSTMState | None]:
        h, state = self._fuse(self.fuse1, self.conv1(x), cond, state)
        h, state = self._fuse(self.fuse2, self.conv2(h), cond, state)
        return self.shortcut(x) + h, state


class GBlock(ConditionedBlock):
    """GALIP's G-block: nearest upsample to ``size``, then fusion, conv (in -> out), fusion, conv
    (out -> out), plus the shortcut.

    The convolutions are :class:`SAConv` when ``shuffle_attention`` is on, plain 3x3 otherwise.
    Keyword arguments as :class:`ConditionedBlock`.

    Shape:
        - x: :math:`(B, C_{in}, H, W)`; cond: :math:`(B, \\text{cond\\_dim})`
        - state: ``None`` (zeros) or ``(h, c)``, each :math:`(B, \\text{hidden\\_size})`
        - output: ``(out, state)``, ``out`` :math:`(B, C_{out}, \\text{size}, \\text{size})`

    Example:
        >>> from ratlip_layers.models.blocks import GBlock
        >>> block = GBlock(12, 8, 4, 16, fusion="cat", hidden_size=6, cell=None,
        ...                shuffle_attention=False, sa_groups=2)
        >>> out, state = block(torch.randn(2, 8, 8, 8), torch.randn(2, 12), None)
        >>> out.shape, state
        (torch.Size([2, 4, 16, 16]), None)
    """

    def __init__(
        self,
        cond_dim: int,
        in_channels: int,
        out_channels: int,
        size: int,
        *,
        fusion: str,
        hidden_size: int,
        cell: nn.LSTMCell | None,
        shuffle_attention: bool,
        sa_groups: int,
        impl: str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        factory = factory_kwargs(device, dtype)
        super().__init__(
            cond_dim,
            in_channels,
            out_channels,
            in_channels,
            out_channels,
            fusion=fusion,
            hidden_size=hidden_size,
            cell=cell,
            impl=impl,
            **factory,
        )
        self.size = size
        self.conv1 = _conv(in_channels, out_channels, shuffle_attention, sa_groups, impl, factory)
        self.conv2 = _conv(out_channels, out_channels, shuffle_attention, sa_groups, impl, factory)

    def forward(self, x: Tensor, cond: Tensor, state: LSTMState | None) -> tuple[Tensor, LSTMState | None]:
        x = F.interpolate(x, size=(self.size, self.size), mode="nearest")
        h, state = self._fuse(self.fuse1, x, cond, state)
        h, state = self._fuse(self.fuse2, self.conv1(h), cond, state)
        return self.shortcut(x) + self.conv2(h), state

    def extra_repr(self) -> str:
        return f"size={self.size}"
