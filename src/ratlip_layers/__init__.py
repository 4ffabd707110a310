"""ratlip-layers: RATLIP's recurrent affine transformations, shuffle attention and CLIP parts as
drop-in PyTorch modules."""

from .layers import (
    Affine,
    ConditioningSchedule,
    DFBlock,
    LSTMAffine,
    LSTMState,
    ModulationHead,
    RATBlock,
    SAConv,
    ScheduledModulations,
    ShuffleAttention,
    StateFromNoise,
    is_fast_path_enabled,
    lstm_pointwise,
    modulate,
    modulate_twice,
    set_fast_path,
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
    "ConditioningSchedule",
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
    "ScheduledModulations",
    "ShuffleAttention",
    "StateFromNoise",
    "TextEncoding",
    "__version__",
    "build_clip",
    "freeze_clip",
    "is_fast_path_enabled",
    "lstm_pointwise",
    "modulate",
    "modulate_twice",
    "set_fast_path",
    "tiny_clip",
    "zero_state",
]
