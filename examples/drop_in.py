"""RAT as a drop-in replacement for DF-GAN's fusion blocks.

A small DF-GAN-style generator conditions every stage with a :class:`DFBlock` (two conditional
affine transformations, each layer on its own). The RAT version swaps in :class:`RATBlock` and
threads one LSTM state through all of them, so every layer's ``gamma``/``beta`` come from a shared,
per-sample memory of the text. The change is one line per call site::

    h = fuse(h, cond)                  # DF-GAN
    h, state = fuse(h, cond, state)    # RAT

plus the state's start (``StateFromNoise``, or ``None`` for zeros). Because every affine head starts
at the identity, a fresh RAT generator computes exactly what the DF-GAN generator with the same
convolutions computes; the recurrent conditioning departs from it only as it trains.

Run: ``python examples/drop_in.py``
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ratlip_layers import DFBlock, RATBlock, StateFromNoise


class DFGANGenerator(nn.Module):
    """Noise -> 4x4 map -> (upsample, fusion, conv) per stage -> RGB, conditioned on a sentence."""

    def __init__(
        self,
        noise_dim: int = 32,
        cond_dim: int = 64,
        channels: int = 32,
        num_stages: int = 3,
        *,
        fusion: Callable[[int, int], nn.Module] = DFBlock,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.fc = nn.Linear(noise_dim, channels * 4 * 4)
        self.fusions = nn.ModuleList(fusion(cond_dim, channels) for _ in range(num_stages))
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, 1, 1) for _ in range(num_stages))
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(channels, 3, 3, 1, 1), nn.Tanh())

    def forward(self, noise: Tensor, cond: Tensor) -> Tensor:
        h = self.fc(noise).view(-1, self.channels, 4, 4)
        for fuse, conv in zip(self.fusions, self.convs):
            h = F.interpolate(h, scale_factor=2.0)
            h = fuse(h, cond)
            h = conv(h)
        return self.to_rgb(h)


class RATGANGenerator(DFGANGenerator):
    """The same generator with RAT blocks: the LSTM state starts from the noise and visits every block."""

    def __init__(
        self,
        noise_dim: int = 32,
        cond_dim: int = 64,
        channels: int = 32,
        num_stages: int = 3,
        *,
        hidden_size: int = 32,
    ) -> None:
        rat = functools.partial(RATBlock, hidden_size=hidden_size)
        super().__init__(noise_dim, cond_dim, channels, num_stages, fusion=rat)
        self.init_state = StateFromNoise(noise_dim, hidden_size)

    def forward(self, noise: Tensor, cond: Tensor) -> Tensor:
        state = self.init_state(noise)
        h = self.fc(noise).view(-1, self.channels, 4, 4)
        for fuse, conv in zip(self.fusions, self.convs):
            h = F.interpolate(h, scale_factor=2.0)
            h, state = fuse(h, cond, state)
            h = conv(h)
        return self.to_rgb(h)


def main() -> dict[str, Tensor]:
    """Build both generators with the same convolutions, run them on one batch, return the images."""
    torch.manual_seed(0)
    nets = {"df_gan": DFGANGenerator().eval(), "rat_gan": RATGANGenerator().eval()}
    shared = {k: v for k, v in nets["df_gan"].state_dict().items() if not k.startswith("fusions.")}
    nets["rat_gan"].load_state_dict(shared, strict=False)
    noise, sentence = torch.randn(4, 32), torch.randn(4, 64)
    with torch.no_grad():
        out = {name: net(noise, sentence) for name, net in nets.items()}
    for name, net in nets.items():
        params = sum(p.numel() for p in net.parameters())
        print(f"{name}: {params:,} parameters, images of shape {tuple(out[name].shape)}")
    same = torch.allclose(out["df_gan"], out["rat_gan"], atol=1e-6)
    print(f"identical at initialisation (identity affine heads): {same}")
    return out


if __name__ == "__main__":
    main()
