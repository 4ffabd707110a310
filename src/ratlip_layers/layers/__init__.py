"""Conditioning and attention layers. Nothing here depends on CLIP or on training code."""

from .affine import Affine, DFBlock
from .attention import SAConv, ShuffleAttention
from .modulation import ModulationHead, modulate, modulate_twice
from .rat import LSTMAffine, LSTMState, RATBlock, StateFromNoise, zero_state

__all__ = [
    "Affine",
    "DFBlock",
    "LSTMAffine",
    "LSTMState",
    "ModulationHead",
    "RATBlock",
    "SAConv",
    "ShuffleAttention",
    "StateFromNoise",
    "modulate",
    "modulate_twice",
    "zero_state",
]
