"""The frozen CLIP vision tower as a feature extractor for images in [-1, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch import Tensor, nn

from .._checks import check_same_device, check_size, check_tensor
from ..layers.config import repr_of
from ._vit import check_block_indices, default_feature_blocks, vision_tower
from .frozen import FrozenCLIP, WithFrozenCLIP

__all__ = ["CLIPImageEncoder", "ImageFeatures"]


class ImageFeatures(NamedTuple):
    """What :class:`CLIPImageEncoder` returns.

    Attributes:
        maps: the patch tokens after each chosen block, each (B, width, g, g).
        embedding: (B, embed_dim) unnormalised image embedding, CLIP's ``encode_image``.

    Example:
        >>> maps, embedding = CLIPImageEncoder(tiny_clip()[0], layers=[1])(torch.zeros(1, 3, 32, 32))
        >>> len(maps), maps[0].shape, embedding.shape
        (1, torch.Size([1, 64, 4, 4]), torch.Size([1, 32]))
    """

    maps: tuple[Tensor, ...]
    embedding: Tensor


class CLIPImageEncoder(WithFrozenCLIP):
    """Frozen CLIP ViT on images in [-1, 1] of any size (gradients reach them): patch-token maps, embedding.

    Args:
        clip_model: an open_clip CLIP model with a ViT image tower (frozen in place, shared).
        layers: the blocks whose patch tokens to return; default 1, 4, 8 of 12, the same fractions of others.

    Shape:
        - images: :math:`(B, 3, H, W)` in [-1, 1]
        - output: :class:`ImageFeatures` with ``len(layers)`` maps

    Example:
        >>> encoder = CLIPImageEncoder(tiny_clip()[0])
        >>> features = encoder(torch.rand(2, 3, 64, 64) * 2 - 1)
        >>> encoder.layers, features.maps[0].shape, features.embedding.shape
        ((0, 1), torch.Size([2, 64, 4, 4]), torch.Size([2, 32]))
    """

    def __init__(self, clip_model: nn.Module, *, layers: Sequence[int] | None = None) -> None:
        super().__init__()
        visual, geometry = vision_tower(clip_model)
        self.clip = FrozenCLIP(clip_model)
        self.width, self.depth, self.grid, self.image_size, self.embed_dim = geometry
        layers = default_feature_blocks(self.depth) if layers is None else layers
        self.layers = check_block_indices("layers", layers, self.depth)
        cfg = getattr(visual, "preprocess_cfg", None) or {}
        mean = cfg.get("mean", getattr(visual, "image_mean", None) or OPENAI_DATASET_MEAN)
        std = cfg.get("std", getattr(visual, "image_std", None) or OPENAI_DATASET_STD)
        self.interpolation = "bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic"
        device = visual.class_embedding.device
        self.register_buffer("mean", torch.tensor(mean, device=device).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, device=device).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, images: Tensor) -> Tensor:
        """Map images in [-1, 1] to CLIP's input: [0, 1], centre-cropped square, resized with the model's
        interpolation (antialiased), normalised with its mean and std."""
        check_tensor("images", images, 4, "(B, 3, H, W)")
        check_size("images", images, 1, 3, "channels")
        check_same_device((("images", images), ("the CLIP model", self.mean)))
        if images.numel() == 0:
            raise ValueError(f"images must hold at least one image of at least 1x1 pixels (resized to the "
                             f"tower's {self.image_size}x{self.image_size}), got shape {tuple(images.shape)}")
        height, width = images.shape[-2:]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        x = images[..., top : top + side, left : left + side] * 0.5 + 0.5
        if side != self.image_size:
            size = (self.image_size, self.image_size)
            x = F.interpolate(x, size=size, mode=self.interpolation, align_corners=False, antialias=True)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, images: Tensor) -> ImageFeatures:
        visual = self.clip.model.visual
        x = self.preprocess(images).to(visual.conv1.weight.dtype)
        # open_clip's maps are contiguous: strided views slowed the discriminator's convolutions (issue #14).
        out = visual.forward_intermediates(x, indices=list(self.layers))
        maps = tuple(m.to(images.dtype) for m in out["image_intermediates"])
        return ImageFeatures(maps, out["image_features"].to(images.dtype))

    extra_repr = repr_of("width", "grid", "image_size", "embed_dim", "layers")
