"""The training run's configuration: every option of ``examples/train_cub.py``, with two presets."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.build import DATASETS
from ..models import GeneratorConfig

__all__ = ["AMP_MODES", "NONFINITE_POLICIES", "RECIPES", "TrainConfig"]

AMP_MODES = ("off", "bf16", "fp16")
"""The ``--amp`` choices: full precision, bfloat16 autocast, float16 autocast with loss scaling."""
NONFINITE_POLICIES = ("stop", "skip")
"""The ``--on-nonfinite`` choices."""

RECIPES: dict[str, dict[str, Any]] = {
    # SPEC section 4: the reference's recipe on ViT-B/32 at 224 px (batch 64 per GPU on 8 GPUs).
    "paper": {
        "imsize": 224,
        "batch_size": 64,
        "epochs": 1500,
        "lr_g": 1e-4,
        "lr_d": 4e-4,
        "sim_weight": 4.0,
        "magp_weight": 2.0,
        "magp_power": 6.0,
        "clip_model": "ViT-B-32-quickgelu",
        "clip_pretrained": "openai",
        "d_channels": 512,
        "d_joint_channels": 128,
        "seed": 100,
        "eval_images": 30_000,
    },
    # The built-in CPU run: tiny networks on `shapes` with a random tiny CLIP, about 7.5 minutes on 2
    # cores. A random CLIP's image embedding means nothing, so the similarity term is off and NetC
    # alone teaches the match; a weak MA-GP lets NetC separate captions whose sentence embeddings
    # are nearly equal. Each departure from the paper was measured: docs/training.rst.
    "tiny": {
        "imsize": 32,
        "batch_size": 32,
        "steps": 4500,
        "lr_g": 1.6e-3,
        "lr_d": 3.2e-3,
        "sim_weight": 0.0,
        "magp_weight": 0.02,
        "magp_power": 6.0,
        "clip_model": "tiny",
        "clip_pretrained": None,
        "d_channels": 128,
        "d_joint_channels": 64,
        "seed": 0,
        "eval_images": 512,
        "sample_every": 500,
        "eval_every": 0,
        "save_every": 1000,
    },
}
"""Per-preset defaults for the options left unset; the generator preset of the same name goes with each."""


@dataclass
class TrainConfig:
    """Everything a training run needs; ``None`` fields take the preset's value (see :data:`RECIPES`).

    Build with :meth:`resolve`, which fills the preset's values and checks the result.

    Example:
        >>> from ratlip_layers.training import TrainConfig
        >>> cfg = TrainConfig.resolve(preset="tiny", steps=10)
        >>> cfg.dataset, cfg.imsize, cfg.steps, cfg.clip_model
        ('shapes', 32, 10, 'tiny')
    """

    preset: str = "tiny"
    dataset: str = "shapes"
    data_dir: str | None = None
    imsize: int | None = None
    batch_size: int | None = None
    steps: int | None = None
    epochs: int | None = None
    lr_g: float | None = None
    lr_d: float | None = None
    sim_weight: float | None = None
    magp_weight: float | None = None
    magp_power: float | None = None
    amp: str = "off"
    ema: float = 0.999
    compile: bool = False
    channels_last: bool = False
    seed: int | None = None
    device: str = "auto"
    num_workers: int = 0
    clip_model: str | None = None
    clip_pretrained: str | None = None
    d_channels: int | None = None
    d_joint_channels: int | None = None
    out: str | None = None
    resume: str | None = None
    log_every: int = 50
    sample_every: int | None = None
    eval_every: int | None = None
    save_every: int | None = None
    keep_checkpoints: int = 3
    on_nonfinite: str = "stop"
    eval_images: int | None = None
    fid_features: str = "clip"
    inception_weights: str | None = None
    fid_cache: str | None = None
    strict_data: bool = False

    @classmethod
    def resolve(cls, **options: Any) -> TrainConfig:
        """A config from keyword options: unset (``None``) ones take the preset's value.

        Raises:
            ValueError: an option is out of range, or names an unknown preset, dataset or mode.
        """
        unknown = sorted(set(options) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown training options {unknown}")
        preset = options.get("preset") or "tiny"
        if preset not in RECIPES:
            raise ValueError(f"preset must be one of {tuple(RECIPES)}, got {preset!r}")
        recipe = RECIPES[preset]
        given = {k: v for k, v in options.items() if v is not None}
        if "steps" in given or "epochs" in given:
            # --steps and --epochs replace the preset's budget together.
            recipe = {k: v for k, v in recipe.items() if k not in ("steps", "epochs")}
        merged = {
            **{k: v for k, v in recipe.items() if k in {f.name for f in dataclasses.fields(cls)}},
            **given,
        }
        merged.setdefault("sample_every", 1000)
        merged.setdefault("eval_every", 0)
        merged.setdefault("save_every", 1000)
        merged.setdefault("out", f"runs/{merged.get('dataset', 'shapes')}-{preset}")
        config = cls(**merged)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first option that is out of range."""
        if self.preset not in RECIPES:
            raise ValueError(f"preset must be one of {tuple(RECIPES)}, got {self.preset!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"on_nonfinite must be one of {NONFINITE_POLICIES}, got {self.on_nonfinite!r}")
        if self.fid_features not in ("clip", "inception"):
            raise ValueError(f"fid_features must be 'clip' or 'inception', got {self.fid_features!r}")
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(
                f"give exactly one of steps and epochs, got steps={self.steps}, epochs={self.epochs}"
            )
        for name in (
            "imsize",
            "batch_size",
            "steps",
            "epochs",
            "d_channels",
            "d_joint_channels",
            "eval_images",
            "keep_checkpoints",
            "log_every",
        ):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("sample_every", "eval_every", "save_every", "num_workers", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0 (0 turns it off), got {value!r}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("sim_weight", "magp_weight", "magp_power"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be a decay in [0, 1) (0 turns EMA off), got {self.ema}")
        self.generator_config()

    def generator_config(self) -> GeneratorConfig:
        """The generator's config: the preset's, at ``imsize``."""
        return GeneratorConfig.preset(self.preset, image_size=self.imsize)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config saved with :meth:`to_dict`."""
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}")
        config = cls(**data)
        config.validate()
        return config

    def save(self, path: str | Path) -> None:
        """Write the config as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
