"""ratlip-layers: RATLIP's recurrent affine transformations, shuffle attention and CLIP parts as
drop-in PyTorch modules."""

from .layers import (
    Affine,
    DFBlock,
    LSTMAffine,
    LSTMState,
    ModulationHead,
    RATBlock,
    SAConv,
    ShuffleAttention,
    StateFromNoise,
    modulate,
    modulate_twice,
    zero_state,
)

__version__ = "0.1.0"

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
    "__version__",
    "modulate",
    "modulate_twice",
    "zero_state",
]
