"""Evaluation metrics: FID (torchmetrics), CLIP score, and the ``shapes`` colour accuracy."""

from .clip_score import CLIPScore
from .fid import CLIPFeatures, FrechetDistance, InceptionFeatures, module_fingerprint
from .shapes_colour import ShapesColourAccuracy, estimate_shapes_colours

__all__ = [
    "CLIPFeatures",
    "CLIPScore",
    "FrechetDistance",
    "InceptionFeatures",
    "ShapesColourAccuracy",
    "estimate_shapes_colours",
    "module_fingerprint",
]
