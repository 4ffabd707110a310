"""The built-in ``shapes`` data: coloured shapes on coloured backgrounds, drawn on the fly. Sample ``i``
is a pure function of ``(seed, split, i)``, so every process draws the same image for an index."""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._checks import check_nonnegative_int, check_positive_int
from .keys import DrawKey, split_key
from .transforms import to_signed

__all__ = [
    "CAPTION_CLASSES", "PALETTE", "PHRASINGS", "SHAPES", "ShapeSpec", "ShapesDataset", "parse_shapes_caption",
    "render_shape", "shape_mask", "shapes_caption",
]

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 205, 40),
    "purple": (140, 60, 180), "orange": (245, 140, 30), "white": (240, 240, 240), "black": (20, 20, 20),
}
"""The sRGB colours a shape or a background may take."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
"""The shapes a picture may show."""

CAPTION_CLASSES: tuple[tuple[str, str, str], ...] = tuple(
    (shape, colour, background) for shape in SHAPES for colour in PALETTE for background in PALETTE
    if background != colour
)
"""The 168 ``(shape, colour, background)`` classes the captions can name, in a fixed order."""

# The shape's colour comes first in every template: a random CLIP text tower then keeps the colours apart
# (a linear probe reads the background 82 % right, 60 % if one template differs), so training is fast.
PHRASINGS: tuple[str, ...] = (
    "{a_colour} {shape} on {a_background} background",
    "{a_colour} {shape} against {a_background} background",
    "{a_colour} {shape} in front of {a_background} background",
    "a picture of {a_colour} {shape} on {a_background} background",
)
"""Caption templates; each names the shape and its colour first, then the background colour."""

_SPLIT_IDS = {"train": 0, "test": 1}
_SUPERSAMPLE = 2  # draw at twice the size and average, so edges are anti-aliased


def shapes_caption(shape: str, colour: str, background: str, phrasing: int = 0) -> str:
    """The caption of a ``colour`` shape on a ``background``.

    Args:
        shape, colour, background: one of :data:`SHAPES`, and two different keys of :data:`PALETTE`.
        phrasing: index into :data:`PHRASINGS`.

    Example:
        >>> from ratlip_layers.data import shapes_caption
        >>> shapes_caption("circle", "red", "blue")
        'a red circle on a blue background'
        >>> shapes_caption("square", "orange", "white", phrasing=2)
        'an orange square in front of a white background'
    """
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    for name, value in (("colour", colour), ("background", background)):
        if value not in PALETTE:
            raise ValueError(f"{name} must be one of {tuple(PALETTE)}, got {value!r}")
    if colour == background:
        raise ValueError(f"colour and background must differ, both are {colour!r}")
    if not 0 <= phrasing < len(PHRASINGS):
        raise ValueError(f"phrasing must be in [0, {len(PHRASINGS)}), got {phrasing}")
    article = {word: ("an " if word[0] in "aeiou" else "a ") + word for word in (colour, background)}
    return PHRASINGS[phrasing].format(a_colour=article[colour], shape=shape, a_background=article[background])


_SHAPE_RE = re.compile(rf"\b({'|'.join(PALETTE)})\s+({'|'.join(SHAPES)})\b")
_BACKGROUND_RE = re.compile(rf"\b({'|'.join(PALETTE)})\s+background\b")


def parse_shapes_caption(caption: str) -> tuple[str, str, str]:
    """Read ``(shape, colour, background)`` back from a caption naming "<colour> <shape>" and
    "<colour> background" (any of the :data:`PHRASINGS`); ``ValueError`` if it names neither.

    Example:
        >>> from ratlip_layers.data import parse_shapes_caption
        >>> parse_shapes_caption("a picture of a red circle on a blue background")
        ('circle', 'red', 'blue')
    """
    if not isinstance(caption, str):
        raise TypeError(f"caption must be a str, got {type(caption).__name__}")
    shape, background = _SHAPE_RE.search(caption.lower()), _BACKGROUND_RE.search(caption.lower())
    if shape is None or background is None:
        raise ValueError(f"caption {caption!r} does not name '<colour> <shape>' and '<colour> background' "
                         f"with colours from {tuple(PALETTE)} and shapes from {SHAPES}")
    return shape.group(2), shape.group(1), background.group(1)


class ShapeSpec(NamedTuple):
    """Everything that determines one ``shapes`` image (positions and sizes are fractions of the side).

    Example:
        >>> from ratlip_layers.data import ShapesDataset
        >>> spec = ShapesDataset(10).spec(0)
        >>> spec.shape in ("circle", "square", "triangle"), spec.colour != spec.background
        (True, True)
    """

    shape: str
    colour: str
    background: str
    cx: float
    cy: float
    radius: float


def shape_mask(shape: str, cx: float, cy: float, radius: float, size: int) -> np.ndarray:
    """The ``(size, size)`` mask of the pixel centres a shape covers; centre and radius are fractions of
    the side, and every shape has about the area of that circle."""
    coords = (np.arange(size, dtype=np.float64) + 0.5) / size
    dy, dx = np.meshgrid(coords - cy, coords - cx, indexing="ij")
    if shape == "circle":
        return dx**2 + dy**2 <= radius**2
    if shape == "square":  # half-side 0.85 r
        return (np.abs(dx) <= 0.85 * radius) & (np.abs(dy) <= 0.85 * radius)
    if shape == "triangle":  # apex at cy - 1.1 r, base at cy + 0.9 r of half-width 1.15 r
        return (dy <= 0.9 * radius) & (np.abs(dx) <= (dy + 1.1 * radius) * (1.15 / 2.0))
    raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")


def render_shape(spec: ShapeSpec, image_size: int) -> np.ndarray:
    """Draw ``spec`` as an ``(image_size, image_size, 3)`` uint8 sRGB array.

    Example:
        >>> from ratlip_layers.data import ShapeSpec, render_shape
        >>> img = render_shape(ShapeSpec("square", "red", "blue", 0.5, 0.5, 0.3), 16)
        >>> img.shape, img[0, 0].tolist(), img[8, 8].tolist()
        ((16, 16, 3), [40, 80, 220], [220, 40, 40])
    """
    if not isinstance(spec, ShapeSpec):
        raise TypeError(f"spec must be a ShapeSpec, got {type(spec).__name__}")
    n, k = check_positive_int("image_size", image_size), _SUPERSAMPLE
    mask = shape_mask(spec.shape, spec.cx, spec.cy, spec.radius, n * k)
    big = np.where(mask[..., None], PALETTE[spec.colour], PALETTE[spec.background]).astype(np.float64)
    return np.rint(big.reshape(n, k, n, k, 3).mean(axis=(1, 3))).astype(np.uint8)


class ShapesDataset(Dataset):
    """Items ``(image, "a {colour} {shape} on a {colour} background")``, the image (3, S, S) in [-1, 1]
    with ``S = image_size``; a key is an index, which fixes the picture, or an ``(index, draw_seed)``
    pair, whose draw seed picks the phrasing.

    Args:
        num_samples, image_size: the dataset's length and the images' side in pixels.
        seed, split: fix every picture; ``"train"`` and ``"test"`` are drawn from different streams.

    Example:
        >>> from ratlip_layers.data import ShapesDataset
        >>> image, caption = ShapesDataset(100, image_size=32, seed=0)[3]
        >>> image.shape, bool(image.abs().max() <= 1), ShapesDataset(100, image_size=32)[3][0].equal(image)
        (torch.Size([3, 32, 32]), True, True)
    """

    def __init__(self, num_samples: int = 10_000, *, image_size: int = 32, seed: int = 0,
                 split: str = "train") -> None:
        self.num_samples = check_positive_int("num_samples", num_samples)
        self.image_size = check_positive_int("image_size", image_size)
        self.seed = check_nonnegative_int("seed", seed)
        if split not in _SPLIT_IDS:
            raise ValueError(f"split must be one of {tuple(_SPLIT_IDS)}, got {split!r}")
        self.split = split

    def __len__(self) -> int:
        return self.num_samples

    def spec(self, index: int) -> ShapeSpec:
        """The :class:`ShapeSpec` of item ``index``."""
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} is out of range for a dataset of {self.num_samples} samples")
        rng = np.random.default_rng([self.seed, _SPLIT_IDS[self.split], index])
        names = list(PALETTE)
        colour = names[rng.integers(len(names))]
        background = [n for n in names if n != colour][rng.integers(len(names) - 1)]
        radius = rng.uniform(0.22, 0.34)
        margin = 1.2 * radius + 0.02  # keeps every shape, the triangle's base included, inside
        cx, cy = rng.uniform(margin, 1.0 - margin, size=2)
        shape = SHAPES[rng.integers(len(SHAPES))]
        return ShapeSpec(shape, colour, background, float(cx), float(cy), float(radius))

    def caption(self, key: int | DrawKey) -> str:
        """The caption ``self[key]`` has, without drawing the image."""
        index, generator = split_key(key)
        phrasing = int(torch.randint(len(PHRASINGS), (), generator=generator))
        return shapes_caption(*self.spec(index)[:3], phrasing)

    def __getitem__(self, key: int | DrawKey) -> tuple[Tensor, str]:
        pixels = render_shape(self.spec(split_key(key)[0]), self.image_size)
        return to_signed(torch.from_numpy(pixels).permute(2, 0, 1)), self.caption(key)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_samples={self.num_samples}, image_size={self.image_size}, "
                f"seed={self.seed}, split={self.split!r})")
