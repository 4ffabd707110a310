"""Assembled networks: RATLIP's generator and GALIP's CLIP discriminator."""

from .config import GeneratorConfig
from .convert_checkpoints import (
    KeyAccounting,
    convert_dfgan_state_dict,
    convert_galip_discriminator,
    convert_galip_generator,
    read_checkpoint,
)
from .discriminator import CLIPDiscriminator
from .generator import RATLIPGenerator
from .inference import InferenceGenerator, optimize_for_inference

__all__ = [
    "CLIPDiscriminator", "GeneratorConfig", "InferenceGenerator", "KeyAccounting", "RATLIPGenerator",
    "convert_dfgan_state_dict", "convert_galip_discriminator", "convert_galip_generator",
    "optimize_for_inference", "read_checkpoint"
]
