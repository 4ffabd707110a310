"""The frozen CLIP text tower as a conditioning source: sentence embedding, token features, padding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import open_clip
import torch
from open_clip.transformer import TextTransformer, text_global_pool
from torch import Tensor, nn

from .._checks import check_captions, check_same_device
from ..layers.config import repr_of
from .build import build_clip
from .frozen import FrozenCLIP, WithFrozenCLIP

__all__ = ["CLIPTextAdapter", "TextEncoding"]


class TextEncoding(NamedTuple):
    """What :class:`CLIPTextAdapter` returns for a batch of captions.

    Attributes:
        sentence: (B, embed_dim) unnormalised sentence embeddings, CLIP's ``encode_text``.
        tokens: (B, L, width) token features after the final layer norm.
        padding_mask: (B, L) bool, True after each caption's end-of-text token.

    Example:
        >>> sentence, tokens, padding_mask = CLIPTextAdapter(tiny_clip()[0])(["a bird"])
        >>> int((~padding_mask).sum())  # start, "a", "bird", end
        4
    """

    sentence: Tensor
    tokens: Tensor
    padding_mask: Tensor


class CLIPTextAdapter(WithFrozenCLIP):
    """Frozen CLIP text encoder: captions or token ids in, sentence and token features out.

    Args:
        clip_model: an open_clip CLIP model (frozen in place, shared).
        tokenizer: captions -> token ids; by default open_clip's CLIP tokenizer, made on first use.

    Shape:
        - input: token ids :math:`(B, L)` with :math:`L \\le` ``context_length``, or a list of B strings
        - output: :class:`TextEncoding`

    Example:
        >>> clip_model, tokenizer = tiny_clip()
        >>> enc = CLIPTextAdapter(clip_model, tokenizer=tokenizer)(["a small red bird", "a yellow flower"])
        >>> enc.sentence.shape, enc.tokens.shape, enc.padding_mask[0, :7].tolist()
        (torch.Size([2, 32]), torch.Size([2, 16, 64]), [False, False, False, False, False, False, True])
    """

    def __init__(self, clip_model: nn.Module, *, tokenizer: Any = None) -> None:
        super().__init__()
        text = getattr(clip_model, "text", None)
        root = text if isinstance(text, TextTransformer) else clip_model  # CLIP holds the parts itself
        parts = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")
        if not all(hasattr(root, part) for part in parts):
            raise ValueError(f"clip_model must have an open_clip text transformer ({', '.join(parts)}); got "
                             f"{type(clip_model).__name__} with text tower {type(text).__name__}")
        if getattr(root, "cls_emb", None) is not None or getattr(root, "use_pad_mask", False):
            raise ValueError("clip_model's text tower must be CLIP's causal one, got a CoCa/padded variant")
        # A TextTransformer names them pool_type and eos_id, CLIP (text parts at the top) text_*.
        self._pool_type = getattr(root, "pool_type", getattr(root, "text_pool_type", "argmax"))
        self._eos_id = getattr(root, "eos_id", getattr(root, "text_eos_id", None))
        if self._pool_type not in ("argmax", "eos"):
            raise ValueError(f"clip_model's text tower must pool at the end of text, got {self._pool_type!r}")
        if tokenizer is not None and not callable(tokenizer):
            raise TypeError(f"tokenizer must be callable (captions -> ids), got {type(tokenizer).__name__}")
        self.clip = FrozenCLIP(clip_model)
        self._text_in_submodule, self._tokenizer = root is not clip_model, tokenizer
        self.context_length, self.width = root.positional_embedding.shape
        self.vocab_size: int = root.token_embedding.num_embeddings
        proj = root.text_projection  # a matrix, an nn.Linear or absent
        linear = isinstance(proj, nn.Linear)
        self.embed_dim: int = self.width if proj is None else proj.out_features if linear else proj.shape[1]

    @classmethod
    def from_pretrained(cls, model_name: str, pretrained: str | None = None, *,
                        device: torch.device | str | None = None, **model_kwargs: Any) -> CLIPTextAdapter:
        """Build the adapter from an open_clip model name and ``pretrained``, as :func:`build_clip` does."""
        clip_model, tokenizer = build_clip(model_name, pretrained, device=device, **model_kwargs)
        return cls(clip_model, tokenizer=tokenizer)

    @property
    def _root(self) -> nn.Module:
        return self.clip.model.text if self._text_in_submodule else self.clip.model

    @property
    def tokenizer(self) -> Any:
        """The tokenizer used for string input (open_clip's CLIP tokenizer unless one was given)."""
        if self._tokenizer is None:
            self._tokenizer = open_clip.SimpleTokenizer(context_length=self.context_length)
        return self._tokenizer

    def tokenize(self, captions: Sequence[str]) -> Tensor:
        """Token ids (B, context_length) of ``captions``, on the model's device."""
        tokens = self.tokenizer(check_captions("captions", captions))
        return tokens.to(self._root.positional_embedding.device)

    def _check_tokens(self, tokens: Tensor) -> None:
        shape, dtype = tuple(tokens.shape), tokens.dtype
        if len(shape) != 2 or dtype.is_floating_point or dtype.is_complex or dtype is torch.bool:
            raise ValueError(f"token ids must be an integer tensor of shape (B, L), got {dtype} {shape}")
        if shape[0] == 0:
            raise ValueError(f"token ids must hold at least one caption, got shape {shape}")
        if not 1 <= shape[1] <= self.context_length:
            raise ValueError(f"token ids need 1 <= L <= context_length = {self.context_length}, got {shape}")
        check_same_device((("token ids", tokens), ("the CLIP model", self._root.positional_embedding)))
        # One host read for both ends: an id outside the vocabulary would otherwise kill a CUDA
        # context with a device-side assert instead of raising here.
        (low, high), vocab = torch.stack(torch.aminmax(tokens)).tolist(), self.vocab_size
        if low < 0 or high >= vocab:
            raise ValueError(f"token ids must lie in the vocabulary [0, {vocab - 1}], got [{low}, {high}]")

    def forward(self, text: Tensor | Sequence[str]) -> TextEncoding:
        tokens = text if isinstance(text, Tensor) else self.tokenize(text)
        self._check_tokens(tokens)
        root, length, cast_dtype = self._root, tokens.shape[1], self._root.transformer.get_cast_dtype()
        x = root.token_embedding(tokens).to(cast_dtype) + root.positional_embedding[:length].to(cast_dtype)
        attn_mask = root.attn_mask[:length, :length] if root.attn_mask is not None else None
        x = root.ln_final(root.transformer(x, attn_mask=attn_mask))
        sentence = text_global_pool(x, tokens, self._pool_type, eos_token_id=self._eos_id)
        proj = root.text_projection
        if isinstance(proj, nn.Linear):
            sentence = proj(sentence)
        elif proj is not None:
            sentence = sentence @ proj
        end = (tokens if self._pool_type == "argmax" else (tokens == self._eos_id).int()).argmax(dim=-1)
        return TextEncoding(sentence, x, torch.arange(length, device=tokens.device) > end[:, None])

    extra_repr = repr_of("context_length", "width", "embed_dim")
