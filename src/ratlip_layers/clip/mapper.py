"""GALIP's CLIP mapper: the frozen CLIP vision transformer run on a generator feature map."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor, nn

from .._checks import check_positive_int, check_same_batch, check_same_device, check_shape
from ..layers.config import repr_of
from ._vit import check_block_indices, default_prompt_blocks, embed_patches, run_blocks
from ._vit import vision_tower
from .frozen import FrozenCLIP, WithFrozenCLIP

__all__ = ["CLIPMapper"]


class CLIPMapper(WithFrozenCLIP):
    """The frozen CLIP ViT fed a feature map as its patch embeddings, with a prompt token predicted from
    the condition by ``fc_prompt`` (the only trained part) appended before each block in
    ``prompt_blocks`` and dropped after it. Gradients reach the map.

    Args:
        clip_model, cond_dim: an open_clip CLIP model with a ViT image tower (frozen in place, shared),
            and the size of the condition vector the prompts are predicted from.
        prompt_blocks: the blocks that get a prompt; by default 1 to 8 of 12, the same span of others.
        device, dtype: factory device and dtype of ``fc_prompt``.

    Shape:
        - x: :math:`(B, \\text{width}, g, g)`, CLIP's width and grid
        - cond: :math:`(B, \\text{cond\\_dim})`
        - output: :math:`(B, \\text{width}, g, g)`

    Example:
        >>> mapper = CLIPMapper(tiny_clip()[0], cond_dim=48)
        >>> mapper(torch.randn(2, 64, 4, 4), torch.randn(2, 48)).shape
        torch.Size([2, 64, 4, 4])
    """

    def __init__(self, clip_model: nn.Module, cond_dim: int, *, prompt_blocks: Sequence[int] | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        _, geometry = vision_tower(clip_model)
        self.clip = FrozenCLIP(clip_model)
        self.width, self.grid = geometry.width, geometry.grid
        self.cond_dim = check_positive_int("cond_dim", cond_dim)
        blocks = default_prompt_blocks(geometry.depth) if prompt_blocks is None else prompt_blocks
        self.prompt_blocks = check_block_indices("prompt_blocks", blocks, geometry.depth)
        self.fc_prompt = nn.Linear(cond_dim, len(self.prompt_blocks) * self.width, device=device, dtype=dtype)

    def prompts(self, cond: Tensor) -> Tensor:
        """The prompt tokens predicted from ``cond``: (B, len(prompt_blocks), width)."""
        check_shape("cond", cond, (self.cond_dim,))
        out = self.fc_prompt(cond.to(self.fc_prompt.weight.dtype))
        return rearrange(out, "b (p d) -> b p d", d=self.width)

    def transform(self, x: Tensor, prompts: Tensor) -> Tensor:
        """Run CLIP on the map ``x`` with precomputed ``prompts`` (from :meth:`prompts`)."""
        check_shape("x", x, (self.width, self.grid, self.grid))
        check_shape("prompts", prompts, (len(self.prompt_blocks), self.width))
        check_same_batch((("x", x), ("prompts", prompts)))
        check_same_device((("x", x), ("prompts", prompts)))
        visual = self.clip.model.visual
        clip_dtype = visual.conv1.weight.dtype
        tokens = embed_patches(visual, rearrange(x.to(clip_dtype), "b c h w -> b (h w) c"))
        by_block = {b: prompts[:, i].to(clip_dtype) for i, b in enumerate(self.prompt_blocks)}
        tokens = run_blocks(visual.transformer, tokens, by_block)
        return rearrange(tokens[:, 1:], "b (h w) c -> b c h w", h=self.grid).to(x.dtype)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.transform(x, self.prompts(cond))

    extra_repr = repr_of("width", "grid", "cond_dim", "prompt_blocks")
