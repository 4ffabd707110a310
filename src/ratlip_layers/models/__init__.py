"""Assembled networks: RATLIP's generator and GALIP's CLIP discriminator."""

from .config import GeneratorConfig
from .discriminator import CLIPDiscriminator
from .generator import GeneratorConditioning, RATLIPGenerator
from .inference import InferenceGenerator, optimize_for_inference

__all__ = [
    "CLIPDiscriminator",
    "GeneratorConditioning",
    "GeneratorConfig",
    "InferenceGenerator",
    "RATLIPGenerator",
    "optimize_for_inference",
]
