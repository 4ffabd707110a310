"""CLIP score: how well generated images match their captions according to a CLIP model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric

from .._checks import check_captions, check_tensor
from ..clip import CLIPImageEncoder, CLIPTextAdapter

__all__ = ["CLIPScore"]


class CLIPScore(Metric):
    """``100 * mean cos(CLIP image embedding, CLIP text embedding)`` over all (image, caption) pairs, by
    an open_clip ViT ``clip_model`` (frozen in place, shared) and its ``tokenizer`` (by default CLIP's).

    Example:
        >>> from ratlip_layers.metrics import CLIPScore
        >>> metric = CLIPScore(tiny_clip()[0])
        >>> metric.update(torch.rand(2, 3, 32, 32) * 2 - 1, ["a red circle", "a blue square"])
        >>> sorted(metric.compute())
        ['clip_score']
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, clip_model: nn.Module, *, tokenizer: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image_encoder = CLIPImageEncoder(clip_model)
        self.text_encoder = CLIPTextAdapter(clip_model, tokenizer=tokenizer)
        self.add_state("score_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @torch.no_grad()
    def update(self, images: Tensor, captions: Sequence[str]) -> None:
        """Score ``images`` (in ``[-1, 1]``) against ``captions``."""
        check_tensor("images", images, 4, "(B, 3, H, W)")
        captions = check_captions("captions", captions)
        if len(captions) != images.shape[0]:
            raise ValueError(f"got {images.shape[0]} images but {len(captions)} captions")
        image_embedding = self.image_encoder(images.float()).embedding.float()
        text_embedding = self.text_encoder(captions).sentence.float()
        self.score_sum += 100.0 * F.cosine_similarity(image_embedding, text_embedding, dim=-1).double().sum()
        self.total += len(captions)

    def compute(self) -> dict[str, float]:
        if int(self.total) == 0:
            raise RuntimeError("CLIPScore.compute() called before any update()")
        return {"clip_score": float(self.score_sum / self.total)}
