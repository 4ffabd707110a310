"""A DF-GAN-style generator for the conversion tests, written from SPEC.md's description of DF-GAN.

``NetG`` has DF-GAN's structure and attribute names, so its state dict has DF-GAN's keys: a noise
projection ``fc`` to a 4x4 map, residual ``GBlocks`` that upsample, whose two fusion blocks sit
inside ``residual()``, a learnable 1x1 shortcut ``c_sc`` where the channels change, and ``to_rgb``.
``DFBLK``/``DFAffine`` reproduce DF-GAN's fusion layout (``affine0.fc_gamma.linear1`` ...) and maths;
``fusion=DFBlock`` builds the same generator on this library's CAT block instead.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ratlip_layers.layers import DFBlock

# DF-GAN's channel multipliers of ngf, from the 4x4 input to the last G-block's output.
DFGAN_CHANNELS_256 = (8, 8, 8, 8, 4, 2, 1)


class GBlock(nn.Module):
    def __init__(self, cond_dim: int, in_ch: int, out_ch: int, fusion: type[nn.Module] = DFBlock) -> None:
        super().__init__()
        self.learnable_sc = in_ch != out_ch
        self.c1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.c2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.fuse1 = fusion(cond_dim, in_ch)
        self.fuse2 = fusion(cond_dim, out_ch)
        if self.learnable_sc:
            self.c_sc = nn.Conv2d(in_ch, out_ch, 1, 1, 0)

    def shortcut(self, x: Tensor) -> Tensor:
        return self.c_sc(x) if self.learnable_sc else x

    def residual(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.fuse1(x, y)
        h = self.c1(h)
        h = self.fuse2(h, y)
        return self.c2(h)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2)
        return self.shortcut(x) + self.residual(x, y)


class NetG(nn.Module):
    """DF-GAN's generator: ``fc(noise)`` to ``(8 ngf, 4, 4)``, G-blocks on ``cat(noise, c)``, ``to_rgb``."""

    def __init__(
        self,
        fusion: type[nn.Module] = DFBlock,
        *,
        ngf: int = 4,
        nz: int = 8,
        cond_dim: int = 16,
        multipliers: tuple[int, ...] = (8, 8, 4, 2),
    ) -> None:
        super().__init__()
        self.ngf = ngf
        self.fc = nn.Linear(nz, ngf * 8 * 4 * 4)
        channels = [m * ngf for m in multipliers]
        self.GBlocks = nn.ModuleList(
            GBlock(nz + cond_dim, i, o, fusion) for i, o in zip(channels[:-1], channels[1:])
        )
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(channels[-1], 3, 3, 1, 1), nn.Tanh())

    def forward(self, noise: Tensor, c: Tensor) -> Tensor:
        out = self.fc(noise).view(noise.size(0), 8 * self.ngf, 4, 4)
        cond = torch.cat((noise, c), dim=1)
        for block in self.GBlocks:
            out = block(out, cond)
        return self.to_rgb(out)


class DFAffine(nn.Module):
    """DF-GAN's ``Affine`` layout: ``fc_gamma``/``fc_beta``, each ``linear1, relu1, linear2``."""

    def __init__(self, cond_dim: int, num_features: int) -> None:
        super().__init__()
        self.fc_gamma, self.fc_beta = self._mlp(cond_dim, num_features), self._mlp(cond_dim, num_features)
        nn.init.zeros_(self.fc_gamma.linear2.weight)
        nn.init.ones_(self.fc_gamma.linear2.bias)
        nn.init.zeros_(self.fc_beta.linear2.weight)
        nn.init.zeros_(self.fc_beta.linear2.bias)

    @staticmethod
    def _mlp(cond_dim: int, num_features: int) -> nn.Sequential:
        return nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(cond_dim, num_features)),
            ("relu1", nn.ReLU()),
            ("linear2", nn.Linear(num_features, num_features)),
        ]))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.fc_gamma(y)[:, :, None, None] * x + self.fc_beta(y)[:, :, None, None]


class DFBLK(nn.Module):
    """DF-GAN's fusion block: affine0, LeakyReLU(0.2), affine1, LeakyReLU(0.2)."""

    def __init__(self, cond_dim: int, in_ch: int) -> None:
        super().__init__()
        self.affine0 = DFAffine(cond_dim, in_ch)
        self.affine1 = DFAffine(cond_dim, in_ch)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = F.leaky_relu(self.affine0(x, y), 0.2)
        return F.leaky_relu(self.affine1(h, y), 0.2)
