"""Metrics by name, so that training, ``evaluate.py`` and user code build the same ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn
from torchmetrics import Metric

from .clip_score import CLIPScore
from .fid import FID_PROTOCOLS, CLIPFeatures, FrechetDistance, InceptionFeatures
from .shapes_accuracy import ShapesAccuracy

__all__ = ["MetricContext", "build_metrics", "metric_names", "register_metric", "unregister_metric"]


@dataclass
class MetricContext:
    """What metric factories may need; checked when built, not hours later at the first evaluation.

    Attributes:
        clip_model, tokenizer: the open_clip model for the CLIP score and CLIP FID features, its tokenizer.
        fid_features: ``"clip"`` or one of :data:`~ratlip_layers.metrics.FID_PROTOCOLS`.
        inception_weights: the local weights file of that protocol's network (nothing is downloaded).

    Example:
        >>> from ratlip_layers.metrics import MetricContext
        >>> MetricContext(*tiny_clip()).fid_features
        'clip'
    """

    clip_model: nn.Module
    tokenizer: Any = None
    fid_features: str = "clip"
    inception_weights: str | None = None

    def __post_init__(self) -> None:
        features, weights = self.fid_features, self.inception_weights
        if features == "clip":
            return
        if features not in FID_PROTOCOLS:
            raise ValueError(f"fid_features must be 'clip' or one of {FID_PROTOCOLS}, got {features!r}")
        if weights is None:
            raise ValueError(f"fid_features {features!r} needs the local weights file of its Inception "
                             "network (inception_weights, --inception-weights); nothing is downloaded")
        if not Path(weights).is_file():
            raise ValueError(f"inception_weights must be an existing weights file, got {str(weights)!r}")


_REGISTRY: dict[str, tuple[Callable[[MetricContext], Metric], tuple[str, ...] | None]] = {}


def register_metric(name: str, *, datasets: Sequence[str] | None = None):
    """Register ``factory(context) -> Metric`` under ``name``, for all datasets or only ``datasets``;
    the metric takes ``update(images in [-1, 1], captions)`` and returns a dict from ``compute()``.

    Example:
        >>> from ratlip_layers.metrics import ShapesAccuracy, metric_names, register_metric, unregister_metric
        >>> _ = register_metric("my_colour", datasets=["shapes"])(lambda context: ShapesAccuracy())
        >>> "my_colour" in metric_names("shapes"), "my_colour" in metric_names("cub")
        (True, False)
        >>> unregister_metric("my_colour")
    """

    def decorator(factory: Callable[[MetricContext], Metric]) -> Callable[[MetricContext], Metric]:
        if name in _REGISTRY:
            raise ValueError(f"a metric named {name!r} is already registered")
        _REGISTRY[name] = (factory, None if datasets is None else tuple(datasets))
        return factory

    return decorator


def unregister_metric(name: str) -> None:
    """Remove a registered metric (e.g. to register a replacement under its name).

    Example:
        >>> from ratlip_layers.metrics import ShapesAccuracy, metric_names, register_metric, unregister_metric
        >>> _ = register_metric("colour_copy")(lambda context: ShapesAccuracy())
        >>> unregister_metric("colour_copy")
        >>> "colour_copy" in metric_names()
        False
    """
    if name not in _REGISTRY:
        raise KeyError(f"no metric named {name!r} is registered; registered: {tuple(_REGISTRY)}")
    del _REGISTRY[name]


def metric_names(dataset: str | None = None) -> tuple[str, ...]:
    """The registered metrics (those that apply to ``dataset`` if given).

    Example:
        >>> from ratlip_layers.metrics import metric_names
        >>> metric_names("shapes"), metric_names("cub")
        (('clip_score', 'fid', 'shapes_accuracy'), ('clip_score', 'fid'))
    """
    return tuple(n for n, (_, only) in _REGISTRY.items()
                 if dataset is None or only is None or dataset in only)


def build_metrics(dataset: str, context: MetricContext,
                  names: Sequence[str] | None = None) -> dict[str, Metric]:
    """Build the named metrics (default: every one that applies to ``dataset``); ``ValueError`` if a name
    is unknown or does not apply to ``dataset``.

    Example:
        >>> from ratlip_layers.metrics import MetricContext, build_metrics
        >>> metrics = build_metrics("shapes", MetricContext(*tiny_clip()))
        >>> {name: type(metric).__name__ for name, metric in metrics.items()}
        {'clip_score': 'CLIPScore', 'fid': 'FrechetDistance', 'shapes_accuracy': 'ShapesAccuracy'}
    """
    if not isinstance(context, MetricContext):
        raise TypeError(f"context must be a MetricContext, got {type(context).__name__}")
    available = metric_names(dataset)
    chosen = available if names is None else tuple(names)
    if bad := [n for n in chosen if n not in available]:
        raise ValueError(f"metrics {bad} are unknown or do not apply to dataset {dataset!r}; "
                         f"available: {available}")
    return {name: _REGISTRY[name][0](context) for name in chosen}


register_metric("clip_score")(lambda context: CLIPScore(context.clip_model, tokenizer=context.tokenizer))
register_metric("fid")(lambda context: FrechetDistance(
    CLIPFeatures(context.clip_model) if context.fid_features == "clip"
    else InceptionFeatures(context.inception_weights, protocol=context.fid_features)))
register_metric("shapes_accuracy", datasets=["shapes"])(lambda context: ShapesAccuracy())
