"""Helpers shared by the model tests."""

from __future__ import annotations

import torch
from torch import nn

from ratlip_layers.models.discriminator import DBlock

from ..layers.cases import perturb_


def perturbed(module: nn.Module, scale: float = 0.5) -> nn.Module:
    """Move every identity/zero-initialised head off its init (modulation heads, SA, BN, D-block scalars)."""
    perturb_(module, scale)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, DBlock):
                sub.gamma.fill_(0.5)
                if sub.beta is not None:
                    sub.beta.fill_(0.5)
    return module


def trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]
