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
from .clip import (
    CLIPImageEncoder,
    CLIPMapper,
    CLIPTextAdapter,
    ImageFeatures,
    TextEncoding,
    build_clip,
    freeze_clip,
    tiny_clip,
)
from .models import CLIPDiscriminator, GeneratorConditioning, GeneratorConfig, RATLIPGenerator

__version__ = "0.1.0"

__all__ = [
    "Affine",
    "CLIPDiscriminator",
    "CLIPImageEncoder",
    "CLIPMapper",
    "CLIPTextAdapter",
    "DFBlock",
    "GeneratorConditioning",
    "GeneratorConfig",
    "ImageFeatures",
    "LSTMAffine",
    "LSTMState",
    "ModulationHead",
    "RATBlock",
    "RATLIPGenerator",
    "SAConv",
    "ShuffleAttention",
    "StateFromNoise",
    "TextEncoding",
    "__version__",
    "build_clip",
    "freeze_clip",
    "modulate",
    "modulate_twice",
    "tiny_clip",
    "zero_state",
]
