"""Building and freezing open_clip models: the only place that calls open_clip's factory."""

from __future__ import annotations

import copy
import difflib
import hashlib
import logging
import pickle
import re
from pathlib import Path
from typing import Any

import open_clip
import torch
from safetensors import SafetensorError
from torch import nn

from .._checks import check_device, check_divisible, check_positive_int, floating_dtype

__all__ = ["CLIP_SPEC_ATTR", "build_clip", "clip_spec", "file_sha256", "freeze_clip", "tiny_clip"]

CLIP_SPEC_ATTR = "ratlip_clip_spec"
"""Attribute under which :func:`build_clip` records how to rebuild a model (name, tag, kwargs)."""

_MODEL_SCHEMES = ("hf-hub:", "local-dir:")  # open_clip's for models that are not in its registry


def _not_random_init(record: logging.LogRecord) -> bool:
    """Drops open_clip's "no pretrained weights" warning: random weights (or a file's) were asked for."""
    return not record.getMessage().startswith("No pretrained weights loaded")


def freeze_clip(model: nn.Module) -> nn.Module:
    """Freeze ``model`` in place (no gradients, eval mode) and return it.

    Example:
        >>> clip_model = freeze_clip(nn.Linear(2, 2).train())
        >>> clip_model.training, clip_model.weight.requires_grad
        (False, False)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return model.requires_grad_(False).eval()


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's content, as hex: how a run records which weights file it used.

    Example:
        >>> from ratlip_layers.clip import file_sha256
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as f:
        ...     file_sha256(f.name)[:16]
        'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def clip_spec(model: nn.Module) -> dict[str, Any] | None:
    """How :func:`build_clip` built ``model`` (``model_name``, ``pretrained``, ``weights_sha256``,
    ``model_kwargs``); ``None`` for a model built otherwise, which a saved generator cannot rebuild.

    Example:
        >>> from ratlip_layers.clip import clip_spec
        >>> clip_spec(tiny_clip()[0])["model_name"], clip_spec(nn.Linear(2, 2))
        ('ViT-B-32', None)
    """
    return copy.deepcopy(getattr(model, CLIP_SPEC_ATTR, None))


def build_clip(model_name: str, pretrained: str | None = None, *, weights_sha256: str | None = None,
               device: torch.device | str | None = None, **model_kwargs: Any) -> tuple[nn.Module, Any]:
    """Build a frozen open_clip model and its tokenizer, ``(clip_model, tokenizer)``; the model records
    how (:func:`~ratlip_layers.clip.clip_spec`). ``ValueError`` means an unknown model or tag, or a
    missing, unreadable or foreign weights file.

    Args:
        model_name: e.g. ``"ViT-B-32"``.
        pretrained: an open_clip pretrained tag (the only case that downloads), a local weights file
            (safetensors or a ``torch.save`` of tensors), or ``None`` (random weights).
        weights_sha256: the expected SHA-256 of the weights file (:func:`file_sha256`); another
            file is refused, so a run rebuilt from its config gets the same CLIP.
        device, model_kwargs: CPU by default; the keyword arguments go to ``open_clip.create_model``.

    Example:
        >>> from ratlip_layers.clip import clip_spec
        >>> clip_model, tokenizer = build_clip(
        ...     "ViT-B-32", embed_dim=16,
        ...     vision_cfg=dict(image_size=16, layers=1, width=32, patch_size=8, head_width=16),
        ...     text_cfg=dict(context_length=8, width=32, heads=2, layers=1))
        >>> tokenizer(["a bird"]).shape, clip_spec(clip_model)["model_name"]
        (torch.Size([1, 8]), 'ViT-B-32')
    """
    if not isinstance(model_name, str) or not model_name:
        raise TypeError(f"model_name must be a non-empty str, got {model_name!r}")
    if pretrained is not None and not isinstance(pretrained, str):
        raise TypeError(f"pretrained must be None, an open_clip tag or a file path, got {pretrained!r}")
    device = check_device("device", device)
    if isinstance(pretrained, str) and pretrained.strip().lower() == "none":
        logging.getLogger(__name__).warning("build_clip: %s, random weights (pretrained='none')", model_name)
        pretrained = None
    if not model_name.startswith(_MODEL_SCHEMES) and model_name not in open_clip.list_models():
        close = " or ".join(map(repr, difflib.get_close_matches(model_name, open_clip.list_models(), n=3)))
        hint = f"; did you mean {close}?" if close else " (see open_clip.list_models())"
        raise ValueError(f"model_name must be an open_clip model name, got {model_name!r}{hint}")
    weights_file = _weights_file(model_name, pretrained)
    if weights_sha256 is not None:
        if weights_file is None:
            raise ValueError(f"weights_sha256 is given, but pretrained={pretrained!r} is not a weights file")
        if (found := file_sha256(weights_file)) != weights_sha256:
            raise ValueError(f"{weights_file} is not the weights file this was built with: its SHA-256 is "
                             f"{found}, expected {weights_sha256}")
    # open_clip warns through the root logger that weights are random; hidden only where that was
    # asked for (no weights, or a file loaded below), so a tag that fails to load is still reported.
    tag = None if weights_file else pretrained
    root = logging.getLogger()
    if tag is None:
        root.addFilter(_not_random_init)
    try:
        model = open_clip.create_model(model_name, pretrained=tag, device=device or "cpu", **model_kwargs)
    finally:
        root.removeFilter(_not_random_init)
    if weights_file:
        _load_weights_file(model, model_name, weights_file)
    tokenizer = open_clip.get_tokenizer(model_name, context_length=model.context_length)
    sha256 = (weights_sha256 or file_sha256(weights_file)) if weights_file else None
    setattr(model, CLIP_SPEC_ATTR, dict(model_name=model_name, pretrained=pretrained, weights_sha256=sha256,
                                        model_kwargs=copy.deepcopy(model_kwargs)))
    return freeze_clip(model), tokenizer


def _weights_file(model_name: str, pretrained: str | None) -> Path | None:
    """``pretrained`` as a local weights file; ``None`` for random weights or an open_clip tag."""
    if pretrained is None:
        return None
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if pretrained.lower() in (t.lower() for t in tags) or model_name.startswith(_MODEL_SCHEMES):
        return None
    path = Path(pretrained).expanduser()
    if path.is_file():
        return path
    why = "a directory" if path.is_dir() else "no such file"
    raise ValueError(f"pretrained must be None, 'none', an open_clip tag of {model_name} {tuple(tags)} or a "
                     f"weights file, got {pretrained!r} ({why})")


# What torch.load, safetensors and open_clip's loader raise on truncated, empty or foreign files.
_UNREADABLE = (pickle.UnpicklingError, AssertionError, RuntimeError, EOFError, OSError, KeyError, IndexError,
               ValueError, StopIteration, AttributeError, SafetensorError)


def _load_weights_file(model: nn.Module, model_name: str, path: Path) -> None:
    """Load a local weights file with open_clip's loader, turning its errors into one clear message."""
    try:
        open_clip.load_checkpoint(model, str(path), weights_only=True)
    except _UNREADABLE as err:
        lines = str(err).strip().splitlines() or [""]
        # torch.load's unpickling errors end with the reason, the others start with it.
        reason = f"{type(err).__name__}: {lines[-1] if isinstance(err, pickle.UnpicklingError) else lines[0]}"
        if found := re.search(r"Unsupported global: GLOBAL (\S+)", str(err)):
            raise ValueError(f"{path} holds objects other than tensors ({found.group(1)}); it is refused "
                             "unread (torch.load weights_only=True)") from None
        # open_clip's position-embedding resize asserts on other widths, load_state_dict on other keys.
        if isinstance(err, AssertionError) or (isinstance(err, RuntimeError) and "state_dict" in lines[0]):
            raise ValueError(f"{path} does not hold weights of {model_name}: {reason}") from None
        raise ValueError(f"{path} is not a readable weights file: {reason}") from None


def tiny_clip(pretrained: str | None = None, *, weights_sha256: str | None = None, image_size: int = 32,
              embed_dim: int = 32, context_length: int = 16, device: torch.device | str | None = None,
              dtype: torch.dtype | None = None) -> tuple[nn.Module, Any]:
    """A tiny ViT CLIP (both towers width 64 and 2 blocks, patch 8, CLIP's vocabulary) for tests, CPU
    runs and the built-in default training; returns ``(clip_model, tokenizer)`` as :func:`build_clip`.

    Args:
        pretrained, weights_sha256: a weights file of this architecture (as
            :func:`~ratlip_layers.training.pretrain_clip` writes) or ``None``, and as in :func:`build_clip`.
        image_size, embed_dim, context_length: the vision tower's input size (a multiple of 8), the
            joint embedding's size and the tokens per caption.
        device, dtype: of the model; CPU and float32 by default.

    Example:
        >>> clip_model, tokenizer = tiny_clip()
        >>> clip_model.encode_text(tokenizer(["a red bird"])).shape
        torch.Size([1, 32])
    """
    check_positive_int("embed_dim", embed_dim)
    check_positive_int("context_length", context_length)
    check_positive_int("image_size", image_size)
    check_divisible("image_size", image_size, 8, "the patch size")
    model, tokenizer = build_clip(
        "ViT-B-32", pretrained, weights_sha256=weights_sha256, device=device, embed_dim=embed_dim,
        vision_cfg=dict(image_size=image_size, layers=2, width=64, patch_size=8, head_width=32),
        text_cfg=dict(context_length=context_length, vocab_size=49408, width=64, heads=2, layers=2),
    )
    if floating_dtype(dtype) is not None:
        model.to(dtype=dtype)
    return model, tokenizer
