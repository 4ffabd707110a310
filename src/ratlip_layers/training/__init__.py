"""Training: losses, the D/G step, EMA, checkpoints, and the trainer behind ``examples/train_cub.py``."""

from .build import load_generator
from .checkpoint import Checkpoint, CheckpointError, CheckpointManager, load_checkpoint, resolve_checkpoint, save_checkpoint
from .config import AMP_MODES, RECIPES, TrainConfig
from .distributed import DistributedContext
from .ema import EMA
from .evaluation import Evaluator, evaluate_checkpoint
from .images import captioned_grid, save_images, to_pil
from .losses import discriminator_hinge_loss, generator_loss, matching_aware_gradient_penalty
from .precision import SCALE_FLOOR, SCALE_RESET, Precision
from .rng import get_rng_state, seed_everything, set_rng_state
from .sampling import sample_images
from .step import DiscriminatorLoss, GANTrainStep, NonFiniteLossError
from .trainer import SHAPES_SAMPLE_CAPTIONS, Trainer, TrainResult

__all__ = [
    "AMP_MODES",
    "EMA",
    "RECIPES",
    "SCALE_FLOOR",
    "SCALE_RESET",
    "SHAPES_SAMPLE_CAPTIONS",
    "Checkpoint",
    "CheckpointError",
    "CheckpointManager",
    "DiscriminatorLoss",
    "DistributedContext",
    "Evaluator",
    "GANTrainStep",
    "NonFiniteLossError",
    "Precision",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "captioned_grid",
    "discriminator_hinge_loss",
    "evaluate_checkpoint",
    "generator_loss",
    "get_rng_state",
    "load_checkpoint",
    "load_generator",
    "matching_aware_gradient_penalty",
    "resolve_checkpoint",
    "sample_images",
    "save_checkpoint",
    "save_images",
    "seed_everything",
    "set_rng_state",
    "to_pil",
]
