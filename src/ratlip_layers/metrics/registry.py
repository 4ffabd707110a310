"""Metrics by name, so that training, ``evaluate.py`` and user code build the same ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn
from torchmetrics import Metric

from .clip_score import CLIPScore
from .fid import CLIPFeatures, FrechetDistance, InceptionFeatures
from .shapes_colour import ShapesColourAccuracy

__all__ = ["MetricContext", "build_metrics", "metric_names", "register_metric", "unregister_metric"]


@dataclass
class MetricContext:
    """What metric factories may need.

    Attributes:
        clip_model: the open_clip model for the CLIP score and for CLIP FID features.
        tokenizer: its tokenizer.
        fid_features: ``"clip"`` (the CLIP model's image embedding; no download) or ``"inception"``.
        inception_weights: a local InceptionV3 weights file for ``"inception"``.

    Example:
        >>> from ratlip_layers.clip import tiny_clip
        >>> from ratlip_layers.metrics import MetricContext
        >>> clip_model, tokenizer = tiny_clip()
        >>> MetricContext(clip_model, tokenizer).fid_features
        'clip'
    """

    clip_model: nn.Module
    tokenizer: Any = None
    fid_features: str = "clip"
    inception_weights: str | None = None


_REGISTRY: dict[str, tuple[Callable[[MetricContext], Metric], tuple[str, ...] | None]] = {}


def register_metric(name: str, *, datasets: Sequence[str] | None = None):
    """Register ``factory(context) -> Metric`` under ``name``, for all datasets or only ``datasets``.

    Metrics take ``update(images in [-1, 1], captions)`` and ``compute() -> dict[str, float]``.

    Example:
        >>> from ratlip_layers.metrics import ShapesColourAccuracy, metric_names, register_metric, unregister_metric
        >>> @register_metric("my_colour", datasets=["shapes"])
        ... def _build(context):
        ...     return ShapesColourAccuracy()
        >>> "my_colour" in metric_names("shapes"), "my_colour" in metric_names("cub")
        (True, False)
        >>> unregister_metric("my_colour")
    """

    def decorator(factory: Callable[[MetricContext], Metric]) -> Callable[[MetricContext], Metric]:
        if name in _REGISTRY:
            raise ValueError(f"a metric named {name!r} is already registered")
        _REGISTRY[name] = (factory, tuple(datasets) if datasets is not None else None)
        return factory

    return decorator


def unregister_metric(name: str) -> None:
    """Remove a registered metric (e.g. to register a replacement under the same name).

    Example:
        >>> from ratlip_layers.metrics import ShapesColourAccuracy, metric_names, register_metric, unregister_metric
        >>> _ = register_metric("colour_copy")(lambda context: ShapesColourAccuracy())
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
        (('clip_score', 'fid', 'shapes_colour'), ('clip_score', 'fid'))
    """
    return tuple(
        n for n, (_, only) in _REGISTRY.items() if dataset is None or only is None or dataset in only
    )


def build_metrics(
    dataset: str, context: MetricContext, names: Sequence[str] | None = None
) -> dict[str, Metric]:
    """Build the named metrics (default: every one that applies to ``dataset``).

    Raises:
        ValueError: a name is unknown or does not apply to ``dataset``.

    Example:
        >>> from ratlip_layers.clip import tiny_clip
        >>> from ratlip_layers.metrics import MetricContext, build_metrics
        >>> metrics = build_metrics("shapes", MetricContext(*tiny_clip()))
        >>> {name: type(metric).__name__ for name, metric in metrics.items()}
        {'clip_score': 'CLIPScore', 'fid': 'FrechetDistance', 'shapes_colour': 'ShapesColourAccuracy'}
    """
    available = metric_names(dataset)
    chosen = available if names is None else tuple(names)
    bad = [n for n in chosen if n not in available]
    if bad:
        raise ValueError(
            f"metrics {bad} are unknown or do not apply to dataset {dataset!r}; available: {available}"
        )
    return {name: _REGISTRY[name][0](context) for name in chosen}


@register_metric("clip_score")
def _clip_score(context: MetricContext) -> Metric:
    return CLIPScore(context.clip_model, tokenizer=context.tokenizer)


@register_metric("fid")
def _fid(context: MetricContext) -> Metric:
    if context.fid_features == "inception":
        return FrechetDistance(InceptionFeatures(context.inception_weights))
    if context.fid_features == "clip":
        return FrechetDistance(CLIPFeatures(context.clip_model))
    raise ValueError(f"fid_features must be 'clip' or 'inception', got {context.fid_features!r}")


@register_metric("shapes_colour", datasets=["shapes"])
def _shapes_colour(context: MetricContext) -> Metric:
    return ShapesColourAccuracy()
