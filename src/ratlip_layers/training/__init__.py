"""Training: losses, the D/G step, EMA, checkpoints, and the trainer behind ``examples/train_cub.py``."""

from .build import build_clip_model, build_networks, load_generator
from .checkpoint import Checkpoint, CheckpointManager, load_checkpoint, resolve_checkpoint, save_checkpoint
from .config import AMP_MODES, RECIPES, TrainConfig
from .distributed import DistributedContext, init_distributed, resolve_device
from .ema import EMA, trainable_state
from .evaluation import Evaluator, default_fid_cache
from .images import captioned_grid, save_images, to_pil
from .losses import discriminator_hinge_loss, generator_loss, matching_aware_gradient_penalty
from .precision import SCALE_FLOOR, SCALE_RESET, Precision
from .rng import get_rng_state, seed_everything, set_rng_state
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
    "build_clip_model",
    "build_networks",
    "captioned_grid",
    "default_fid_cache",
    "discriminator_hinge_loss",
    "generator_loss",
    "get_rng_state",
    "init_distributed",
    "load_checkpoint",
    "load_generator",
    "matching_aware_gradient_penalty",
    "resolve_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "save_images",
    "seed_everything",
    "set_rng_state",
    "to_pil",
    "trainable_state",
]
