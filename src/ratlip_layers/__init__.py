"""ratlip-layers: RATLIP's recurrent affine transformations, shuffle attention and CLIP parts as
drop-in PyTorch modules.

The top level holds what a user builds with: the layers, the CLIP parts and the models with their
configs. Everything else lives in its subpackage (:mod:`ratlip_layers.layers`, ``.clip``,
``.models``, ``.data``, ``.metrics``, ``.training``). The layers import only torch and einops; the
CLIP-dependent names are loaded on first access (PEP 562), so ``from ratlip_layers import RATBlock``
does not import open_clip or torchvision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes
from .layers import (
    Affine,
    DFBlock,
    LSTMAffine,
    LSTMState,
    RATBlock,
    SAConv,
    ShuffleAttention,
    StateFromNoise,
    convert_to_rat,
)

if TYPE_CHECKING:
    from .clip import CLIPImageEncoder, CLIPMapper, CLIPTextAdapter, build_clip, tiny_clip
    from .models import CLIPDiscriminator, GeneratorConfig, RATLIPGenerator

__version__ = "0.1.0"

# name -> the subpackage that defines it, imported when the name is first used.
_LAZY = {
    "CLIPImageEncoder": "clip",
    "CLIPMapper": "clip",
    "CLIPTextAdapter": "clip",
    "build_clip": "clip",
    "tiny_clip": "clip",
    "CLIPDiscriminator": "models",
    "GeneratorConfig": "models",
    "RATLIPGenerator": "models",
}

__all__ = [
    "Affine",
    "CLIPDiscriminator",
    "CLIPImageEncoder",
    "CLIPMapper",
    "CLIPTextAdapter",
    "DFBlock",
    "GeneratorConfig",
    "LSTMAffine",
    "LSTMState",
    "RATBlock",
    "RATLIPGenerator",
    "SAConv",
    "ShuffleAttention",
    "StateFromNoise",
    "__version__",
    "build_clip",
    "convert_to_rat",
    "tiny_clip",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)
