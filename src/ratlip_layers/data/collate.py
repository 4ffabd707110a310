"""Batching captioned images: stack the images and tokenise the captions with the CLIP tokenizer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from .._checks import check_captions

__all__ = ["CaptionBatch", "CaptionCollate"]


class CaptionBatch(NamedTuple):
    """A batch: ``images`` (B, 3, S, S) in [-1, 1], ``tokens`` (B, L) token ids, the ``captions``.

    Example:
        >>> from ratlip_layers.data import CaptionBatch
        >>> batch = CaptionBatch(torch.zeros(2, 3, 8, 8), torch.zeros(2, 4, dtype=torch.long), ["a", "b"])
        >>> batch.images.shape, batch.captions
        (torch.Size([2, 3, 8, 8]), ['a', 'b'])
    """

    images: Tensor
    tokens: Tensor
    captions: list[str]


class CaptionCollate:
    """``collate_fn`` for datasets of ``(image, caption)``, with a CLIP ``tokenizer`` (list of str ->
    ``(B, L)`` token ids); tokenising here keeps it in the workers.

    Example:
        >>> from ratlip_layers.data import CaptionCollate
        >>> collate = CaptionCollate(lambda texts: torch.zeros(len(texts), 4, dtype=torch.long))
        >>> batch = collate([(torch.zeros(3, 8, 8), "a"), (torch.ones(3, 8, 8), "b")])
        >>> batch.images.shape, batch.tokens.shape, batch.captions
        (torch.Size([2, 3, 8, 8]), torch.Size([2, 4]), ['a', 'b'])
    """

    def __init__(self, tokenizer: Callable[[list[str]], Tensor]) -> None:
        if not callable(tokenizer):
            raise TypeError(f"tokenizer must be callable, got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer

    def __call__(self, items: Sequence[tuple[Tensor, str]]) -> CaptionBatch:
        if not items:
            raise ValueError("CaptionCollate needs at least one (image, caption) item, got an empty batch")
        for i, item in enumerate(items):
            is_sequence = isinstance(item, (tuple, list))
            if not is_sequence or len(item) != 2 or not isinstance(item[0], Tensor):
                parts = f" of ({', '.join(type(x).__name__ for x in item)})" if is_sequence else ""
                raise TypeError(f"items[{i}] must be an (image tensor, caption) pair, "
                                f"got {type(item).__name__}{parts}")
            if item[0].shape != items[0][0].shape:
                raise ValueError(f"items[{i}]'s image must have the shape of items[0]'s, "
                                 f"{tuple(items[0][0].shape)}, got {tuple(item[0].shape)}")
        captions = check_captions("captions", [caption for _, caption in items])
        return CaptionBatch(torch.stack([image for image, _ in items]), self.tokenizer(captions), captions)
