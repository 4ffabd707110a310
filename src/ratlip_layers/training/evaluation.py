"""Scoring a generator on a dataset's test captions, for ``--eval-every`` and ``examples/evaluate.py``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from .._checks import check_positive_int
from .._modes import eval_mode
from ..clip import CLIPTextAdapter
from ..data import build_dataset
from ..metrics import FrechetDistance, MetricContext, build_metrics, evaluate_generator
from ..metrics import prepare_real_statistics
from .build import build_clip_model, load_generator
from .distributed import DistributedContext, resolve_device

__all__ = ["Evaluator", "evaluate_checkpoint"]

_FID_FEATURES = {
    "inception": "torchmetrics' TF-FID InceptionV3 pool (2048)",
    "torchvision": "torchvision's ImageNet InceptionV3 pool3 (2048), the papers' protocol",
}


class Evaluator:
    """The registered metrics of a dataset, scoring generators on its test captions: FID's real
    statistics are prepared once (cached), then each :meth:`~ratlip_layers.training.Evaluator.evaluate`
    generates ``num_images`` images with fixed noise from ``seed``, ``batch_size`` per call, shared out
    among the ranks of ``dist_ctx``.

    Args:
        test_dataset: the test split (``(image, caption)`` items with a ``caption(i)`` method).
        dataset_name: the registry's dataset name (which metrics apply).
        context: the :class:`ratlip_layers.metrics.MetricContext` (scoring CLIP, FID features).
        dataset_id: names the data in the FID cache; by default ``"<name>-test-<size>-<items>"``.
        fid_cache: the cache directory (default ``$XDG_CACHE_HOME/ratlip-layers/fid``).
        fid_reference: an ``.npz`` of reference ``mu`` and ``sigma`` to score FID against instead
            of the test images (the papers' protocol).
        metric_names: a subset of the registered metrics (default: all that apply).
        num_workers: data-loader workers for the real statistics.

    Example:
        >>> from ratlip_layers.metrics import MetricContext
        >>> from ratlip_layers.training import Evaluator
        >>> import tempfile
        >>> from ratlip_layers.data import ShapesDataset
        >>> clip_model, tokenizer = tiny_clip()
        >>> evaluator = Evaluator(ShapesDataset(32, split="test"), dataset_name="shapes",
        ...                       context=MetricContext(clip_model, tokenizer), num_images=16,
        ...                       fid_cache=tempfile.mkdtemp())
        >>> G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)
        >>> sorted(evaluator.evaluate(G))
        ['bg_acc', 'clip_score', 'colour_acc', 'fg_acc', 'fid_clip', 'passes', 'position_spread', 'shape_acc']
    """

    def __init__(
        self, test_dataset: Dataset, *, dataset_name: str, context: MetricContext, num_images: int,
        dataset_id: str | None = None, batch_size: int = 64, seed: int = 0,
        fid_cache: str | Path | None = None, fid_reference: str | Path | None = None,
        metric_names: Sequence[str] | None = None, dist_ctx: DistributedContext | None = None,
        num_workers: int = 0,
    ) -> None:
        self.num_images = check_positive_int("num_images", num_images)
        if len(test_dataset) == 0:
            raise ValueError("the test split is empty: there are no captions to evaluate on")
        self.dataset, self.batch_size, self.seed = test_dataset, batch_size, seed
        self.dist = dist_ctx or DistributedContext()
        metrics = build_metrics(dataset_name, context, metric_names)
        self.metrics = {name: metric.to(self.dist.device) for name, metric in metrics.items()}
        self.text = CLIPTextAdapter(context.clip_model, tokenizer=context.tokenizer)
        if dataset_id is None:
            image_size = test_dataset[0][0].shape[-1]
            dataset_id = f"{dataset_name}-test-{image_size}-{len(test_dataset)}"
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ratlip-layers" / "fid"
        self.fid_cache_file: Path | None = None
        for metric in self.metrics.values():
            if isinstance(metric, FrechetDistance):
                self.fid_cache_file = prepare_real_statistics(
                    metric, test_dataset, cache_dir=fid_cache or cache, dataset_id=dataset_id,
                    batch_size=batch_size, num_workers=num_workers, is_main=self.dist.is_main,
                    reference=fid_reference,
                )
        self.dist.barrier()

    @torch.no_grad()
    def evaluate(self, generator: nn.Module, text_encoder: CLIPTextAdapter | None = None) -> dict[str, Any]:
        """The metric values (identical on every rank) of ``generator``, ``(noise, sentence) -> images``
        (in eval mode meanwhile), with ``text_encoder`` (default ``generator.text``, else the scoring
        CLIP's)."""
        text = text_encoder or getattr(generator, "text", None) or self.text

        def generate(noise: Tensor, captions: list[str]) -> Tensor:
            return generator(noise, text(captions).sentence.float()).float().clamp(-1.0, 1.0)

        with eval_mode(generator):
            return evaluate_generator(
                generate, self.dataset.caption, self.metrics, num_images=self.num_images,
                z_dim=generator.z_dim, batch_size=self.batch_size, seed=self.seed, device=self.dist.device,
                rank=self.dist.rank, world_size=self.dist.world_size, num_captions=len(self.dataset),
            )


def evaluate_checkpoint(
    checkpoint: str | Path, *, dataset: str | None = None, data_dir: str | None = None,
    num_images: int | None = None, batch_size: int = 64, seed: int = 0, fid_features: str = "clip",
    inception_weights: str | None = None, fid_cache: str | Path | None = None,
    fid_reference: str | Path | None = None, score_clip_model: str | None = None,
    score_clip_pretrained: str | None = None, metric_names: Sequence[str] | None = None, use_ema: bool = True,
    device: str = "auto", num_workers: int = 0,
) -> dict[str, Any]:
    """Load a trained generator and score it on a dataset's test split (what ``evaluate.py`` runs).

    Args:
        checkpoint: a run, checkpoint or ``save_pretrained`` directory (see :func:`load_generator`).
        dataset, data_dir: the data (default: the run's).
        num_images: images to generate (default: the run's ``eval_images``, else 30,000).
        fid_features: ``"clip"`` or one of :data:`ratlip_layers.metrics.FID_PROTOCOLS`, with the local
            ``inception_weights`` of the chosen Inception network.
        score_clip_model, score_clip_pretrained: the open_clip model that scores (CLIP score, CLIP
            FID features) and its weights; by default the generator's own CLIP.
        device, use_ema: as for :func:`load_generator`; the rest as for :class:`Evaluator`.

    Returns:
        ``{"checkpoint", "step", "weights", "dataset", "num_images", "fid_features",
        "clip_score_model", "metrics"}``.

    Example:
        >>> from ratlip_layers.training import evaluate_checkpoint
        >>> import tempfile
        >>> clip_model, tokenizer = tiny_clip()
        >>> G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)
        >>> G.save_pretrained(folder := tempfile.mkdtemp())
        >>> report = evaluate_checkpoint(folder, dataset="shapes", num_images=8,
        ...                              metric_names=["shapes_accuracy"], device="cpu")
        >>> report["weights"], sorted(report["metrics"])
        ('generator', ['bg_acc', 'colour_acc', 'fg_acc', 'passes', 'position_spread', 'shape_acc'])
    """
    if score_clip_model is None and score_clip_pretrained is not None:
        raise ValueError(
            f"score_clip_pretrained={score_clip_pretrained!r} needs score_clip_model, the open_clip model "
            "those weights belong to"
        )
    target = resolve_device(device)
    generator, info = load_generator(checkpoint, device=target, use_ema=use_ema)
    run = info["config"]  # the run's TrainConfig; None for a save_pretrained folder
    if run is not None:
        dataset = dataset or run.dataset
        data_dir = run.data_dir if data_dir is None and dataset == run.dataset else data_dir
        num_images = run.eval_images if num_images is None else num_images
    if dataset is None:
        raise ValueError("this checkpoint does not record its dataset; pass dataset=... (--dataset)")
    num_images = 30_000 if num_images is None else num_images
    if score_clip_model is None:
        scoring_clip, tokenizer = generator.clip_model, generator.text.tokenizer
        clip_name = f"the generator's CLIP ({run.clip_model if run is not None else 'from save_pretrained'})"
    else:
        scoring_clip, tokenizer = build_clip_model(score_clip_model, score_clip_pretrained, device=target)
        clip_name = f"{score_clip_model} ({score_clip_pretrained or 'random weights'})"
    context = MetricContext(scoring_clip, tokenizer, fid_features=fid_features,
                            inception_weights=inception_weights)
    evaluator = Evaluator(
        build_dataset(dataset, split="test", image_size=generator.config.image_size, data_dir=data_dir),
        dataset_name=dataset, context=context, num_images=num_images, batch_size=batch_size, seed=seed,
        fid_cache=fid_cache, fid_reference=fid_reference, metric_names=metric_names,
        dist_ctx=DistributedContext(device=target), num_workers=num_workers,
    )
    features = _FID_FEATURES.get(fid_features, f"image embedding of {clip_name}")
    if fid_reference is not None:
        features += f", against {fid_reference}"
    return {
        "checkpoint": info["source"], "step": info["step"], "weights": info["weights"], "dataset": dataset,
        "num_images": num_images, "fid_features": features, "clip_score_model": clip_name,
        "metrics": evaluator.evaluate(generator),
    }
