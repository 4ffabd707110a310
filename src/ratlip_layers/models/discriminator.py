"""GALIP's discriminator on frozen CLIP features: NetD (features) and NetC (features + sentence)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import repeat
from torch import Tensor, nn

from .._checks import check_positive_int, check_same_batch, check_same_device, check_tensor, factory_kwargs
from ..clip.frozen import WithFrozenCLIP
from ..clip.vision import CLIPImageEncoder, ImageFeatures

__all__ = ["CLIPDiscriminator", "DBlock", "NetC", "NetD"]


class DBlock(nn.Module):
    """GALIP's D-block: ``shortcut(x) + gamma * res(x) [+ beta * feature]``.

    ``res`` is conv3x3, LeakyReLU(0.2), conv3x3, LeakyReLU(0.2) (no biases); the shortcut is a 1x1
    convolution when the channel count changes. The scalars ``gamma`` and ``beta`` start at 0, so a
    fresh block passes ``x`` through.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        clip_feature: whether a CLIP feature map (``out_channels`` channels) is added, scaled by ``beta``.
        device: factory device.
        dtype: factory dtype.

    Shape:
        - x: :math:`(B, C_{in}, H, W)`
        - feature: :math:`(B, C_{out}, H, W)`, only with ``clip_feature``
        - output: :math:`(B, C_{out}, H, W)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        clip_feature: bool,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = factory_kwargs(device, dtype)
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.res = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False, **factory),
            nn.LeakyReLU(0.2),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False, **factory),
            nn.LeakyReLU(0.2),
        )
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, **factory)
            if in_channels != out_channels
            else nn.Identity()
        )
        self.gamma = nn.Parameter(torch.zeros(1, **factory))
        self.beta = nn.Parameter(torch.zeros(1, **factory)) if clip_feature else None

    def forward(self, x: Tensor, feature: Tensor | None = None) -> Tensor:
        if (feature is None) != (self.beta is None):
            raise ValueError(
                f"this DBlock {'needs' if self.beta is not None else 'takes no'} CLIP feature map, "
                f"got {'none' if feature is None else 'one'}"
            )
        out = self.shortcut(x) + self.gamma * self.res(x)
        return out if self.beta is None else out + self.beta * feature

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"clip_feature={self.beta is not None}"
        )


class NetD(nn.Module):
    """GALIP's NetD: folds the CLIP feature maps into one map.

    ``out = maps[0]``, then ``out = DBlock(out, maps[i])`` for each further map, then a final
    DBlock (``width -> channels``) without a feature. On ViT-B/32 with the reference's three maps
    that is ``f1 -> DBlock(., f4) -> DBlock(., f8) -> DBlock 768 -> 512``.

    Args:
        width: CLIP width (channels of every map).
        channels: output channels.
        num_maps: number of feature maps.
        device: factory device.
        dtype: factory dtype.
    """

    def __init__(
        self,
        width: int,
        channels: int,
        num_maps: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = factory_kwargs(device, dtype)
        self.num_maps = check_positive_int("num_maps", num_maps)
        self.blocks = nn.ModuleList(
            DBlock(width, width, clip_feature=True, **factory) for _ in range(num_maps - 1)
        )
        self.main = DBlock(width, channels, clip_feature=False, **factory)

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        out = maps[0]
        for block, feature in zip(self.blocks, maps[1:]):
            out = block(out, feature)
        return self.main(out)


class NetC(nn.Module):
    """GALIP's NetC: the sentence tiled over the map, concatenated, two convolutions to one logit.

    conv(``k1``, channels + E -> joint_channels, no bias), LeakyReLU(0.2), conv(``k2``,
    joint_channels -> 1, no bias), with ``k1 = g // 2 + 1`` and ``k2 = g - k1 + 1`` so a ``g x g``
    map ends at 1x1: the reference's 4 and 4 on ViT-B/32's 7x7 grid.

    Args:
        channels: channels of NetD's output.
        sentence_dim: sentence embedding size ``E``.
        grid: spatial size ``g`` of the maps.
        joint_channels: channels between the two convolutions.
        device: factory device.
        dtype: factory dtype.
    """

    def __init__(
        self,
        channels: int,
        sentence_dim: int,
        grid: int,
        joint_channels: int = 128,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = factory_kwargs(device, dtype)
        self.grid = check_positive_int("grid", grid)
        self.sentence_dim = check_positive_int("sentence_dim", sentence_dim)
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

    The image goes through :class:`CLIPImageEncoder` (frozen; gradients reach the image). ``net_d``
    folds the chosen blocks' patch-token maps, ``net_c`` scores them against the sentence.
    For MA-GP, take gradients with respect to the features and the sentence through
    :meth:`logits`::

        features = D.features(real)
        maps = tuple(m.detach().requires_grad_() for m in features.maps)
        sentence = sentence.detach().requires_grad_()
        out = D.logits(ImageFeatures(maps, features.embedding), sentence)
        grads = torch.autograd.grad(out.sum(), (*maps, sentence), create_graph=True)

    ``forward(images, sentence, return_features=True)`` returns the features beside the logits,
    their embedding being what the generator's CLIP-similarity loss needs.

    Args:
        clip_model: an open_clip CLIP model with a ViT image tower (shared, frozen in place).
        layers: blocks whose patch tokens NetD reads; by default the reference's 1, 4, 8 of 12,
            scaled to other depths (see :class:`CLIPImageEncoder`).
        channels: NetD's output channels (512 in the reference).
        joint_channels: NetC's inner channels (128 in the reference).
        device: factory device of NetD and NetC.
        dtype: factory dtype of NetD and NetC.

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
        self,
        clip_model: nn.Module,
        *,
        layers: Sequence[int] | None = None,
        channels: int = 512,
        joint_channels: int = 128,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = factory_kwargs(device, dtype)
        self.encoder = CLIPImageEncoder(clip_model, layers=layers)
        self.width, self.grid, self.sentence_dim = (
            self.encoder.width,
            self.encoder.grid,
            self.encoder.embed_dim,
        )
        self.net_d = NetD(self.width, channels, len(self.encoder.layers), **factory)
        self.net_c = NetC(channels, self.sentence_dim, self.grid, joint_channels, **factory)

    @property
    def layers(self) -> tuple[int, ...]:
        """The CLIP blocks whose patch tokens NetD reads."""
        return self.encoder.layers

    def features(self, images: Tensor) -> ImageFeatures:
        """The frozen CLIP features of ``images`` (in [-1, 1]); gradients reach the images."""
        return self.encoder(images)

    def image_code(self, features: ImageFeatures) -> Tensor:
        """NetD(features.maps): the caption-free image code that :meth:`match_logits` judges.

        Computing it once and judging it against several captions (matched and mismatched, as the
        discriminator loss does) runs NetD once instead of once per caption.
        """
        maps = features.maps
        if len(maps) != len(self.layers):
            raise ValueError(
                f"features must hold {len(self.layers)} maps (layers {self.layers}), got {len(maps)}"
            )
        for i, m in enumerate(maps):
            check_tensor(f"features.maps[{i}]", m, 4, "(B, width, g, g)")
            if tuple(m.shape[1:]) != (self.width, self.grid, self.grid):
                raise ValueError(
                    f"features.maps[{i}] must have shape (B, {self.width}, {self.grid}, {self.grid}), "
                    f"got {tuple(m.shape)}"
                )
        return self.net_d(maps)

    def match_logits(self, code: Tensor, sentence: Tensor) -> Tensor:
        """NetC(code, sentence): (B,) logits of how well each image code matches its sentence."""
        check_tensor("sentence", sentence, 2, "(B, embed_dim)")
        if sentence.shape[1] != self.sentence_dim:
            raise ValueError(
                f"sentence must have the CLIP model's embed_dim = {self.sentence_dim} features, "
                f"got shape {tuple(sentence.shape)}"
            )
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
