"""A run's frozen CLIP, and a trained generator loaded back for sampling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..clip import build_clip, tiny_clip
from ..models import RATLIPGenerator
from ..models.generator import WEIGHTS_FILE
from .checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint
from .config import TrainConfig
from .distributed import resolve_device

__all__ = ["build_clip_model", "load_generator"]


def build_clip_model(
    name: str, pretrained: str | None, *, weights_sha256: str | None = None,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, Any]:
    """The frozen CLIP of a run: ``"tiny"`` is :func:`ratlip_layers.clip.tiny_clip`, any other name an
    open_clip model; ``pretrained`` is an open_clip tag, a weights file (whose SHA-256 is
    ``weights_sha256``) or ``None``/``"none"`` for random weights."""
    if name != "tiny":
        return build_clip(name, pretrained, weights_sha256=weights_sha256, device=device)
    if pretrained is not None and pretrained.strip().lower() == "none":
        pretrained = None
    return tiny_clip(pretrained, weights_sha256=weights_sha256, device=device)


def load_generator(
    path: str | Path, *, device: torch.device | str = "cpu", use_ema: bool = True
) -> tuple[RATLIPGenerator, dict[str, Any]]:
    """Load a trained generator, in eval mode, for sampling or evaluation.

    Args:
        path: a run directory (its newest checkpoint is used), a checkpoint directory, or a
            directory written by :meth:`ratlip_layers.models.RATLIPGenerator.save_pretrained`.
        device: where to put it (``"auto"``: a GPU if there is one).
        use_ema: take the EMA weights when the checkpoint has them.

    Returns:
        ``(generator, info)``, ``info`` saying where the weights came from: ``source``, ``weights``
        (``"ema"`` or ``"generator"``), ``step`` and the run's ``config`` (``None`` for the last two
        from a ``save_pretrained`` directory).

    Example:
        >>> from ratlip_layers.training import load_generator
        >>> import tempfile
        >>> clip_model, tokenizer = tiny_clip()
        >>> G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)
        >>> G.save_pretrained(folder := tempfile.mkdtemp())
        >>> generator, info = load_generator(folder)
        >>> generator.training, info["weights"]
        (False, 'generator')
    """
    path, device = Path(path), resolve_device(str(device))
    if (path / WEIGHTS_FILE).is_file():
        generator = RATLIPGenerator.from_pretrained(path, device=device)
        return generator.eval(), {"source": str(path), "weights": "generator", "step": None, "config": None}
    try:
        checkpoint = load_checkpoint(resolve_checkpoint(path))
    except CheckpointError as err:  # only a generator loader also reads save_pretrained folders
        raise CheckpointError(f"{err}, or a save_pretrained folder (with {WEIGHTS_FILE})") from None
    config = TrainConfig.from_dict(checkpoint.config)
    # A random CLIP is stored in the checkpoint; any other is rebuilt from its tag or weights file.
    stored = "clip" in checkpoint.weights
    pretrained, sha256 = (None, None) if stored else (config.clip_pretrained, config.clip_sha256)
    clip_model, tokenizer = build_clip_model(config.clip_model, pretrained, weights_sha256=sha256)
    if stored:
        clip_model.load_state_dict(checkpoint.weights["clip"])
    generator = RATLIPGenerator(config.generator_config(), clip_model, tokenizer=tokenizer)
    which = "ema" if use_ema and "ema" in checkpoint.weights else "generator"
    generator.load_trainable_state_dict(checkpoint.weights[which])
    info = dict(source=str(checkpoint.path), weights=which, step=checkpoint.state.get("step"), config=config)
    return generator.to(device).eval(), info
