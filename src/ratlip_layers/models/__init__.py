"""Assembled networks: RATLIP's generator and GALIP's CLIP discriminator."""

from .config import GeneratorConfig
from .discriminator import CLIPDiscriminator
from .generator import GeneratorConditioning, RATLIPGenerator

__all__ = ["CLIPDiscriminator", "GeneratorConditioning", "GeneratorConfig", "RATLIPGenerator"]
