"""The training run's configuration: every option of ``examples/train_cub.py``, declared once, with
its command-line help, group, choices and check in its field's metadata.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import write_atomic
from ..data.build import DATASETS
from ..models import GeneratorConfig
from .step import AMP_MODES, NONFINITE_POLICIES

__all__ = ["FID_FEATURES", "RECIPES", "TrainConfig"]

FID_FEATURES = ("clip", "inception", "torchvision")
"""The ``--fid-features`` choices: the run's CLIP, torchmetrics' TF-FID Inception, or torchvision's
ImageNet Inception as the DF-GAN/GALIP/RATLIP papers compute FID."""

RECIPES: dict[str, dict[str, Any]] = {
    # SPEC section 4: the reference's recipe on ViT-B/32 at 224 px (batch 64 per GPU on 8 GPUs).
    "paper": dict(
        imsize=224, batch_size=64, epochs=1500, lr_g=1e-4, lr_d=4e-4, sim_weight=4.0, mode_seeking_weight=0.0,
        magp_weight=2.0, magp_power=6.0, clip_model="ViT-B-32-quickgelu", clip_pretrained="openai",
        d_channels=512, d_joint_channels=128, seed=100, eval_images=30_000, sample_every=1000, eval_every=0,
        save_every=1000,
    ),
    # The built-in CPU run: tiny networks on `shapes`, the tiny CLIP pre-trained on its captions first
    # (cached; about 2 minutes on 2 cores) so that D and the similarity term know them, as in the
    # paper; each departure from the paper was measured (docs/training.rst).
    "tiny": dict(
        imsize=32, batch_size=32, steps=2500, lr_g=1.6e-3, lr_d=3.2e-3, sim_weight=4.0,
        mode_seeking_weight=0.0, magp_weight=0.02, magp_power=6.0, clip_model="tiny",
        clip_pretrained="pretrain", d_channels=128, d_joint_channels=64, seed=0, eval_images=512,
        sample_every=500, eval_every=1000, save_every=1000,
    ),
}
"""Per-preset defaults for the options left unset; the generator preset of the same name goes with each."""


_GROUPS = {
    "recipe": "recipe (unset options take the preset's value)", "data": "data", "execution": "execution",
    "run": "run directory", "evaluation": "evaluation",
}
"""The command line's argument groups, in ``--help`` order."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _is_number(value: Any) -> bool:
    """A finite int or float: NaN and infinity pass every comparison check, so refuse them here."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# What ``validate`` requires of a field with ``check`` metadata: (test, what the message says).
_CHECKS: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "positive": (lambda v: v is None or (_is_int(v) and v >= 1), "a positive int"),
    "count": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "rate": (lambda v: _is_number(v) and v > 0, "a finite number > 0"),
    "weight": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "decay": (lambda v: _is_number(v) and 0.0 <= v < 1.0, "a decay in [0, 1) (0 turns EMA off)"),
}


def _option(default: Any, group: str, help: str, **metadata: Any) -> Any:
    """A field with its command-line metadata: ``group`` (a key of ``_GROUPS``), ``help`` and
    optionally ``choices``, ``metavar``, ``check`` (a key of ``_CHECKS``), ``exclusive`` (the name
    of a set of options of which at most one may be given) and ``fixed`` (the option shapes the
    networks or the data, so a resumed run must keep it)."""
    return dataclasses.field(default=default, metadata={"group": group, "help": help, **metadata})


def _check_names(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown training options {unknown}")


def _add_arguments(cls: type, parser: argparse.ArgumentParser, titles: dict[str, str]) -> dict[str, Any]:
    """Add one ``--option`` per field of the dataclass ``cls`` (declared with ``_option``) to
    ``parser``, in argument groups titled by ``titles``; returns the groups by key."""
    groups = {key: parser.add_argument_group(title) for key, title in titles.items()}
    exclusive: dict[str, Any] = {}
    types = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        group = groups[meta["group"]]
        if "exclusive" in meta:
            if meta["exclusive"] not in exclusive:
                exclusive[meta["exclusive"]] = group.add_mutually_exclusive_group()
            group = exclusive[meta["exclusive"]]
        flag = "--" + f.name.replace("_", "-")
        hint = types[f.name]  # e.g. int | None: parse an int, None being "unset"
        kind = next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))
        if kind is bool:
            group.add_argument(flag, action="store_true", help=meta["help"])
            continue
        shown = "" if f.default is None else f" (default {f.default})"
        group.add_argument(
            flag, type=kind, default=f.default, choices=meta.get("choices"), metavar=meta.get("metavar"),
            help=meta["help"] + shown,
        )
    return groups


def _check_fields(config: Any) -> None:
    """Raise ``ValueError`` naming the first field of a dataclass declared with ``_option`` whose
    value is not among its ``choices`` or fails its ``check``."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"{f.name} must be one of {choices}, got {value!r}")
        if "check" in f.metadata:
            test, what = _CHECKS[f.metadata["check"]]
            if not test(value):
                raise ValueError(f"{f.name} must be {what}, got {value!r}")


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

    preset: str = _option("tiny", "recipe", "recipe and generator preset", choices=tuple(RECIPES), fixed=True)
    imsize: int | None = _option(None, "recipe", "image size in pixels", check="positive", fixed=True)
    batch_size: int | None = _option(None, "recipe", "images per step and per process", check="positive")
    steps: int | None = _option(None, "recipe", "training steps (one D and one G update each)",
                                check="positive", exclusive="budget")
    epochs: int | None = _option(None, "recipe", "passes over the training split", check="positive",
                                 exclusive="budget")
    lr_g: float | None = _option(None, "recipe", "generator learning rate", check="rate")
    lr_d: float | None = _option(None, "recipe", "discriminator learning rate", check="rate")
    sim_weight: float | None = _option(None, "recipe", "weight of the generator's CLIP-similarity loss",
                                       check="weight")
    mode_seeking_weight: float | None = _option(
        None, "recipe", "weight of the generator's mode-seeking loss (MSGAN; 0: off)", check="weight"
    )
    magp_weight: float | None = _option(None, "recipe", "MA-GP weight", check="weight")
    magp_power: float | None = _option(None, "recipe", "MA-GP exponent", check="weight")
    d_channels: int | None = _option(None, "recipe", "NetD output channels", check="positive", fixed=True)
    d_joint_channels: int | None = _option(None, "recipe", "NetC inner channels", check="positive",
                                           fixed=True)
    clip_model: str | None = _option(None, "recipe", "open_clip model name, or 'tiny' for a random tiny CLIP",
                                     fixed=True)
    clip_pretrained: str | None = _option(
        None, "recipe",
        "open_clip pretrained tag, a local weights file, 'none' for random weights, or 'pretrain': "
        "train it contrastively on the run's training split first, cached under --clip-cache", fixed=True,
    )
    clip_sha256: str | None = _option(
        None, "recipe", "SHA-256 the --clip-pretrained file must have; a run records it in config.json",
        metavar="HEX", fixed=True,
    )
    clip_cache: str = _option("runs/clip", "recipe",
                              "where --clip-pretrained pretrain keeps the CLIPs it trains", metavar="DIR")
    dataset: str = _option("shapes", "data", "training and test data", choices=DATASETS, fixed=True)
    data_dir: str | None = _option(None, "data",
                                   "dataset directory (all but shapes); layouts in docs/training.rst")
    num_workers: int = _option(0, "data", "data-loader worker processes", check="count")
    strict_data: bool = _option(False, "data", "stop at an unreadable file instead of skipping it")
    amp: str = _option("off", "execution", "mixed precision", choices=AMP_MODES)
    ema: float = _option(0.999, "execution", "generator EMA decay; 0 turns it off", metavar="DECAY",
                         check="decay")
    compile: bool = _option(False, "execution", "torch.compile the generator and CLIP encoder")
    channels_last: bool = _option(False, "execution", "channels-last memory format")
    seed: int | None = _option(None, "execution", "seed of the weights, data order and noise", check="count")
    device: str = _option("auto", "execution", "auto, cpu, cuda or a device string")
    on_nonfinite: str = _option("stop", "execution", "on a NaN/inf loss", choices=NONFINITE_POLICIES)
    out: str | None = _option(None, "run", "run directory (default runs/<dataset>-<preset>)",
                              metavar="RUN_DIR")
    resume: str | None = _option(None, "run", "continue from the newest checkpoint or from PATH",
                                 metavar="auto|PATH")
    log_every: int = _option(50, "run", "steps between log lines", check="positive")
    sample_every: int | None = _option(None, "run", "steps between sample grids (0: only at the end)",
                                       check="count")
    eval_every: int | None = _option(None, "run", "steps between evaluations (0: only at the end)",
                                     check="count")
    save_every: int | None = _option(None, "run", "steps between checkpoints (0: only at the end)",
                                     check="count")
    keep_checkpoints: int = _option(3, "run", "checkpoints kept", metavar="K", check="positive")
    eval_images: int | None = _option(None, "evaluation", "images generated per evaluation", check="positive")
    fid_features: str = _option(
        "clip", "evaluation",
        "clip: the run's CLIP; inception: torchmetrics' TF-FID Inception; torchvision: the papers' protocol",
        choices=FID_FEATURES,
    )
    inception_weights: str | None = _option(None, "evaluation",
                                            "local weights of the chosen Inception network")
    fid_cache: str | None = _option(None, "evaluation", "directory of cached real-image FID statistics")
    fid_reference: str | None = _option(
        None, "evaluation", "reference statistics (mu, sigma) instead of the test split's", metavar="NPZ"
    )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> dict[str, Any]:
        """Add one ``--option`` per field to ``parser`` (booleans as switches; ``--steps`` and
        ``--epochs`` exclusive); the parsed values are keyword options of :meth:`resolve`.

        Returns:
            The argument groups by key (``"recipe"``, ``"data"``, ``"execution"``, ``"run"``,
            ``"evaluation"``), for adding options that are not the config's.

        Example:
            >>> import argparse
            >>> from ratlip_layers.training import TrainConfig
            >>> _ = TrainConfig.add_arguments(parser := argparse.ArgumentParser())
            >>> TrainConfig.resolve(**vars(parser.parse_args(["--steps", "3", "--amp", "bf16"]))).amp
            'bf16'
        """
        return _add_arguments(cls, parser, _GROUPS)

    @classmethod
    def resolve(cls, **options: Any) -> TrainConfig:
        """A config from keyword options: unset (``None``) ones take the preset's value.

        ``steps`` or ``epochs`` replaces the preset's training budget (both of them), and ``out``
        defaults to ``runs/<dataset>-<preset>``.

        Raises:
            ValueError: an option is out of range, or names an unknown preset, dataset or mode.
        """
        _check_names(options)
        given = {k: v for k, v in options.items() if v is not None}
        recipe = RECIPES.get(given.get("preset", cls.preset), {})  # an unknown preset fails validate()
        if "steps" in given or "epochs" in given:
            recipe = {k: v for k, v in recipe.items() if k not in ("steps", "epochs")}
        config = cls(**{**recipe, **given})
        if config.out is None:
            config.out = f"runs/{config.dataset}-{config.preset}"
        config.validate()
        return config

    def validate(self, *, files: bool = True) -> None:
        """Raise ``ValueError`` naming the first option that is out of range.

        Args:
            files: also check that the files the run reads later exist (``inception_weights``,
                ``fid_reference`` and a ``resume`` path), so that a wrong one stops the run now, not
                at its first evaluation, hours in.
        """
        _check_fields(self)
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(
                f"give exactly one of steps and epochs, got steps={self.steps}, epochs={self.epochs}"
            )
        if self.fid_features != "clip" and self.inception_weights is None:
            raise ValueError(
                f"fid_features {self.fid_features!r} needs inception_weights (--inception-weights), the "
                "local weights file of its Inception network; nothing is downloaded"
            )
        if files:
            for name in ("inception_weights", "fid_reference"):
                value = getattr(self, name)
                if value is not None and not (_is_path(value) and Path(value).is_file()):
                    raise ValueError(f"{name} must be an existing file, got {value!r}")
            resume = None if self.resume == "auto" else self.resume
            if resume is not None and not (_is_path(resume) and Path(resume).exists()):
                raise ValueError(
                    f"resume must be 'auto' or an existing checkpoint or run directory, got {self.resume!r}"
                )
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
        _check_names(data)
        config = cls(**data)
        config.validate(files=False)  # a saved run's files may be gone: another machine, a pruned checkpoint
        return config

    def save(self, path: str | Path) -> None:
        """Write the config as JSON, atomically."""
        write_atomic(path, (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode())
