"""Conditioning and attention layers. Nothing here depends on CLIP or on training code.

Layers with a fused implementation take ``impl="ref" | "fused"``; see
:func:`~ratlip_layers.layers.default_impl`.
"""

from .affine import Affine, DFBlock
from .attention import SAConv, ShuffleAttention
from .config import default_impl
from .convert import RecurrentMemory, ThreadedRATBlock, convert_to_rat
from .modulation import modulate_twice
from .rat import LSTMAffine, LSTMState, RATBlock, StateFromNoise

__all__ = [
    "Affine", "DFBlock", "LSTMAffine", "LSTMState", "RATBlock", "SAConv", "ShuffleAttention",
    "RecurrentMemory", "StateFromNoise", "ThreadedRATBlock", "convert_to_rat", "default_impl", "modulate_twice",
]
