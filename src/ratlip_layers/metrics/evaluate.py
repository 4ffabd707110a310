"""Scoring a generator on a dataset's captions with the registered metrics."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor
from torchmetrics import Metric

from .._checks import check_device, check_positive_int
from ..data.keys import DrawKey, draw_seed

__all__ = ["evaluate_generator", "fixed_noise"]


def fixed_noise(indices: list[int], z_dim: int, seed: int) -> Tensor:
    """Noise for image ``i`` that depends on ``(seed, i)`` only, whichever rank or batch draws it.

    Example:
        >>> from ratlip_layers.metrics import fixed_noise
        >>> torch.equal(fixed_noise([3, 4], 8, 0)[1], fixed_noise([4], 8, 0)[0])
        True
    """
    z_dim = check_positive_int("z_dim", z_dim)
    if not isinstance(indices, (list, tuple, range)):
        raise TypeError(f"indices must be a list of image indices, got {type(indices).__name__}")
    if not indices:
        raise ValueError("indices must be a non-empty list of image indices, got an empty list")
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(draw_seed(seed, i)))
                        for i in indices])


@torch.no_grad()
def evaluate_generator(
    generate: Callable[[Tensor, list[str]], Tensor], captions: Callable[[int | DrawKey], str],
    metrics: Mapping[str, Metric], *, num_images: int, z_dim: int, batch_size: int = 64, seed: int = 0,
    device: torch.device | str = "cpu", rank: int = 0, world_size: int = 1, num_captions: int | None = None
) -> dict[str, float]:
    """Generate ``num_images`` images for dataset captions and return every metric's values in one dict;
    image ``i`` has noise :func:`fixed_noise` ``(i)``, so the result does not depend on the number of ranks.

    Args:
        generate: ``(noise (B, z_dim), captions) -> images`` in ``[-1, 1]``.
        captions: a dataset's ``caption`` of an item key.
        metrics: name -> metric with ``update(images, captions)`` and ``compute() -> dict``.
        num_images, z_dim, batch_size: images in total, noise size, images per generator call.
        seed, device: seed of the noise and the caption draws, and where the noise goes.
        num_captions: the number of test items; then image ``i`` gets the caption of key ``(i % num_captions,
            draw_seed(seed, i))``, new on every pass (the reference's ``sample_times``); adds ``"passes"``.

    Example:
        >>> from ratlip_layers.data import ShapesDataset, ShapeSpec, parse_shapes_caption, render_shape
        >>> from ratlip_layers.metrics import ShapesAccuracy, evaluate_generator
        >>> def draw(noise, captions):  # a stand-in generator drawing what each caption asks for
        ...     specs = [ShapeSpec(*parse_shapes_caption(c), 0.5, 0.5, 0.3) for c in captions]
        ...     pixels = [torch.from_numpy(render_shape(s, 32)).permute(2, 0, 1) for s in specs]
        ...     return torch.stack(pixels).float() / 127.5 - 1
        >>> evaluate_generator(draw, ShapesDataset(64, split="test").caption,
        ...                    {"colour": ShapesAccuracy()}, num_images=20, z_dim=8)
        {'colour_acc': 1.0, 'fg_acc': 1.0, 'bg_acc': 1.0, 'shape_acc': 1.0, 'position_spread': nan}
    """
    device = check_device("device", device)
    for name, value in (("num_images", num_images), ("batch_size", batch_size), ("world_size", world_size)):
        check_positive_int(name, value)  # z_dim: checked by fixed_noise
    if isinstance(rank, bool) or not hasattr(rank, "__index__") or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an int in [0, world_size - 1] = [0, {world_size - 1}], got {rank!r}")
    for metric in metrics.values():
        metric.reset()
    mine = list(range(rank, num_images, world_size))
    for start in range(0, len(mine), batch_size):
        indices = mine[start : start + batch_size]
        texts = [captions((i % num_captions, draw_seed(seed, i)) if num_captions else i) for i in indices]
        images = generate(fixed_noise(indices, z_dim, seed).to(device), texts)
        for metric in metrics.values():
            metric.update(images, texts)
    results = {key: value for metric in metrics.values() for key, value in metric.compute().items()}
    if num_captions:
        results["passes"] = -(-num_images // num_captions)
    return results
