"""The generator's residual blocks, split into a conditioning step and an image step.

A block's :meth:`~ConditionedBlock.modulation` computes its ``gamma``/``beta`` pairs from the
condition alone (stepping the LSTM state through its RAT layers, if any); its ``forward`` runs the
convolutions on a feature map with those precomputed modulations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import DFBlock, LSTMState, RATBlock, SAConv, modulate_twice

__all__ = ["BlockModulation", "ConditionedBlock", "FusionParams", "GBlock", "MapperBlock"]

FusionParams = tuple[Tensor, Tensor, Tensor, Tensor]
"""``(gamma1, beta1, gamma2, beta2)`` of one DF or RAT block, each (B, C)."""

BlockModulation = tuple[FusionParams, FusionParams]
"""The modulations of a residual block's two fusions, in network order."""


def _fusion(
    kind: str,
    cond_dim: int,
    channels: int,
    hidden_size: int,
    cell: nn.LSTMCell | None,
    factory: dict,
) -> DFBlock | RATBlock:
    if kind == "rat":
        return RATBlock(cond_dim, channels, hidden_size, cell=cell, **factory)
    return DFBlock(cond_dim, channels, **factory)


def _conv(
    in_channels: int, out_channels: int, shuffle_attention: bool, sa_groups: int, factory: dict
) -> nn.Module:
    if shuffle_attention:
        return SAConv(in_channels, out_channels, 3, groups=sa_groups, **factory)
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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.in_channels, self.out_channels = in_channels, out_channels
        self.fuse1 = _fusion(fusion, cond_dim, fuse1_channels, hidden_size, cell, factory)
        self.fuse2 = _fusion(fusion, cond_dim, fuse2_channels, hidden_size, cell, factory)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, **factory)
            if in_channels != out_channels
            else nn.Identity()
        )

    def modulation(self, cond: Tensor, state: LSTMState | None) -> tuple[BlockModulation, LSTMState | None]:
        """Both fusions' ``gamma``/``beta``; RAT fusions step ``state`` and return it advanced."""
        params = []
        for fuse in (self.fuse1, self.fuse2):
            if isinstance(fuse, RATBlock):
                p, state = fuse.modulation(cond, state)
            else:
                p = fuse.modulation(cond)
            params.append(p)
        return (params[0], params[1]), state

    def _fuse(self, fuse: DFBlock | RATBlock, x: Tensor, params: FusionParams) -> Tensor:
        return modulate_twice(x, *params, fuse.negative_slope)


class MapperBlock(ConditionedBlock):
    """GALIP's M-block: conv3x3 (in -> mid), fusion, conv (mid -> out), fusion, plus the shortcut.

    The second convolution is an :class:`SAConv` when ``shuffle_attention`` is on (RATLIP), a plain
    3x3 convolution otherwise (GALIP). Keyword arguments as :class:`ConditionedBlock`.
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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        factory = {"device": device, "dtype": dtype}
        super().__init__(
            cond_dim,
            mid_channels,
            out_channels,
            in_channels,
            out_channels,
            fusion=fusion,
            hidden_size=hidden_size,
            cell=cell,
            **factory,
        )
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 3, 1, 1, **factory)
        self.conv2 = _conv(mid_channels, out_channels, shuffle_attention, sa_groups, factory)

    def forward(self, x: Tensor, modulation: BlockModulation) -> Tensor:
        h = self._fuse(self.fuse1, self.conv1(x), modulation[0])
        h = self._fuse(self.fuse2, self.conv2(h), modulation[1])
        return self.shortcut(x) + h


class GBlock(ConditionedBlock):
    """GALIP's G-block: nearest upsample to ``size``, then fusion, conv (in -> out), fusion, conv
    (out -> out), plus the shortcut.

    The convolutions are :class:`SAConv` when ``shuffle_attention`` is on, plain 3x3 otherwise.
    Keyword arguments as :class:`ConditionedBlock`.
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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        factory = {"device": device, "dtype": dtype}
        super().__init__(
            cond_dim,
            in_channels,
            out_channels,
            in_channels,
            out_channels,
            fusion=fusion,
            hidden_size=hidden_size,
            cell=cell,
            **factory,
        )
        self.size = size
        self.conv1 = _conv(in_channels, out_channels, shuffle_attention, sa_groups, factory)
        self.conv2 = _conv(out_channels, out_channels, shuffle_attention, sa_groups, factory)

    def forward(self, x: Tensor, modulation: BlockModulation) -> Tensor:
        x = F.interpolate(x, size=(self.size, self.size), mode="nearest")
        h = self.conv1(self._fuse(self.fuse1, x, modulation[0]))
        h = self.conv2(self._fuse(self.fuse2, h, modulation[1]))
        return self.shortcut(x) + h

    def extra_repr(self) -> str:
        return f"size={self.size}"
