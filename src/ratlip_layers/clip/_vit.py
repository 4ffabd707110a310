"""What the CLIP parts need from an open_clip transformer, derived from the model, never hard-coded.
Tokens are batch-first throughout."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import torch
from open_clip.transformer import VisionTransformer
from torch import Tensor, nn

REFERENCE_DEPTH = 12
"""Depth of the ViT-B/32 tower the reference's block choices were made for."""


class ViTGeometry(NamedTuple):
    """Shapes of an open_clip vision transformer."""

    width: int
    depth: int
    grid: int
    image_size: int
    embed_dim: int


def vision_tower(clip_model: nn.Module) -> tuple[VisionTransformer, ViTGeometry]:
    """``clip_model``'s ViT tower and its shapes; an error unless it is a square, token-pooled ViT."""
    if not isinstance(clip_model, nn.Module):
        raise TypeError(f"clip_model must be an open_clip CLIP nn.Module, got {type(clip_model).__name__}")
    visual = getattr(clip_model, "visual", None)
    if not isinstance(visual, VisionTransformer):
        name = type(visual).__name__
        raise ValueError(f"clip_model must have an open_clip VisionTransformer (ViT) at .visual, got {name}")
    if getattr(visual, "attn_pool", None) is not None:
        raise ValueError("clip_model's ViT must pool its class or patch tokens, got an attentional pooler")
    if getattr(visual, "pool_type", "tok") not in ("tok", "avg"):
        raise ValueError(f"clip_model's ViT must have pool_type 'tok' or 'avg', got {visual.pool_type!r}")
    (grid, grid_w), (size, size_w) = visual.grid_size, visual.image_size
    if grid != grid_w or size != size_w:
        raise ValueError(f"clip_model's ViT must be square, got image size {(size, size_w)} "
                         f"and grid {(grid, grid_w)}")
    width = visual.class_embedding.shape[-1]
    embed_dim = visual.proj.shape[1] if visual.proj is not None else width
    return visual, ViTGeometry(width, len(visual.transformer.resblocks), grid, size, embed_dim)


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def default_feature_blocks(depth: int) -> tuple[int, ...]:
    """The blocks whose outputs the discriminator reads: the reference's 1, 4 and 8 (0-based) of
    ViT-B/32's 12, at the same fractions of other depths (rounded, duplicates merged).

    Example:
        >>> default_feature_blocks(12), default_feature_blocks(24), default_feature_blocks(2)
        ((1, 4, 8), (3, 9, 17), (0, 1))
    """
    return tuple(sorted({max(1, _round_half_up(k * depth / REFERENCE_DEPTH)) - 1 for k in (2, 5, 9)}))


def default_prompt_blocks(depth: int) -> tuple[int, ...]:
    """The blocks that get a prompt token in the CLIP mapper: the reference's 1 to 8 (0-based) of
    12, the same span of other depths.

    Example:
        >>> default_prompt_blocks(12), default_prompt_blocks(2)
        ((1, 2, 3, 4, 5, 6, 7, 8), (0, 1))
    """
    start = _round_half_up(depth / REFERENCE_DEPTH)
    stop = max(start + 1, _round_half_up(9 * depth / REFERENCE_DEPTH))
    return tuple(range(start, min(stop, depth)))


def check_block_indices(name: str, blocks: object, depth: int) -> tuple[int, ...]:
    """Validate a non-empty, strictly increasing sequence of block indices in ``[0, depth)``."""
    if isinstance(blocks, (str, bytes)) or not isinstance(blocks, Iterable):
        raise TypeError(f"{name} must be a sequence of block indices, got {type(blocks).__name__}")
    blocks = tuple(blocks)
    if not blocks or any(isinstance(b, bool) or not isinstance(b, int) for b in blocks):
        raise ValueError(f"{name} must be a non-empty sequence of int block indices, got {blocks!r}")
    if any(b < 0 or b >= depth for b in blocks) or any(a >= b for a, b in zip(blocks, blocks[1:])):
        raise ValueError(f"{name} must be strictly increasing block indices in [0, {depth - 1}] (the CLIP "
                         f"tower has {depth} blocks), got {blocks!r}")
    return blocks


def embed_patches(visual: VisionTransformer, patches: Tensor) -> Tensor:
    """Class token, positional embedding, patch dropout and ``ln_pre``, as in open_clip's ViT."""
    cls = visual.class_embedding.to(patches.dtype).expand(patches.shape[0], 1, -1)
    x = torch.cat((cls, patches), dim=1) + visual.positional_embedding.to(patches.dtype)
    return visual.ln_pre(visual.patch_dropout(x))


def run_blocks(transformer: nn.Module, x: Tensor, prompts: Mapping[int, Tensor]) -> Tensor:
    """Run batch-first tokens ``x`` through every block of an open_clip ``Transformer`` (sequence-first
    if built so), with ``prompts[i]``, a (B, width) token, appended before block ``i``, dropped after it."""
    seq_first = not getattr(transformer, "batch_first", False)
    for i, block in enumerate(transformer.resblocks):
        prompt = prompts.get(i)
        if prompt is not None:
            x = torch.cat((x, prompt.unsqueeze(1)), dim=1)
        x = block(x.transpose(0, 1)).transpose(0, 1) if seq_first else block(x)
        if prompt is not None:
            x = x[:, :-1]
    return x
