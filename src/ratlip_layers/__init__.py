"""ratlip-layers: RATLIP's recurrent affine transformations, shuffle attention and CLIP parts as
drop-in PyTorch modules.

The top level holds what a user builds with; the rest lives in the subpackages (``layers``, ``clip``,
``models``, ``data``, ``metrics``, ``training``). The CLIP-dependent names load on first access (PEP
562), so ``from ratlip_layers import RATBlock`` imports neither open_clip nor torchvision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes
from .layers import Affine, DFBlock, LSTMAffine, LSTMState, RATBlock, SAConv, ShuffleAttention, StateFromNoise
from .layers import convert_to_rat

if TYPE_CHECKING:
    from .clip import CLIPImageEncoder, CLIPMapper, CLIPTextAdapter, build_clip, tiny_clip
    from .models import CLIPDiscriminator, GeneratorConfig, RATLIPGenerator

__version__ = "0.1.0"

# name -> the subpackage that defines it, imported when the name is first used.
_LAZY = {
    **dict.fromkeys(("CLIPImageEncoder", "CLIPMapper", "CLIPTextAdapter", "build_clip", "tiny_clip"), "clip"),
    **dict.fromkeys(("CLIPDiscriminator", "GeneratorConfig", "RATLIPGenerator"), "models"),
}

__all__ = [
    "Affine", "CLIPDiscriminator", "CLIPImageEncoder", "CLIPMapper", "CLIPTextAdapter", "DFBlock",
    "GeneratorConfig", "LSTMAffine", "LSTMState", "RATBlock", "RATLIPGenerator", "SAConv", "ShuffleAttention",
    "StateFromNoise", "__version__", "build_clip", "convert_to_rat", "tiny_clip",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)
