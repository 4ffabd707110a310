"""Scoring a generator on a dataset's test captions: what training's ``--eval-every`` and
``examples/evaluate.py`` both run."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..clip import CLIPTextAdapter
from ..metrics import FrechetDistance, MetricContext, build_metrics, evaluate_generator, prepare_real_statistics
from .distributed import DistributedContext

__all__ = ["Evaluator", "default_fid_cache"]


def default_fid_cache() -> Path:
    """Where real-image FID statistics are cached: ``$XDG_CACHE_HOME/ratlip-layers/fid``
    (``~/.cache/ratlip-layers/fid`` by default)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "ratlip-layers" / "fid"


class Evaluator:
    """The registered metrics of a dataset, ready to score generators on its test captions.

    The real statistics of FID are prepared once (from the cache when possible); every
    :meth:`evaluate` then generates ``num_images`` images for the test captions with fixed noise.

    Args:
        test_dataset: the test split (``(image, caption)`` items with a ``caption(i)`` method).
        dataset_id: names the data for the FID cache, e.g. ``"cub-test-256-2933"``.
        dataset_name: the registry's dataset name (which metrics apply).
        context: the :class:`ratlip_layers.metrics.MetricContext` (scoring CLIP, FID features).
        num_images: images generated per evaluation.
        batch_size: images per generator call.
        seed: the noise seed.
        fid_cache: the cache directory (default :func:`default_fid_cache`).
        metric_names: a subset of the registered metrics (default: all that apply).
        dist_ctx: the ranks to share the work with.
        num_workers: data-loader workers for the real statistics.
    """

    def __init__(
        self,
        test_dataset: Dataset,
        *,
        dataset_id: str,
        dataset_name: str,
        context: MetricContext,
        num_images: int,
        batch_size: int = 64,
        seed: int = 0,
        fid_cache: str | Path | None = None,
        metric_names: Sequence[str] | None = None,
        dist_ctx: DistributedContext | None = None,
        num_workers: int = 0,
    ) -> None:
        self.dataset = test_dataset
        self.dist = dist_ctx or DistributedContext()
        self.num_images = num_images
        self.batch_size = batch_size
        self.seed = seed
        self.metrics = {
            name: metric.to(self.dist.device) for name, metric in build_metrics(dataset_name, context, metric_names).items()
        }
        self.text = CLIPTextAdapter(context.clip_model, tokenizer=context.tokenizer)
        self.fid_cache_file: Path | None = None
        for metric in self.metrics.values():
            if isinstance(metric, FrechetDistance):
                self.fid_cache_file = prepare_real_statistics(
                    metric,
                    test_dataset,
                    cache_dir=fid_cache or default_fid_cache(),
                    dataset_id=dataset_id,
                    batch_size=batch_size,
                    num_workers=num_workers,
                    is_main=self.dist.is_main,
                )
        self.dist.barrier()

    @torch.no_grad()
    def evaluate(self, generator: nn.Module, text_encoder: CLIPTextAdapter | None = None) -> dict[str, Any]:
        """Score ``generator`` (``(noise, sentence) -> images``, put in eval mode meanwhile).

        Args:
            generator: the generator to score (e.g. the EMA copy).
            text_encoder: the text encoder the generator was trained with; by default its own
                ``generator.text`` (a :class:`ratlip_layers.models.RATLIPGenerator` has one), else the
                scoring CLIP's.

        Returns:
            The metric values, merged; identical on every rank.
        """
        text = text_encoder or getattr(generator, "text", None) or self.text
        was_training = generator.training
        generator.eval()

        def generate(noise: Tensor, captions: list[str]) -> Tensor:
            return generator(noise, text(captions).sentence.float()).float().clamp(-1.0, 1.0)

        try:
            return evaluate_generator(
                generate,
                self.dataset.caption,
                self.metrics,
                num_images=self.num_images,
                z_dim=generator.z_dim,
                batch_size=self.batch_size,
                seed=self.seed,
                device=self.dist.device,
                rank=self.dist.rank,
                world_size=self.dist.world_size,
            )
        finally:
            generator.train(was_training)
