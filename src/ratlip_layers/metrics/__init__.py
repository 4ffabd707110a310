"""Evaluation metrics: FID (torchmetrics), CLIP score, the ``shapes`` colour accuracy, and a registry."""

from .clip_score import CLIPScore
from .evaluate import evaluate_generator, fixed_noise, prepare_real_statistics
from .fid import CLIPFeatures, FrechetDistance, InceptionFeatures, module_fingerprint
from .registry import MetricContext, build_metrics, metric_names, register_metric, unregister_metric
from .shapes_colour import ShapesColourAccuracy, estimate_shapes_colours

__all__ = [
    "CLIPFeatures",
    "CLIPScore",
    "FrechetDistance",
    "InceptionFeatures",
    "MetricContext",
    "ShapesColourAccuracy",
    "build_metrics",
    "estimate_shapes_colours",
    "evaluate_generator",
    "fixed_noise",
    "metric_names",
    "module_fingerprint",
    "prepare_real_statistics",
    "register_metric",
    "unregister_metric",
]
