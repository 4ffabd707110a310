"""Training: losses, the D/G step, EMA, checkpoints, evaluation and the :class:`Trainer` behind
``examples/train_cub.py``.

Every name loads with its module on first use (PEP 562), so ``import ratlip_layers.training`` costs
almost nothing over ``import torch``: open_clip, torchvision, torchmetrics, tensorboard and tqdm come
only with what needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .build import load_generator
    from .checkpoint import Checkpoint, CheckpointError, CheckpointManager, load_checkpoint
    from .clip_pretrain import CLIPPretrainConfig, CLIPPretrainResult, clip_retrieval_report, pretrain_clip
    from .config import RECIPES, TrainConfig
    from .distributed import DistributedContext
    from .ema import EMA
    from .evaluation import Evaluator, evaluate_checkpoint
    from .images import captioned_grid, sample_images, save_images
    from .losses import discriminator_hinge_loss, generator_loss, matching_aware_gradient_penalty
    from .losses import mode_seeking_loss
    from .step import GANTrainStep, NonFiniteLossError, Precision
    from .trainer import Trainer, TrainResult

# module -> the names it defines; each is imported when one of its names is first used.
_EXPORTS = {
    "build": ("load_generator",),
    "checkpoint": ("Checkpoint", "CheckpointError", "CheckpointManager", "load_checkpoint"),
    "clip_pretrain": ("CLIPPretrainConfig", "CLIPPretrainResult", "clip_retrieval_report", "pretrain_clip"),
    "config": ("RECIPES", "TrainConfig"),
    "distributed": ("DistributedContext",),
    "ema": ("EMA",),
    "evaluation": ("Evaluator", "evaluate_checkpoint"),
    "images": ("captioned_grid", "sample_images", "save_images"),
    "losses": (
        "discriminator_hinge_loss", "generator_loss", "matching_aware_gradient_penalty", "mode_seeking_loss"
    ),
    "step": ("GANTrainStep", "NonFiniteLossError", "Precision"),
    "trainer": ("TrainResult", "Trainer"),
}
_LAZY = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)
