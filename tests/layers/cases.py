"""The public layers under a uniform calling convention, for tests that apply to all of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ratlip_layers import Affine, DFBlock, LSTMAffine, RATBlock, SAConv, ShuffleAttention
from ratlip_layers.layers.modulation import ModulationHead

COND_DIM = 6
HIDDEN = 5


@dataclass(frozen=True)
class LayerCase:
    """How to build and call one layer: ``run(module, x, cond, state) -> (out, state_or_None)``."""

    name: str
    build: Callable[[int], nn.Module]
    conditioned: bool
    recurrent: bool

    def run(self, module: nn.Module, x: Tensor, cond: Tensor | None = None, state=None):
        if self.recurrent:
            return module(x, cond, state)
        if self.conditioned:
            return module(x, cond), None
        return module(x), None


CASES = [
    LayerCase("Affine", lambda c: Affine(COND_DIM, c), conditioned=True, recurrent=False),
    LayerCase("DFBlock", lambda c: DFBlock(COND_DIM, c), conditioned=True, recurrent=False),
    LayerCase("LSTMAffine", lambda c: LSTMAffine(COND_DIM, c, HIDDEN), conditioned=True, recurrent=True),
    LayerCase("RATBlock", lambda c: RATBlock(COND_DIM, c, HIDDEN), conditioned=True, recurrent=True),
    LayerCase("ShuffleAttention", lambda c: ShuffleAttention(c, groups=2), conditioned=False, recurrent=False),
    LayerCase("SAConv", lambda c: SAConv(c, c, groups=2), conditioned=False, recurrent=False),
]
CASE_IDS = [case.name for case in CASES]


def perturb_(module: nn.Module, scale: float = 0.5) -> nn.Module:
    """Move identity-initialised parameters off their init so every path carries signal."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, ModulationHead):
                sub.weight2.normal_(0.0, scale)
                sub.bias2.add_(torch.randn_like(sub.bias2) * scale)
            if isinstance(sub, ShuffleAttention):
                for p in (sub.cweight, sub.sweight, sub.cbias, sub.sbias, sub.gn.weight, sub.gn.bias):
                    p.add_(torch.randn_like(p) * scale)
            if isinstance(sub, nn.BatchNorm2d):
                sub.running_mean.normal_(0.0, 0.1)
                sub.running_var.uniform_(0.5, 1.5)
    return module


def make_inputs(batch: int, channels: int, size: int = 4, dtype: torch.dtype = torch.float32):
    x = torch.randn(batch, channels, size, size, dtype=dtype)
    cond = torch.randn(batch, COND_DIM, dtype=dtype)
    state = (torch.randn(batch, HIDDEN, dtype=dtype), torch.randn(batch, HIDDEN, dtype=dtype))
    return x, cond, state
