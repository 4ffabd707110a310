"""The generator's residual blocks, GALIP's M-block and G-block, each with two fusions: a
:class:`~ratlip_layers.DFBlock` (CAT) or a :class:`~ratlip_layers.RATBlock` (RAT). A block takes
``(x, cond, state)`` and returns ``(x, state)``, so the state goes through every RAT layer in order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import factory_kwargs
from ..layers import DFBlock, LSTMState, RATBlock, SAConv
from ..layers.config import repr_of

__all__ = ["ConditionedBlock", "GBlock", "MapperBlock"]


class ConditionedBlock(nn.Module):
    """Two fusions (``fuse1``, ``fuse2``), two convolutions and a shortcut; the base of the blocks.

    Shape:
        - x: :math:`(B, C_{in}, H, W)`; cond: :math:`(B, \\text{cond\\_dim})`; state: ``None``
          (zeros) or ``(h, c)``
        - output: ``(out, state)``, the state advanced by the RAT fusions

    Args:
        cond_dim, in_channels, out_channels: sizes; a 1x1 shortcut convolution where the channels differ.
        fuse_channels: channels that ``fuse1`` and ``fuse2`` modulate.
        convs: ``(in, out, sa)`` of ``conv1`` and ``conv2``, a 3x3 convolution, or an
            :class:`~ratlip_layers.SAConv` where ``sa`` and ``shuffle_attention`` are both true.
        fusion, sa_groups: as in :class:`~ratlip_layers.models.GeneratorConfig`.
        cell: an LSTM cell shared by every RAT layer, or ``None`` for one per affine.
        impl: implementation of the fusions and shuffle attention.
    """

    def __init__(
        self, cond_dim: int, in_channels: int, out_channels: int, fuse_channels: tuple[int, int],
        convs: tuple[tuple[int, int, bool], tuple[int, int, bool]], *, fusion: str, hidden_size: int,
        cell: nn.LSTMCell | None, shuffle_attention: bool, sa_groups: int, impl: str | None = None,
        device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        factory = factory_kwargs(device, dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.fuse1, self.fuse2 = (
            RATBlock(cond_dim, c, hidden_size, cell=cell, impl=impl, **factory)
            if fusion == "rat"
            else DFBlock(cond_dim, c, impl=impl, **factory)
            for c in fuse_channels
        )
        same = in_channels == out_channels
        self.shortcut = nn.Identity() if same else nn.Conv2d(in_channels, out_channels, 1, **factory)
        self.conv1, self.conv2 = (
            SAConv(c_in, c_out, 3, groups=sa_groups, impl=impl, **factory)
            if sa and shuffle_attention
            else nn.Conv2d(c_in, c_out, 3, 1, 1, **factory)
            for c_in, c_out, sa in convs
        )

    @staticmethod
    def _fuse(fuse: DFBlock | RATBlock, x: Tensor, cond: Tensor, state: LSTMState | None) -> tuple:
        """Run one fusion; a CAT fusion passes ``state`` on unchanged."""
        return fuse(x, cond, state) if isinstance(fuse, RATBlock) else (fuse(x, cond), state)


class MapperBlock(ConditionedBlock):
    """GALIP's M-block: conv3x3 (in -> mid), fusion, conv (mid -> out, SA with ``shuffle_attention``),
    fusion, plus the shortcut. Keyword arguments and shapes as :class:`ConditionedBlock`.

    Example:
        >>> from ratlip_layers.models.blocks import MapperBlock
        >>> block = MapperBlock(12, 8, 4, 8, fusion="rat", hidden_size=6, cell=None,
        ...                     shuffle_attention=True, sa_groups=2)
        >>> out, (h, c) = block(torch.randn(2, 8, 5, 5), torch.randn(2, 12), None)
        >>> out.shape, h.shape
        (torch.Size([2, 8, 5, 5]), torch.Size([2, 6]))
    """

    def __init__(self, cond_dim: int, in_channels: int, mid_channels: int, out_channels: int, **kwargs):
        convs = ((in_channels, mid_channels, False), (mid_channels, out_channels, True))
        super().__init__(cond_dim, in_channels, out_channels, (mid_channels, out_channels), convs, **kwargs)

    def forward(self, x: Tensor, cond: Tensor, state: LSTMState | None) -> tuple[Tensor, LSTMState | None]:
        h, state = self._fuse(self.fuse1, self.conv1(x), cond, state)
        h, state = self._fuse(self.fuse2, self.conv2(h), cond, state)
        return self.shortcut(x) + h, state


class GBlock(ConditionedBlock):
    """GALIP's G-block: nearest upsample to ``size``, fusion, conv (in -> out), fusion, conv
    (out -> out), plus the shortcut; SA convolutions with ``shuffle_attention``. Keyword arguments
    and shapes as :class:`ConditionedBlock`, ``out`` :math:`(B, C_{out}, \\text{size}, \\text{size})`.

    Example:
        >>> from ratlip_layers.models.blocks import GBlock
        >>> block = GBlock(12, 8, 4, 16, fusion="cat", hidden_size=6, cell=None,
        ...                shuffle_attention=False, sa_groups=2)
        >>> out, state = block(torch.randn(2, 8, 8, 8), torch.randn(2, 12), None)
        >>> out.shape, state
        (torch.Size([2, 4, 16, 16]), None)
    """

    def __init__(self, cond_dim: int, in_channels: int, out_channels: int, size: int, **kwargs) -> None:
        convs = ((in_channels, out_channels, True), (out_channels, out_channels, True))
        super().__init__(cond_dim, in_channels, out_channels, (in_channels, out_channels), convs, **kwargs)
        self.size = size

    def forward(self, x: Tensor, cond: Tensor, state: LSTMState | None) -> tuple[Tensor, LSTMState | None]:
        x = F.interpolate(x, size=(self.size, self.size), mode="nearest")
        h, state = self._fuse(self.fuse1, x, cond, state)
        h, state = self._fuse(self.fuse2, self.conv1(h), cond, state)
        return self.shortcut(x) + self.conv2(h), state

    extra_repr = repr_of("size")
