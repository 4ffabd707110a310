"""Training: losses, the D/G step, EMA, checkpoints, and the trainer behind ``examples/train_cub.py``.

The modules hold the rest: ``step`` the AMP modes and scale floor, ``checkpoint`` the random-state
capture, ``images`` the atomic PNG writer.

Importing the package loads neither tensorboard, nor tqdm, nor torchmetrics: the trainer imports the
first two when a run logs or shows its bar, and :class:`Evaluator` and :func:`evaluate_checkpoint`
(with torchmetrics, seconds to import) load on first access.
"""

from .build import load_generator
from .clip_pretrain import (
    CLIPPretrainConfig,
    CLIPPretrainResult,
    clip_retrieval_report,
    pretrain_clip,
)
from .checkpoint import Checkpoint, CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint
from .config import RECIPES, TrainConfig
from .distributed import DistributedContext
from .ema import EMA
from .images import captioned_grid, sample_images, save_images
from .losses import discriminator_hinge_loss, generator_loss, matching_aware_gradient_penalty
from .step import GANTrainStep, NonFiniteLossError, Precision
from .trainer import Trainer, TrainResult

__all__ = [
    "EMA",
    "RECIPES",
    "Checkpoint",
    "CheckpointError",
    "CLIPPretrainConfig",
    "CLIPPretrainResult",
    "CheckpointManager",
    "DistributedContext",
    "Evaluator",
    "GANTrainStep",
    "NonFiniteLossError",
    "Precision",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "captioned_grid",
    "clip_retrieval_report",
    "discriminator_hinge_loss",
    "evaluate_checkpoint",
    "generator_loss",
    "load_checkpoint",
    "load_generator",
    "matching_aware_gradient_penalty",
    "pretrain_clip",
    "sample_images",
    "save_checkpoint",
    "save_images",
]


def __getattr__(name: str):
    # PEP 562: the evaluation module imports torchmetrics, which only runs that evaluate should pay for.
    if name in ("Evaluator", "evaluate_checkpoint"):
        from . import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
