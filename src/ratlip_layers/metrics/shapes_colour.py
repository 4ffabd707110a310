"""Does a generated ``shapes`` image show the colours its caption asked for?

The background colour is read from the image border (the shapes never reach it), the shape's colour
from the interior pixels that differ clearly from the background; each is snapped to the nearest
:data:`ratlip_layers.data.PALETTE` colour and compared with the caption.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from .._checks import check_size, check_tensor
from ..data.shapes import PALETTE, parse_shapes_caption

__all__ = ["ShapesColourAccuracy", "estimate_shapes_colours"]

_PALETTE_NAMES = tuple(PALETTE)
# A pixel belongs to the shape when it is this far (RGB, 0-255) from the background estimate; the
# closest two palette colours (orange and yellow) are 66 apart, so about a third of that is safe.
_FOREGROUND_DISTANCE = 24.0
_MIN_FOREGROUND_FRACTION = 0.02


def _nearest(colours: Tensor) -> Tensor:
    palette = torch.tensor(list(PALETTE.values()), dtype=colours.dtype, device=colours.device)
    return torch.cdist(colours, palette).argmin(dim=-1)


def estimate_shapes_colours(images: Tensor) -> tuple[list[str | None], list[str]]:
    """Estimate each image's shape colour and background colour as palette names.

    Args:
        images: generated or real ``shapes`` images in ``[-1, 1]``.

    Returns:
        ``(colours, backgrounds)``: one name per image; a colour is ``None`` when under 2 % of the
        interior differs from the background (no shape was drawn).

    Shape:
        - images: :math:`(B, 3, S, S)`, ``S >= 8``

    Example:
        >>> from ratlip_layers.data import ShapesDataset
        >>> from ratlip_layers.metrics import estimate_shapes_colours
        >>> ds = ShapesDataset(4, image_size=32)
        >>> spec = ds.spec(0)
        >>> estimate_shapes_colours(ds[0][0][None]) == ([spec.colour], [spec.background])
        True
    """
    check_tensor("images", images, 4, "(B, 3, S, S)")
    check_size("images", images, 1, 3, "channels")
    size = images.shape[-1]
    if size < 8 or images.shape[-2] != size:
        raise ValueError(f"images must be square with side >= 8, got shape {tuple(images.shape)}")
    pixels = (images.detach().float().clamp(-1, 1) + 1) * 127.5
    ring = max(1, size // 16)
    border = torch.ones(size, size, dtype=torch.bool, device=images.device)
    border[ring:-ring, ring:-ring] = False
    flat = pixels.flatten(2).transpose(1, 2)  # (B, S*S, 3)
    background = flat[:, border.flatten()].median(dim=1).values  # (B, 3)
    interior = flat[:, ~border.flatten()]
    differs = (interior - background[:, None]).norm(dim=-1) > _FOREGROUND_DISTANCE
    colours: list[str | None] = []
    for sample, mask in zip(interior, differs):
        if mask.float().mean() < _MIN_FOREGROUND_FRACTION:
            colours.append(None)
        else:
            colours.append(_PALETTE_NAMES[int(_nearest(sample[mask].median(dim=0).values[None])[0])])
    backgrounds = [_PALETTE_NAMES[int(i)] for i in _nearest(background)]
    return colours, backgrounds


class ShapesColourAccuracy(Metric):
    """Fraction of generated ``shapes`` images whose shape and background colours match the caption.

    ``compute()`` returns ``colour_acc`` (both right), ``fg_acc`` (shape colour right) and
    ``bg_acc`` (background right). With colours guessed at random, ``bg_acc`` is 1/8 and
    ``colour_acc`` about 1/56. Counts are summed across DDP ranks.

    Example:
        >>> from ratlip_layers.data import ShapesDataset
        >>> from ratlip_layers.metrics import ShapesColourAccuracy
        >>> ds = ShapesDataset(8, image_size=32)
        >>> metric = ShapesColourAccuracy()
        >>> metric.update(torch.stack([ds[i][0] for i in range(8)]), [ds.caption(i) for i in range(8)])
        >>> metric.compute()
        {'colour_acc': 1.0, 'fg_acc': 1.0, 'bg_acc': 1.0}
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in ("total", "fg_correct", "bg_correct", "both_correct"):
            self.add_state(name, torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, images: Tensor, captions: Sequence[str]) -> None:
        """Score ``images`` against the ``captions`` they were generated from."""
        if len(captions) != images.shape[0]:
            raise ValueError(f"got {images.shape[0]} images but {len(captions)} captions")
        wanted = [parse_shapes_caption(c) for c in captions]
        colours, backgrounds = estimate_shapes_colours(images)
        fg = torch.tensor([c == w[1] for c, w in zip(colours, wanted)], device=self.total.device)
        bg = torch.tensor([b == w[2] for b, w in zip(backgrounds, wanted)], device=self.total.device)
        self.total += len(captions)
        self.fg_correct += fg.sum()
        self.bg_correct += bg.sum()
        self.both_correct += (fg & bg).sum()

    def compute(self) -> dict[str, float]:
        """Return the three accuracies in ``[0, 1]``."""
        if int(self.total) == 0:
            raise RuntimeError("ShapesColourAccuracy.compute() called before any update()")
        total = float(self.total)
        return {
            "colour_acc": float(self.both_correct) / total,
            "fg_acc": float(self.fg_correct) / total,
            "bg_acc": float(self.bg_correct) / total,
        }
