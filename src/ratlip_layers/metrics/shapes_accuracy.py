"""Does a generated ``shapes`` image show what its caption asked for: both colours, and the shape?

Every pixel is snapped to the nearest :data:`ratlip_layers.data.PALETTE` colour. The background is
the colour most of the border shows (the shapes never reach it); the shape's colour is the colour
most of the interior's other pixels show. Votes over pixels, not an average colour: a generated
red whose pixels scatter around the palette's red still reads as red, where the median of its
pixels can fall between red and orange. The shape is read from the geometry of the pixels that are
not the background's colour (after a 3x3 majority filter, so stray pixels do not count): each of
circle, square and triangle is fitted to their centroid and area, and the one that overlaps them
best wins. The shape's position is the centroid of those pixels. Nothing here depends on a CLIP or
on any trained network.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from .._checks import check_size, check_tensor
from ..data.shapes import (
    CAPTION_CLASSES,
    PALETTE,
    SHAPES,
    ShapesDataset,
    parse_shapes_caption,
    shape_mask,
)

__all__ = ["ShapesAccuracy", "read_shapes_image"]

_PALETTE_NAMES = tuple(PALETTE)
_CLASSES = {key: i for i, key in enumerate(CAPTION_CLASSES)}
_REFERENCE_ITEMS = 512  # real images whose positions set the spread a generator should reach
_MIN_FOREGROUND_FRACTION = 0.02  # of the interior; below it, no shape was drawn
# Area of each shape of "radius" r, in units of r^2 (see shape_mask), and how far its centroid lies
# below its centre, in units of r: the triangle's centroid is 2/3 of the way from apex to base.
_AREA = {"circle": np.pi, "square": 1.7**2, "triangle": 2.3 * 2.0 / 2}
_CENTROID_BELOW_CENTRE = {"circle": 0.0, "square": 0.0, "triangle": -1.1 + 2.0 * 2 / 3}


def _fit_shape(mask: np.ndarray) -> tuple[str, tuple[float, float]]:
    """The shape whose template, placed at the mask's centroid with the mask's area, overlaps it
    best, and the centroid ``(x, y)`` as fractions of the side."""
    size = mask.shape[0]
    ys, xs = np.nonzero(mask)
    cx, cy = (xs.mean() + 0.5) / size, (ys.mean() + 0.5) / size
    area = mask.mean()
    best, best_iou = SHAPES[0], -1.0
    for shape in SHAPES:
        radius = float(np.sqrt(area / _AREA[shape]))
        template = shape_mask(shape, cx, cy - _CENTROID_BELOW_CENTRE[shape] * radius, radius, size)
        iou = (template & mask).sum() / max(1, (template | mask).sum())
        if iou > best_iou:
            best, best_iou = shape, iou
    return best, (float(cx), float(cy))


def read_shapes_image(images: Tensor) -> list[tuple[str | None, str | None, str]]:
    """Read ``(shape, colour, background)`` off each image, as :data:`~ratlip_layers.data.SHAPES`
    and :data:`~ratlip_layers.data.PALETTE` names.

    Args:
        images: generated or real ``shapes`` images in ``[-1, 1]``.

    Returns:
        One ``(shape, colour, background)`` per image; ``shape`` and ``colour`` are ``None`` when
        under 2 % of the interior shows a colour other than the background's (no shape was drawn).

    Shape:
        - images: :math:`(B, 3, S, S)`, ``S >= 8``

    Example:
        >>> from ratlip_layers.data import ShapesDataset
        >>> from ratlip_layers.metrics import read_shapes_image
        >>> ds = ShapesDataset(4, image_size=32)
        >>> spec = ds.spec(0)
        >>> read_shapes_image(ds[0][0][None]) == [(spec.shape, spec.colour, spec.background)]
        True
    """
    return [reading[:3] for reading in _read(images)]


def _read(images: Tensor) -> list[tuple[str | None, str | None, str, tuple[float, float] | None]]:
    """:func:`read_shapes_image`'s readings, each with the shape's centroid (``None`` without a shape)."""
    check_tensor("images", images, 4, "(B, 3, S, S)")
    check_size("images", images, 1, 3, "channels")
    size = images.shape[-1]
    if size < 8 or images.shape[-2] != size:
        raise ValueError(f"images must be square with side >= 8, got shape {tuple(images.shape)}")
    pixels = (images.detach().float().clamp(-1, 1) + 1) * 127.5
    palette = torch.tensor(list(PALETTE.values()), dtype=pixels.dtype, device=pixels.device)
    labels = torch.cdist(pixels.flatten(2).transpose(1, 2), palette).argmin(-1).view(-1, size, size)
    ring = max(1, size // 16)
    border = np.ones((size, size), dtype=bool)
    border[ring:-ring, ring:-ring] = False
    labels = labels.cpu()
    on_border = torch.from_numpy(border)
    backgrounds = torch.stack([torch.bincount(i[on_border], minlength=len(PALETTE)).argmax() for i in labels])
    off_background = (labels != backgrounds.view(-1, 1, 1)).float()[:, None]
    shape_masks = (F.avg_pool2d(off_background, 3, stride=1, padding=1, count_include_pad=False) > 0.5)[:, 0]
    results = []
    for image, background, mask in zip(labels.numpy(), backgrounds.tolist(), shape_masks.numpy()):
        interior = image[~border]
        others = interior[interior != background]
        if others.size < _MIN_FOREGROUND_FRACTION * interior.size:
            results.append((None, None, _PALETTE_NAMES[background], None))
            continue
        colour = int(np.bincount(others, minlength=len(PALETTE)).argmax())
        shape, centre = _fit_shape(mask) if mask.any() else (None, None)
        results.append((shape, _PALETTE_NAMES[colour], _PALETTE_NAMES[background], centre))
    return results


@lru_cache  # the same real images every evaluation: read them once per size
def _reference_spread(image_size: int) -> float:
    """The real data's spread of the shape's position (see :class:`ShapesAccuracy`), read from real
    images by the same reader, so that the reader's own error cancels in the ratio."""
    real = ShapesDataset(_REFERENCE_ITEMS, image_size=image_size, split="test")
    centres = [r[3] for r in _read(torch.stack([real[i][0] for i in range(len(real))])) if r[3] is not None]
    return float(np.sqrt(np.var(np.asarray(centres), axis=0, ddof=1).sum()))


class ShapesAccuracy(Metric):
    """How often generated ``shapes`` images show their caption's colours and shape.

    ``compute()`` returns ``colour_acc`` (both colours right), ``fg_acc`` (the shape's colour),
    ``bg_acc`` (the background's) and ``shape_acc`` (the shape), each in ``[0, 1]``, as read by
    :func:`read_shapes_image`. By chance ``bg_acc`` is 1/8, ``colour_acc`` 1/56 and ``shape_acc`` 1/3.

    ``position_spread`` says whether a caption's samples differ or the generator draws one picture
    per caption: the standard deviation of the shape's centroid among images of the same caption
    class (pooled over classes with two or more images), over the same spread in real ``shapes``
    images, where position does not depend on the caption. About 1 when samples vary as much as real
    data, 0 for one picture per caption; ``nan`` while no class has two images. Sums are reduced
    across DDP ranks.

    Example:
        >>> from ratlip_layers.data import ShapesDataset
        >>> from ratlip_layers.metrics import ShapesAccuracy
        >>> ds = ShapesDataset(8, image_size=32)
        >>> metric = ShapesAccuracy()
        >>> metric.update(torch.stack([ds[i][0] for i in range(8)]), [ds.caption(i) for i in range(8)])
        >>> {k: round(v, 2) for k, v in metric.compute().items()}
        {'colour_acc': 1.0, 'fg_acc': 1.0, 'bg_acc': 1.0, 'shape_acc': 1.0, 'position_spread': nan}
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in ("total", "fg_correct", "bg_correct", "both_correct", "shape_correct"):
            self.add_state(name, torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        # Per caption class: images with a shape, and the sums of their centroids and squares.
        for name in ("class_count", "class_sum", "class_square"):
            shape = (len(_CLASSES),) if name == "class_count" else (len(_CLASSES), 2)
            self.add_state(name, torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")
        self.image_size: int | None = None

    def update(self, images: Tensor, captions: Sequence[str]) -> None:
        """Score ``images`` against the ``captions`` they were generated from."""
        if len(captions) != images.shape[0]:
            raise ValueError(f"got {images.shape[0]} images but {len(captions)} captions")
        wanted = [parse_shapes_caption(c) for c in captions]
        seen = _read(images)
        self.image_size = images.shape[-1]
        device = self.total.device
        shape, fg, bg = (torch.tensor([s[k] == w[k] for s, w in zip(seen, wanted)], device=device) for k in range(3))
        self.total += len(captions)
        self.fg_correct += fg.sum()
        self.bg_correct += bg.sum()
        self.both_correct += (fg & bg).sum()
        self.shape_correct += shape.sum()
        placed = [(_CLASSES[w], r[3]) for r, w in zip(seen, wanted) if r[3] is not None]
        if placed:
            index = torch.tensor([c for c, _ in placed], device=device)
            centres = torch.tensor([xy for _, xy in placed], dtype=torch.float64, device=device)
            self.class_count.index_add_(0, index, torch.ones(len(placed), dtype=torch.float64, device=device))
            self.class_sum.index_add_(0, index, centres)
            self.class_square.index_add_(0, index, centres**2)

    def compute(self) -> dict[str, float]:
        """Return the four accuracies in ``[0, 1]`` and ``position_spread``."""
        if int(self.total) == 0:
            raise RuntimeError("ShapesAccuracy.compute() called before any update()")
        total = float(self.total)
        return {
            "colour_acc": float(self.both_correct) / total,
            "fg_acc": float(self.fg_correct) / total,
            "bg_acc": float(self.bg_correct) / total,
            "shape_acc": float(self.shape_correct) / total,
            "position_spread": self._position_spread(),
        }

    def _position_spread(self) -> float:
        count = self.class_count
        repeated = count > 1
        if not bool(repeated.any()):
            return float("nan")
        mean = self.class_sum[repeated] / count[repeated, None]
        # Pooled within-class variance: squared deviations from each class's own mean.
        deviations = (self.class_square[repeated] - count[repeated, None] * mean**2).sum()
        within = float(deviations) / float((count[repeated] - 1).sum())
        return float(np.sqrt(max(within, 0.0))) / _reference_spread(self.image_size)
