"""Building a run's frozen CLIP, and loading a trained generator back for sampling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..clip import build_clip, tiny_clip
from ..models import RATLIPGenerator
from .checkpoint import load_checkpoint, resolve_checkpoint
from .config import TrainConfig
from .distributed import resolve_device

__all__ = ["build_clip_model", "load_generator"]


def build_clip_model(
    name: str,
    pretrained: str | None,
    *,
    weights_sha256: str | None = None,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, Any]:
    """The frozen CLIP of a run: ``"tiny"`` is :func:`ratlip_layers.clip.tiny_clip`, anything else an
    open_clip model name; ``pretrained`` is an open_clip tag, a local weights file or ``None``/``"none"``
    for random weights, and ``weights_sha256`` the file's expected content hash."""
    if name == "tiny":
        if pretrained is not None and pretrained.strip().lower() == "none":
            pretrained = None
        return tiny_clip(pretrained, weights_sha256=weights_sha256, device=device)
    return build_clip(name, pretrained, weights_sha256=weights_sha256, device=device)


def load_generator(
    path: str | Path, *, device: torch.device | str = "cpu", use_ema: bool = True
) -> tuple[RATLIPGenerator, dict[str, Any]]:
    """Load a trained generator for sampling or evaluation, in eval mode.

    Args:
        path: a run directory (its newest checkpoint is used), a checkpoint directory, or a
            directory written by :meth:`ratlip_layers.models.RATLIPGenerator.save_pretrained`.
        device: where to put it (``"auto"``: a GPU if there is one).
        use_ema: take the EMA weights when the checkpoint has them.

    Returns:
        ``(generator, info)`` where ``info`` says where the weights came from (``source``,
        ``weights``: ``"ema"`` or ``"generator"``, ``step``, ``config``).

    Example:
        >>> import tempfile
        >>> from ratlip_layers.clip import tiny_clip
        >>> from ratlip_layers.models import GeneratorConfig, RATLIPGenerator
        >>> from ratlip_layers.training import load_generator
        >>> clip_model, tokenizer = tiny_clip()
        >>> folder = tempfile.mkdtemp()
        >>> RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer).save_pretrained(folder)
        >>> generator, info = load_generator(folder)
        >>> generator.training, info["weights"]
        (False, 'generator')
    """
    path = Path(path)
    device = resolve_device(str(device))
    pretrained_config = path / "config.json"
    if pretrained_config.is_file() and _json(pretrained_config).get("format") == "ratlip-generator":
        generator = RATLIPGenerator.from_pretrained(path, device=device)
        return generator.eval(), {"source": str(path), "weights": "generator", "step": None, "config": None}
    checkpoint = load_checkpoint(resolve_checkpoint(path), map_location="cpu")
    config = TrainConfig.from_dict(checkpoint.config)
    if "clip" in checkpoint.weights:
        clip_model, tokenizer = build_clip_model(config.clip_model, None, device="cpu")
        clip_model.load_state_dict(checkpoint.weights["clip"])
    else:
        clip_model, tokenizer = build_clip_model(
            config.clip_model, config.clip_pretrained, weights_sha256=config.clip_sha256, device="cpu"
        )
    generator = RATLIPGenerator(config.generator_config(), clip_model, tokenizer=tokenizer)
    which = "ema" if use_ema and "ema" in checkpoint.weights else "generator"
    generator.load_trainable_state_dict(checkpoint.weights[which])
    info = {
        "source": str(checkpoint.path),
        "weights": which,
        "step": checkpoint.state.get("step"),
        "config": config,
    }
    return generator.to(device).eval(), info


def _json(file: Path) -> dict:
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file} must hold a JSON object, got {type(data).__name__}")
    return data
