"""Does a generated ``shapes`` image show what its caption asked for: both colours, and the shape?

Every pixel is snapped to the nearest :data:`ratlip_layers.data.PALETTE` colour. The background is
the colour most of the border shows (the shapes never reach it); the shape's colour is the colour
most of the interior's other pixels show. Votes over pixels, not an average colour: a generated
red whose pixels scatter around the palette's red still reads as red, where the median of its
pixels can fall between red and orange. The shape is read from the geometry of the pixels that are
not the background's colour (after a 3x3 majority filter, so stray pixels do not count): each of
circle, square and triangle is fitted to their centroid and area, and the one that overlaps them
best wins. Nothing here depends on a CLIP or on any trained network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from .._checks import check_size, check_tensor
from ..data.shapes import PALETTE, SHAPES, parse_shapes_caption, shape_mask

__all__ = ["ShapesAccuracy", "read_shapes_image"]

_PALETTE_NAMES = tuple(PALETTE)
_MIN_FOREGROUND_FRACTION = 0.02  # of the interior; below it, no shape was drawn
# Area of each shape of "radius" r, in units of r^2 (see shape_mask), and how far its centroid lies
# below its centre, in units of r: the triangle's centroid is 2/3 of the way from apex to base.
_AREA = {"circle": np.pi, "square": 1.7**2, "triangle": 2.3 * 2.0 / 2}
_CENTROID_BELOW_CENTRE = {"circle": 0.0, "square": 0.0, "triangle": -1.1 + 2.0 * 2 / 3}


def _fit_shape(mask: np.ndarray) -> str:
    """The shape whose template, placed at the mask's centroid with the mask's area, overlaps it best."""
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
    return best


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
    results: list[tuple[str | None, str | None, str]] = []
    for image, background, mask in zip(labels.numpy(), backgrounds.tolist(), shape_masks.numpy()):
        interior = image[~border]
        others = interior[interior != background]
        if others.size < _MIN_FOREGROUND_FRACTION * interior.size:
            results.append((None, None, _PALETTE_NAMES[background]))
            continue
        colour = int(np.bincount(others, minlength=len(PALETTE)).argmax())
        shape = _fit_shape(mask) if mask.any() else None
        results.append((shape, _PALETTE_NAMES[colour], _PALETTE_NAMES[background]))
    return results


class ShapesAccuracy(Metric):
    """How often generated ``shapes`` images show their caption's colours and shape.

    ``compute()`` returns ``colour_acc`` (both colours right), ``fg_acc`` (the shape's colour),
    ``bg_acc`` (the background's) and ``shape_acc`` (the shape), each in ``[0, 1]``, as read by
    :func:`read_shapes_image`. By chance ``bg_acc`` is 1/8, ``colour_acc`` 1/56 and ``shape_acc`` 1/3.
    Counts are summed across DDP ranks.

    Example:
        >>> from ratlip_layers.data import ShapesDataset
        >>> from ratlip_layers.metrics import ShapesAccuracy
        >>> ds = ShapesDataset(8, image_size=32)
        >>> metric = ShapesAccuracy()
        >>> metric.update(torch.stack([ds[i][0] for i in range(8)]), [ds.caption(i) for i in range(8)])
        >>> metric.compute()
        {'colour_acc': 1.0, 'fg_acc': 1.0, 'bg_acc': 1.0, 'shape_acc': 1.0}
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in ("total", "fg_correct", "bg_correct", "both_correct", "shape_correct"):
            self.add_state(name, torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, images: Tensor, captions: Sequence[str]) -> None:
        """Score ``images`` against the ``captions`` they were generated from."""
        if len(captions) != images.shape[0]:
            raise ValueError(f"got {images.shape[0]} images but {len(captions)} captions")
        wanted = [parse_shapes_caption(c) for c in captions]
        seen = read_shapes_image(images)
        device = self.total.device
        shape, fg, bg = (torch.tensor([s[k] == w[k] for s, w in zip(seen, wanted)], device=device) for k in range(3))
        self.total += len(captions)
        self.fg_correct += fg.sum()
        self.bg_correct += bg.sum()
        self.both_correct += (fg & bg).sum()
        self.shape_correct += shape.sum()

    def compute(self) -> dict[str, float]:
        """Return the four accuracies in ``[0, 1]``."""
        if int(self.total) == 0:
            raise RuntimeError("ShapesAccuracy.compute() called before any update()")
        total = float(self.total)
        return {
            "colour_acc": float(self.both_correct) / total,
            "fg_acc": float(self.fg_correct) / total,
            "bg_acc": float(self.bg_correct) / total,
            "shape_acc": float(self.shape_correct) / total,
        }
