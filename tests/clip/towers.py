"""Small open_clip models of different shapes for the CLIP and model tests (random weights, CPU)."""

from __future__ import annotations

import open_clip
import torch
from torch import nn

from ratlip_layers import build_clip, tiny_clip

ALT_KWARGS = {
    "embed_dim": 24,
    "force_custom_text": True,  # text tower at .text (CustomTextCLIP), unlike tiny_clip's CLIP
    "vision_cfg": {
        "image_size": 28,
        "patch_size": 4,  # a 7x7 grid, like ViT-B/32 at 224 px
        "layers": 3,
        "width": 32,
        "head_width": 16,
        "pool_type": "avg",
        "final_ln_after_pool": True,
    },
    "text_cfg": {"context_length": 12, "vocab_size": 49408, "width": 48, "heads": 4, "layers": 1},
}


def make_clip(kind: str) -> tuple[nn.Module, object]:
    """``"tiny"``: ``tiny_clip()`` (CLIP, 4x4 grid, 2 blocks, token pooling); ``"alt"``: CustomTextCLIP,
    7x7 grid, 3 blocks, average pooling with the final norm after it."""
    if kind == "tiny":
        return tiny_clip()
    return build_clip("ViT-B-32", **ALT_KWARGS)


def vit_clip(*, image_size: int, patch_size: int, width: int, layers: int, embed_dim: int = 16) -> nn.Module:
    """A ViT CLIP of the given vision shapes with a one-block text tower."""
    model, _ = build_clip(
        "ViT-B-32",
        embed_dim=embed_dim,
        vision_cfg={
            "image_size": image_size,
            "patch_size": patch_size,
            "layers": layers,
            "width": width,
            "head_width": width // 2,
        },
        text_cfg={"context_length": 8, "vocab_size": 49408, "width": 16, "heads": 1, "layers": 1},
    )
    return model


def resnet_clip() -> nn.Module:
    """A tiny CLIP whose image tower is a ModifiedResNet (not a ViT)."""
    return open_clip.create_model(
        "RN50",
        pretrained=None,
        embed_dim=16,
        vision_cfg={"layers": (1, 1, 1, 1), "width": 8, "image_size": 32, "head_width": 8},
        text_cfg={"context_length": 8, "vocab_size": 49408, "width": 16, "heads": 1, "layers": 1},
    )


def images(batch: int, size: int, *, seed: int = 0) -> torch.Tensor:
    """Images in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1
