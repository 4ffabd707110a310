"""Everything that touches open_clip: building and freezing models, text and image features, the mapper."""

from .build import build_clip, clip_spec, file_sha256, freeze_clip, tiny_clip
from .frozen import FrozenCLIP, WithFrozenCLIP
from .mapper import CLIPMapper
from .text import CLIPTextAdapter, TextEncoding
from .vision import CLIPImageEncoder, ImageFeatures

__all__ = [
    "CLIPImageEncoder", "CLIPMapper", "CLIPTextAdapter", "FrozenCLIP", "ImageFeatures", "TextEncoding",
    "WithFrozenCLIP", "build_clip", "clip_spec", "file_sha256", "freeze_clip", "tiny_clip"
]
