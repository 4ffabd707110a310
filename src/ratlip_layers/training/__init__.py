"""Training: losses, the D/G step, EMA, checkpoints, and the trainer behind ``examples/train_cub.py``."""

from .checkpoint import Checkpoint, CheckpointManager, load_checkpoint, resolve_checkpoint, save_checkpoint
from .ema import EMA, trainable_state
from .losses import discriminator_hinge_loss, generator_loss, matching_aware_gradient_penalty
from .rng import get_rng_state, seed_everything, set_rng_state

__all__ = [
    "EMA",
    "Checkpoint",
    "CheckpointManager",
    "discriminator_hinge_loss",
    "generator_loss",
    "get_rng_state",
    "load_checkpoint",
    "matching_aware_gradient_penalty",
    "resolve_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
    "trainable_state",
]
