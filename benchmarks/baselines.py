"""The straightforward implementation of the library's maths, the yardstick of every benchmark row.

Written the way a first implementation usually is: eager, one ``nn.LSTMCell`` per affine, separate
``gamma`` and ``beta`` MLPs (four Linear calls per head), ``expand`` broadcasting and an unfused
chain of element-wise ops; SA-Net's own reshape/``cat``/shuffle formulation of shuffle attention.
``ReferenceRATBlock`` reproduces the public reference code's RAT layer, whose private ``nn.LSTM``
reads the minibatch as one sequence (SPEC section 2), so its cost can be compared too.

Every class has ``from_ours(module)``, which copies the weights of the library's module so both
compute the same function (``tests/benchmarks`` checks they agree). The network-level rows (blocks
of the generator, the generator, a training step) compare against the same module built with
``impl="ref"``, and the text encoder against open_clip's ``encode_text``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ratlip_layers import Affine, DFBlock, LSTMAffine, RATBlock, SAConv, ShuffleAttention
from ratlip_layers.layers.modulation import ModulationHead

__all__ = [
    "BaselineAffine",
    "BaselineDFBlock",
    "BaselineHead",
    "BaselineLSTMAffine",
    "BaselineRATBlock",
    "BaselineSAConv",
    "BaselineShuffleAttention",
    "EncodeText",
    "ReferenceLSTMAffine",
    "ReferenceRATBlock",
]


def _expand(p: Tensor, x: Tensor) -> Tensor:
    return p.unsqueeze(-1).unsqueeze(-1).expand_as(x)


class BaselineHead(nn.Module):
    """Two independent MLPs, ``Linear(in -> C), ReLU, Linear(C -> C)``, for ``gamma`` and ``beta``."""

    def __init__(self, in_features: int, num_features: int) -> None:
        super().__init__()
        self.gamma = nn.Sequential(
            nn.Linear(in_features, num_features), nn.ReLU(), nn.Linear(num_features, num_features)
        )
        self.beta = nn.Sequential(
            nn.Linear(in_features, num_features), nn.ReLU(), nn.Linear(num_features, num_features)
        )

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self.gamma(y), self.beta(y)

    @classmethod
    def from_ours(cls, head: ModulationHead) -> BaselineHead:
        c = head.num_features
        new = cls(head.in_features, c).to(head.fc1.weight)
        with torch.no_grad():
            for k, mlp in enumerate((new.gamma, new.beta)):
                mlp[0].weight.copy_(head.fc1.weight[k * c : (k + 1) * c])
                mlp[0].bias.copy_(head.fc1.bias[k * c : (k + 1) * c])
                mlp[2].weight.copy_(head.weight2[k])
                mlp[2].bias.copy_(head.bias2[k])
        return new


class BaselineAffine(nn.Module):
    """CAT: ``gamma(y) * x + beta(y)`` with expanded scales."""

    def __init__(self, cond_dim: int, num_features: int) -> None:
        super().__init__()
        self.head = BaselineHead(cond_dim, num_features)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gamma, beta = self.head(y)
        return _expand(gamma, x) * x + _expand(beta, x)

    @classmethod
    def from_ours(cls, layer: Affine) -> BaselineAffine:
        new = cls(layer.cond_dim, layer.num_features)
        new.head = BaselineHead.from_ours(layer.head)
        return new


class BaselineDFBlock(nn.Module):
    """Affine, LeakyReLU, Affine, LeakyReLU."""

    def __init__(self, cond_dim: int, num_features: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.affine1 = BaselineAffine(cond_dim, num_features)
        self.affine2 = BaselineAffine(cond_dim, num_features)
        self.negative_slope = negative_slope

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x = F.leaky_relu(self.affine1(x, y), self.negative_slope)
        return F.leaky_relu(self.affine2(x, y), self.negative_slope)

    @classmethod
    def from_ours(cls, block: DFBlock) -> BaselineDFBlock:
        new = cls(block.cond_dim, block.num_features, block.negative_slope)
        new.affine1 = BaselineAffine.from_ours(block.affine1)
        new.affine2 = BaselineAffine.from_ours(block.affine2)
        return new


class BaselineLSTMAffine(nn.Module):
    """One ``nn.LSTMCell`` step per call (zeros state when none), then the CAT of ``h``."""

    def __init__(self, cond_dim: int, num_features: int, hidden_size: int = 64) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(cond_dim, hidden_size)
        self.head = BaselineHead(hidden_size, num_features)

    def forward(self, x: Tensor, y: Tensor, state: tuple[Tensor, Tensor] | None = None):
        h, c = self.cell(y, state)
        gamma, beta = self.head(h)
        return _expand(gamma, x) * x + _expand(beta, x), (h, c)

    @classmethod
    def from_ours(cls, layer: LSTMAffine) -> BaselineLSTMAffine:
        new = cls(layer.cond_dim, layer.num_features, layer.hidden_size).to(layer.cell.weight_ih)
        new.cell.load_state_dict(layer.cell.state_dict())
        new.head = BaselineHead.from_ours(layer.head)
        return new


class BaselineRATBlock(nn.Module):
    """LSTMAffine, LeakyReLU, LSTMAffine, LeakyReLU, the state passed along."""

    def __init__(
        self, cond_dim: int, num_features: int, hidden_size: int = 64, negative_slope: float = 0.2
    ) -> None:
        super().__init__()
        self.affine1 = BaselineLSTMAffine(cond_dim, num_features, hidden_size)
        self.affine2 = BaselineLSTMAffine(cond_dim, num_features, hidden_size)
        self.negative_slope = negative_slope

    def forward(self, x: Tensor, y: Tensor, state: tuple[Tensor, Tensor] | None = None):
        x, state = self.affine1(x, y, state)
        x = F.leaky_relu(x, self.negative_slope)
        x, state = self.affine2(x, y, state)
        return F.leaky_relu(x, self.negative_slope), state

    @classmethod
    def from_ours(cls, block: RATBlock) -> BaselineRATBlock:
        new = cls(block.cond_dim, block.num_features, block.hidden_size, block.negative_slope)
        new.affine1 = BaselineLSTMAffine.from_ours(block.affine1)
        new.affine2 = BaselineLSTMAffine.from_ours(block.affine2)
        return new


class ReferenceLSTMAffine(nn.Module):
    """The reference code's RAT affine: ``nn.LSTM`` fed ``y.unsqueeze(0)``, i.e. the batch as one sequence.

    The LSTM steps once per sample, sequentially, and its final hidden state gives one ``gamma`` and
    one ``beta`` broadcast to every sample; no state enters or leaves. Kept for its cost, not its maths.
    """

    def __init__(self, cond_dim: int, num_features: int, hidden_size: int = 64) -> None:
        super().__init__()
        self.lstm = nn.LSTM(cond_dim, hidden_size, batch_first=True)
        self.head = BaselineHead(hidden_size, num_features)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        _, (h, _) = self.lstm(y.unsqueeze(0))
        gamma, beta = self.head(h[-1])
        return _expand(gamma.expand(x.shape[0], -1), x) * x + _expand(beta.expand(x.shape[0], -1), x)

    @classmethod
    def from_ours(cls, layer: LSTMAffine) -> ReferenceLSTMAffine:
        new = cls(layer.cond_dim, layer.num_features, layer.hidden_size).to(layer.cell.weight_ih)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(new.lstm, f"{name}_l0").copy_(getattr(layer.cell, name))
        new.head = BaselineHead.from_ours(layer.head)
        return new


class ReferenceRATBlock(nn.Module):
    """Two :class:`ReferenceLSTMAffine` with LeakyReLUs; no state between them, as in the reference."""

    def __init__(
        self, cond_dim: int, num_features: int, hidden_size: int = 64, negative_slope: float = 0.2
    ) -> None:
        super().__init__()
        self.affine1 = ReferenceLSTMAffine(cond_dim, num_features, hidden_size)
        self.affine2 = ReferenceLSTMAffine(cond_dim, num_features, hidden_size)
        self.negative_slope = negative_slope

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x = F.leaky_relu(self.affine1(x, y), self.negative_slope)
        return F.leaky_relu(self.affine2(x, y), self.negative_slope)

    @classmethod
    def from_ours(cls, block: RATBlock) -> ReferenceRATBlock:
        new = cls(block.cond_dim, block.num_features, block.hidden_size, block.negative_slope)
        new.affine1 = ReferenceLSTMAffine.from_ours(block.affine1)
        new.affine2 = ReferenceLSTMAffine.from_ours(block.affine2)
        return new


class BaselineShuffleAttention(nn.Module):
    """SA-Net's published formulation: regroup, split, pool, GroupNorm module, ``cat``, shuffle."""

    def __init__(self, channels: int, groups: int = 8) -> None:
        super().__init__()
        self.groups = groups
        half = channels // (2 * groups)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.cweight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, half, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, half, 1, 1))
        self.gn = nn.GroupNorm(half, half)

    @staticmethod
    def channel_shuffle(x: Tensor, groups: int) -> Tensor:
        b, _, h, w = x.shape
        x = x.reshape(b, groups, -1, h, w).permute(0, 2, 1, 3, 4)
        return x.reshape(b, -1, h, w)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        x = x.reshape(b * self.groups, -1, h, w)
        x_0, x_1 = x.chunk(2, dim=1)
        xn = self.avg_pool(x_0)
        xn = self.cweight * xn + self.cbias
        xn = x_0 * torch.sigmoid(xn)
        xs = self.gn(x_1)
        xs = self.sweight * xs + self.sbias
        xs = x_1 * torch.sigmoid(xs)
        out = torch.cat([xn, xs], dim=1).reshape(b, -1, h, w)
        return self.channel_shuffle(out, 2)

    @classmethod
    def from_ours(cls, layer: ShuffleAttention) -> BaselineShuffleAttention:
        new = cls(layer.channels, layer.groups).to(layer.cweight)
        new.load_state_dict(layer.state_dict())
        return new


class BaselineSAConv(nn.Module):
    """Conv2d (no bias), BatchNorm, LeakyReLU(0.01), :class:`BaselineShuffleAttention`."""

    def __init__(self, in_channels: int, out_channels: int, groups: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.LeakyReLU(0.01)
        self.attn = BaselineShuffleAttention(out_channels, groups)

    def forward(self, x: Tensor) -> Tensor:
        return self.attn(self.act(self.norm(self.conv(x))))

    @classmethod
    def from_ours(cls, layer: SAConv) -> BaselineSAConv:
        new = cls(layer.in_channels, layer.out_channels, layer.attn.groups).to(layer.conv.weight)
        new.conv.load_state_dict(layer.conv.state_dict())
        new.norm.load_state_dict(layer.norm.state_dict())
        new.attn = BaselineShuffleAttention.from_ours(layer.attn)
        return new


class EncodeText(nn.Module):
    """open_clip's own ``encode_text``: the straightforward way to get sentence embeddings."""

    def __init__(self, clip_model: nn.Module) -> None:
        super().__init__()
        self.clip_model = clip_model

    def forward(self, tokens: Tensor) -> Tensor:
        return self.clip_model.encode_text(tokens)
