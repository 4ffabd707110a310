"""Conditioning and attention layers. Nothing here depends on CLIP or on training code."""

from .affine import Affine, DFBlock
from .attention import SAConv, ShuffleAttention
from .fast_path import is_fast_path_enabled, set_fast_path
from .modulation import ModulationHead, modulate, modulate_twice
from .rat import LSTMAffine, LSTMState, RATBlock, StateFromNoise, lstm_pointwise, zero_state
from .schedule import ConditioningSchedule, ScheduledModulations

__all__ = [
    "Affine",
    "ConditioningSchedule",
    "DFBlock",
    "LSTMAffine",
    "LSTMState",
    "ModulationHead",
    "RATBlock",
    "SAConv",
    "ScheduledModulations",
    "ShuffleAttention",
    "StateFromNoise",
    "is_fast_path_enabled",
    "lstm_pointwise",
    "modulate",
    "modulate_twice",
    "set_fast_path",
    "zero_state",
]
