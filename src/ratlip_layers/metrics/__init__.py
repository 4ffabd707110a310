"""Evaluation metrics: FID (torchmetrics), CLIP score, the ``shapes`` colour accuracy, and a registry."""

from .clip_score import CLIPScore
from .evaluate import evaluate_generator, fixed_noise
from .fid import FID_PROTOCOLS, CLIPFeatures, FrechetDistance, InceptionFeatures
from .fid import load_fid_statistics, prepare_real_statistics, save_fid_statistics
from .registry import MetricContext, build_metrics, metric_names, register_metric, unregister_metric
from .shapes_accuracy import ShapesAccuracy, read_shapes_image

__all__ = [
    "FID_PROTOCOLS", "CLIPFeatures", "CLIPScore", "FrechetDistance", "InceptionFeatures", "MetricContext",
    "ShapesAccuracy", "build_metrics", "evaluate_generator", "fixed_noise", "load_fid_statistics",
    "metric_names", "prepare_real_statistics", "read_shapes_image", "register_metric",
    "save_fid_statistics", "unregister_metric",
]
