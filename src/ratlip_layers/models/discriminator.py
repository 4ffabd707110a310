"""GALIP's discriminator on frozen CLIP features: NetD (features) and NetC (features + sentence)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import repeat
from torch import Tensor, nn

from .._checks import check_positive_int, check_same_batch, check_same_device, check_shape, check_size, check_tensor
from .._checks import factory_kwargs
from ..clip.frozen import WithFrozenCLIP
from ..clip.vision import CLIPImageEncoder, ImageFeatures

__all__ = ["CLIPDiscriminator", "DBlock", "NetC", "NetD"]


class DBlock(nn.Module):
    """GALIP's D-block: ``shortcut(x) + gamma * res(x) [+ beta * feature]``, the identity when fresh.

    ``res`` is (conv3x3 without bias, LeakyReLU(0.2)) twice; the shortcut a 1x1 convolution where the
    channels change; ``beta`` and the CLIP ``feature`` only with ``clip_feature``.
    """

    def __init__(self, in_channels: int, out_channels: int, clip_feature: bool, **factory) -> None:
        super().__init__()
        self.res = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False, **factory), nn.LeakyReLU(0.2),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False, **factory), nn.LeakyReLU(0.2),
        )
        same = in_channels == out_channels
        self.shortcut = nn.Identity() if same else nn.Conv2d(in_channels, out_channels, 1, **factory)
        self.gamma = nn.Parameter(torch.zeros(1, **factory))
        self.beta = nn.Parameter(torch.zeros(1, **factory)) if clip_feature else None

    def forward(self, x: Tensor, feature: Tensor | None = None) -> Tensor:
        out = self.shortcut(x) + self.gamma * self.res(x)
        return out if self.beta is None else out + self.beta * feature


class NetD(nn.Module):
    """GALIP's NetD: ``maps[0]`` through a DBlock with each further map, then a DBlock ``width ->
    channels`` without one (on ViT-B/32: ``f1 -> DBlock(., f4) -> DBlock(., f8) -> DBlock 768 -> 512``)."""

    def __init__(self, width: int, channels: int, num_maps: int, **factory) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(DBlock(width, width, True, **factory) for _ in range(num_maps - 1))
        self.main = DBlock(width, channels, False, **factory)

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        out = maps[0]
        for block, feature in zip(self.blocks, maps[1:]):
            out = block(out, feature)
        return self.main(out)


class NetC(nn.Module):
    """GALIP's NetC: the sentence tiled over the ``g x g`` map and concatenated, then conv(``k1``),
    LeakyReLU(0.2), conv(``g - k1 + 1``, to 1 channel), no biases, ``k1 = g // 2 + 1``: a 1x1 map."""

    def __init__(self, channels: int, sentence_dim: int, grid: int, joint_channels: int = 128, **factory):
        super().__init__()
        k1 = grid // 2 + 1
        self.joint = nn.Sequential(
            nn.Conv2d(channels + sentence_dim, joint_channels, k1, bias=False, **factory),
            nn.LeakyReLU(0.2),
            nn.Conv2d(joint_channels, 1, grid - k1 + 1, bias=False, **factory),
        )

    def forward(self, x: Tensor, sentence: Tensor) -> Tensor:
        tiled = repeat(sentence.to(x.dtype), "b e -> b e h w", h=x.shape[2], w=x.shape[3])
        return self.joint(torch.cat((x, tiled), dim=1)).flatten()


class CLIPDiscriminator(WithFrozenCLIP):
    """GALIP's discriminator on a frozen open_clip ViT: CLIP features, NetD, then NetC.

    For MA-GP, take gradients with respect to the features and the sentence through :meth:`logits`::

        features = D.features(real)
        maps = tuple(m.detach().requires_grad_() for m in features.maps)
        sentence = sentence.detach().requires_grad_()
        out = D.logits(ImageFeatures(maps, features.embedding), sentence)
        grads = torch.autograd.grad(out.sum(), (*maps, sentence), create_graph=True)

    ``return_features=True`` also returns the features (the generator's CLIP loss needs them).

    Args:
        clip_model: an open_clip CLIP model with a ViT image tower (shared, frozen in place).
        layers: blocks whose patch tokens NetD reads; by default the reference's (see
            :class:`CLIPImageEncoder`).
        channels: NetD's output channels (512 in the reference).
        joint_channels: NetC's inner channels (128 in the reference).

    Shape:
        - images: :math:`(B, 3, H, W)` in [-1, 1], any size
        - sentence: :math:`(B, E)`
        - output: :math:`(B,)` logits

    Example:
        >>> clip_model, _ = tiny_clip()
        >>> D = CLIPDiscriminator(clip_model, channels=32, joint_channels=16)
        >>> logits, features = D(torch.rand(2, 3, 32, 32) * 2 - 1, torch.randn(2, 32), return_features=True)
        >>> logits.shape, len(features.maps)
        (torch.Size([2]), 2)
    """

    def __init__(
        self, clip_model: nn.Module, *, layers: Sequence[int] | None = None, channels: int = 512,
        joint_channels: int = 128, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        factory = factory_kwargs(device, dtype)
        self.encoder = enc = CLIPImageEncoder(clip_model, layers=layers)
        self.width, self.grid, self.sentence_dim = enc.width, enc.grid, enc.embed_dim
        channels = check_positive_int("channels", channels)
        joint_channels = check_positive_int("joint_channels", joint_channels)
        self.net_d = NetD(self.width, channels, len(enc.layers), **factory)
        self.net_c = NetC(channels, self.sentence_dim, self.grid, joint_channels, **factory)
        self.layers: tuple[int, ...] = enc.layers  # the CLIP blocks whose patch tokens NetD reads

    def features(self, images: Tensor) -> ImageFeatures:
        """The frozen CLIP features of ``images`` (in [-1, 1]); gradients reach the images."""
        return self.encoder(images)

    def image_code(self, features: ImageFeatures) -> Tensor:
        """NetD(features.maps), the caption-free code :meth:`match_logits` judges: one NetD per image."""
        maps, layers = features.maps, self.layers
        if len(maps) != len(layers):
            raise ValueError(f"features must hold {len(layers)} maps (layers {layers}), got {len(maps)}")
        for i, m in enumerate(maps):
            check_shape(f"features.maps[{i}]", m, (self.width, self.grid, self.grid))
        return self.net_d(maps)

    def match_logits(self, code: Tensor, sentence: Tensor) -> Tensor:
        """NetC(code, sentence): (B,) logits of how well each image code matches its sentence."""
        check_tensor("sentence", sentence, 2, "(B, embed_dim)")
        check_size("sentence", sentence, 1, self.sentence_dim, "the CLIP model's embed_dim")
        check_same_batch((("image code", code), ("sentence", sentence)))
        check_same_device((("image code", code), ("sentence", sentence)))
        return self.net_c(code, sentence)

    def logits(self, features: ImageFeatures, sentence: Tensor) -> Tensor:
        """NetC(NetD(features.maps), sentence): (B,) logits."""
        return self.match_logits(self.image_code(features), sentence)

    def forward(
        self, images: Tensor, sentence: Tensor, *, return_features: bool = False
    ) -> Tensor | tuple[Tensor, ImageFeatures]:
        features = self.features(images)
        logits = self.logits(features, sentence)
        return (logits, features) if return_features else logits
