"""Evaluation metrics: FID (torchmetrics), CLIP score, the ``shapes`` colour accuracy, and a registry."""

from .clip_score import CLIPScore
from .evaluate import evaluate_generator, fixed_noise, prepare_real_statistics
from .fid import (
    FID_PROTOCOLS,
    CLIPFeatures,
    FrechetDistance,
    InceptionFeatures,
    StatisticsFID,
    TorchvisionInceptionFeatures,
    feature_statistics,
    frechet_distance,
    inception_features,
    load_fid_statistics,
    module_fingerprint,
    save_fid_statistics,
)
from .registry import MetricContext, build_metrics, metric_names, register_metric, unregister_metric
from .shapes_colour import ShapesColourAccuracy, estimate_shapes_colours

__all__ = [
    "FID_PROTOCOLS",
    "CLIPFeatures",
    "CLIPScore",
    "FrechetDistance",
    "InceptionFeatures",
    "MetricContext",
    "StatisticsFID",
    "TorchvisionInceptionFeatures",
    "ShapesColourAccuracy",
    "build_metrics",
    "estimate_shapes_colours",
    "evaluate_generator",
    "feature_statistics",
    "frechet_distance",
    "fixed_noise",
    "inception_features",
    "load_fid_statistics",
    "metric_names",
    "module_fingerprint",
    "prepare_real_statistics",
    "register_metric",
    "save_fid_statistics",
    "unregister_metric",
]
