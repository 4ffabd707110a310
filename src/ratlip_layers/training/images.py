"""Image grids with their captions written beside each row, and PNG writing."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from .._checks import check_size, check_tensor

__all__ = ["captioned_grid", "save_images", "to_pil"]

_MIN_CELL = 64  # small images are enlarged (nearest) so that a 32 px sample stays visible
_TEXT_WIDTH = 240
_PAD = 4


def to_pil(image: Tensor) -> Image.Image:
    """One ``(3, H, W)`` image in ``[-1, 1]`` as an RGB PIL image (clamped, rounded to 8 bits).

    Example:
        >>> from ratlip_layers.training import to_pil
        >>> to_pil(torch.ones(3, 4, 5)).size, to_pil(torch.ones(3, 4, 5)).getpixel((0, 0))
        ((5, 4), (255, 255, 255))
    """
    check_tensor("image", image, 3, "(3, H, W)")
    check_size("image", image, 0, 3, "channels")
    pixels = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(pixels), mode="RGB")


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def captioned_grid(images: Tensor, captions: Sequence[str], *, columns: int) -> Image.Image:
    """A grid with one row per caption: the caption on the left, then ``columns`` images.

    Args:
        images: ``len(captions) * columns`` images in ``[-1, 1]``, row by row.
        captions: one caption per row.
        columns: images per row.

    Returns:
        The grid as an RGB PIL image.

    Shape:
        - images: :math:`(R \\cdot C, 3, H, W)`

    Example:
        >>> from ratlip_layers.training import captioned_grid
        >>> grid = captioned_grid(torch.zeros(6, 3, 32, 32), ["a red circle", "a blue square"], columns=3)
        >>> grid.size
        (448, 140)
    """
    check_tensor("images", images, 4, "(rows * columns, 3, H, W)")
    if columns < 1 or images.shape[0] != len(captions) * columns:
        raise ValueError(
            f"images must hold len(captions) * columns = {len(captions)} * {columns} images, "
            f"got {images.shape[0]}"
        )
    height, width = images.shape[-2:]
    scale = max(1, -(-_MIN_CELL // min(height, width)))
    cell_w, cell_h = width * scale, height * scale
    grid = Image.new(
        "RGB",
        (_TEXT_WIDTH + columns * (cell_w + _PAD) + _PAD, len(captions) * (cell_h + _PAD) + _PAD),
        (255, 255, 255),
    )
    draw = ImageDraw.Draw(grid)
    font = _font()
    chars = max(8, int(_TEXT_WIDTH / max(1.0, draw.textlength("abcdefghij", font=font) / 10)) - 2)
    for row, caption in enumerate(captions):
        top = _PAD + row * (cell_h + _PAD)
        draw.multiline_text((_PAD, top), "\n".join(textwrap.wrap(caption, chars)), fill=(0, 0, 0), font=font)
        for col in range(columns):
            image = to_pil(images[row * columns + col])
            if scale > 1:
                image = image.resize((cell_w, cell_h), Image.Resampling.NEAREST)
            grid.paste(image, (_TEXT_WIDTH + _PAD + col * (cell_w + _PAD), top))
    return grid


def save_images(images: Tensor, directory: str | Path, *, prefix: str = "") -> list[Path]:
    """Write each image as ``<directory>/<prefix><index:04d>.png``; return the paths.

    Example:
        >>> import tempfile
        >>> from ratlip_layers.training import save_images
        >>> [p.name for p in save_images(torch.zeros(2, 3, 8, 8), tempfile.mkdtemp(), prefix="red-")]
        ['red-0000.png', 'red-0001.png']
    """
    check_tensor("images", images, 4, "(B, 3, H, W)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = directory / f"{prefix}{i:04d}.png"
        to_pil(image).save(path)
        paths.append(path)
    return paths
