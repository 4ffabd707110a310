"""Sampling a trained generator: one row of images per caption, reproducible from a seed."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..metrics import fixed_noise

__all__ = ["sample_images"]


@torch.no_grad()
def sample_images(
    generator: nn.Module,
    captions: Sequence[str],
    *,
    n: int,
    seed: int = 0,
    text_encoder: nn.Module | None = None,
) -> Tensor:
    """``n`` images per caption, caption by caption, in ``[-1, 1]``.

    Column ``j`` of every caption uses the same noise, drawn from ``seed`` alone, so rows differ only
    by their caption and the same seed gives the same images. The generator is run in eval mode.

    Args:
        generator: a :class:`ratlip_layers.models.RATLIPGenerator` (``(noise, sentence) -> images``).
        captions: the captions, one row each.
        n: images per caption.
        seed: the noise seed.
        text_encoder: encodes the captions; by default ``generator.text``.

    Returns:
        ``(len(captions) * n, 3, S, S)`` images.

    Example:
        >>> from ratlip_layers.clip import tiny_clip
        >>> from ratlip_layers.models import GeneratorConfig, RATLIPGenerator
        >>> from ratlip_layers.training import sample_images
        >>> clip_model, tokenizer = tiny_clip()
        >>> G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)
        >>> images = sample_images(G, ["a red circle on a blue background", "a black square on a red background"],
        ...                        n=3, seed=0)
        >>> images.shape, torch.equal(images, sample_images(G, ["a red circle on a blue background",
        ...                                                     "a black square on a red background"], n=3, seed=0))
        (torch.Size([6, 3, 32, 32]), True)
    """
    if isinstance(captions, str) or not captions:
        raise ValueError(f"captions must be a non-empty list of str, got {captions!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    text = text_encoder if text_encoder is not None else generator.text
    device = next(p.device for p in generator.parameters())
    sentence = text(list(captions)).sentence.float().repeat_interleave(n, dim=0)
    noise = fixed_noise(list(range(n)), generator.z_dim, seed).to(device).repeat(len(captions), 1)
    was_training = generator.training
    generator.eval()
    try:
        return generator(noise, sentence).float().clamp(-1.0, 1.0)
    finally:
        generator.train(was_training)
