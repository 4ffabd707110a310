"""Does a generated ``shapes`` image show its caption's colours and shape? Pixels vote for their nearest
:data:`~ratlip_layers.data.PALETTE` colour: the border's majority is the background, the rest of the
interior's the shape's colour. The shape that, placed at the off-background pixels' centroid with their
area, overlaps them best wins. No network is involved."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from .._checks import check_size, check_tensor
from ..data.shapes import CAPTION_CLASSES, PALETTE, SHAPES, ShapesDataset, parse_shapes_caption, shape_mask

__all__ = ["ShapesAccuracy", "read_shapes_image"]

_NAMES = tuple(PALETTE)
_CLASSES = {key: i for i, key in enumerate(CAPTION_CLASSES)}
_REFERENCE_ITEMS = 512  # real images whose positions set the spread a generator should reach
_COUNTS = {  # each accuracy and the count it divides by the total
    "colour_acc": "both_correct", "fg_acc": "fg_correct", "bg_acc": "bg_correct", "shape_acc": "shape_correct"
}
_MIN_FOREGROUND = 0.02  # fraction of the interior; below it, no shape was drawn


@lru_cache
def _geometry(shape: str) -> tuple[float, float]:
    """A shape's area / radius² and its centroid's offset below its centre / radius, as drawn."""
    size, radius = 512, 0.25
    rows = np.nonzero(shape_mask(shape, 0.5, 0.5, radius, size))[0]
    return rows.size / (size * radius) ** 2, ((rows.mean() + 0.5) / size - 0.5) / radius


def _fit_shape(mask: np.ndarray) -> tuple[str, tuple[float, float]]:
    """The best-overlapping shape, and the mask's centroid ``(x, y)`` as fractions of the side."""
    size, (ys, xs) = mask.shape[0], np.nonzero(mask)
    cx, cy = (xs.mean() + 0.5) / size, (ys.mean() + 0.5) / size

    def overlap(shape: str) -> float:
        area, below = _geometry(shape)
        radius = float(np.sqrt(mask.mean() / area))
        template = shape_mask(shape, cx, cy - below * radius, radius, size)
        return (template & mask).sum() / max(1, (template | mask).sum())

    return max(SHAPES, key=overlap), (float(cx), float(cy))


def _read(images: Tensor) -> list[tuple]:
    """``(shape, colour, background, centroid)`` per image; see :func:`read_shapes_image`."""
    check_tensor("images", images, 4, "(B, 3, S, S)")
    check_size("images", images, 1, 3, "channels")
    if (size := images.shape[-1]) < 8 or images.shape[-2] != size:
        raise ValueError(f"images must be square with side >= 8, got shape {tuple(images.shape)}")
    pixels = (images.detach().float().clamp(-1, 1) + 1) * 127.5
    palette = torch.tensor(list(PALETTE.values()), dtype=pixels.dtype, device=pixels.device)
    labels = torch.cdist(pixels.flatten(2).transpose(1, 2), palette).argmin(-1).view(-1, size, size).cpu()
    ring = max(1, size // 16)
    border = torch.ones(size, size, dtype=torch.bool)
    border[ring:-ring, ring:-ring] = False
    backgrounds = torch.stack([torch.bincount(i[border], minlength=len(PALETTE)).argmax() for i in labels])
    off_background = (labels != backgrounds.view(-1, 1, 1)).float()[:, None]
    masks = F.avg_pool2d(off_background, 3, stride=1, padding=1, count_include_pad=False)[:, 0] > 0.5
    readings = []
    for image, background, mask in zip(labels.numpy(), backgrounds.tolist(), masks.numpy()):
        interior = image[~border.numpy()]
        others = interior[interior != background]
        shape = colour = centre = None
        if others.size >= _MIN_FOREGROUND * interior.size:
            colour = _NAMES[np.bincount(others, minlength=len(PALETTE)).argmax()]
            shape, centre = _fit_shape(mask) if mask.any() else (None, None)
        readings.append((shape, colour, _NAMES[background], centre))
    return readings


def read_shapes_image(images: Tensor) -> list[tuple[str | None, str | None, str]]:
    """Read ``(shape, colour, background)`` names off each ``shapes`` image, ``(B, 3, S, S)`` in ``[-1, 1]``
    with ``S >= 8``; ``shape`` and ``colour`` are ``None`` when no shape was drawn.

    Example:
        >>> from ratlip_layers.data import ShapesDataset
        >>> from ratlip_layers.metrics import read_shapes_image
        >>> ds = ShapesDataset(4, image_size=32)
        >>> read_shapes_image(ds[0][0][None]) == [ds.spec(0)[:3]]
        True
    """
    return [reading[:3] for reading in _read(images)]


@lru_cache  # the same real images every evaluation: read them once per size
def _reference_spread(image_size: int) -> float:
    """The spread of the shape's position in real images, read by the same reader so that its error
    cancels in :class:`ShapesAccuracy`'s ratio."""
    real = ShapesDataset(_REFERENCE_ITEMS, image_size=image_size, split="test")
    centres = [r[3] for r in _read(torch.stack([real[i][0] for i in range(len(real))])) if r[3] is not None]
    return float(np.sqrt(np.var(np.asarray(centres), axis=0, ddof=1).sum()))


class ShapesAccuracy(Metric):
    """How often generated ``shapes`` images show their caption's colours and shape.

    ``compute()`` returns ``colour_acc`` (both colours right; 1/56 by chance), ``fg_acc`` (the shape's
    colour), ``bg_acc`` (the background's; 1/8) and ``shape_acc`` (1/3), and ``position_spread``: the
    standard deviation of the shape's centroid within a caption class (pooled over classes with two
    or more images) over that of real images; about 1 when samples vary as much as real data, 0 for
    one picture per caption, ``nan`` while no class has two images.

    Example:
        >>> from ratlip_layers.data import ShapesDataset
        >>> from ratlip_layers.metrics import ShapesAccuracy
        >>> ds, metric = ShapesDataset(8, image_size=32), ShapesAccuracy()
        >>> metric.update(torch.stack([ds[i][0] for i in range(8)]), [ds.caption(i) for i in range(8)])
        >>> metric.compute()
        {'colour_acc': 1.0, 'fg_acc': 1.0, 'bg_acc': 1.0, 'shape_acc': 1.0, 'position_spread': nan}
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in ("total", *_COUNTS.values()):
            self.add_state(name, torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        # Per caption class: images with a shape, and the sums of their centroids and squared centroids.
        for name, size in (("class_count", ()), ("class_sum", (2,)), ("class_square", (2,))):
            self.add_state(name, torch.zeros(len(_CLASSES), *size, dtype=torch.float64), dist_reduce_fx="sum")
        self.image_size: int | None = None

    def update(self, images: Tensor, captions: Sequence[str]) -> None:
        """Score ``images`` against the ``captions`` they were generated from."""
        if len(captions) != images.shape[0]:
            raise ValueError(f"got {images.shape[0]} images but {len(captions)} captions")
        wanted, seen, device = [parse_shapes_caption(c) for c in captions], _read(images), self.total.device
        self.image_size = images.shape[-1]
        hits = torch.tensor([[s[k] == w[k] for k in range(3)] for s, w in zip(seen, wanted)], device=device)
        shape, fg, bg = hits.unbind(1)
        self.total += len(captions)
        self.fg_correct += fg.sum()
        self.bg_correct += bg.sum()
        self.both_correct += (fg & bg).sum()
        self.shape_correct += shape.sum()
        if placed := [(_CLASSES[w], s[3]) for s, w in zip(seen, wanted) if s[3] is not None]:
            index = torch.tensor([c for c, _ in placed], device=device)
            centres = torch.tensor([xy for _, xy in placed], dtype=torch.float64, device=device)
            self.class_count.index_add_(0, index, torch.ones(len(placed), dtype=torch.float64, device=device))
            self.class_sum.index_add_(0, index, centres)
            self.class_square.index_add_(0, index, centres**2)

    def compute(self) -> dict[str, float]:
        if int(self.total) == 0:
            raise RuntimeError("ShapesAccuracy.compute() called before any update()")
        scores = {key: float(getattr(self, name)) / float(self.total) for key, name in _COUNTS.items()}
        repeated, spread = self.class_count > 1, float("nan")
        if bool(repeated.any()):
            count = self.class_count[repeated, None]
            # Pooled within-class variance: squared deviations from each class's own mean.
            deviations = (self.class_square[repeated] - self.class_sum[repeated] ** 2 / count).sum()
            within = float(deviations) / float((count - 1).sum())
            spread = float(np.sqrt(max(within, 0.0))) / _reference_spread(self.image_size)
        return {**scores, "position_spread": spread}
