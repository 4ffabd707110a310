"""Sampling a trained generator, and writing its images: grids with their captions, and PNGs."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn
from torchvision.utils import make_grid, save_image

from .._checks import check_captions, check_module, check_path, check_positive_int, check_tensor
from .._io import write_atomic
from .._modes import eval_mode

__all__ = ["captioned_grid", "sample_images", "save_images"]

_MIN_CELL = 64  # small images are enlarged (nearest) so that a 32 px sample stays visible
_TEXT_WIDTH = 240
_PAD = 4


@torch.no_grad()
def sample_images(
    generator: nn.Module, captions: Sequence[str], *, n: int, seed: int = 0,
    text_encoder: nn.Module | None = None,
) -> Tensor:
    """``n`` images per caption, caption by caption, in ``[-1, 1]``, from a
    :class:`ratlip_layers.models.RATLIPGenerator` in eval mode. Column ``j`` of every caption uses the
    same noise, drawn from ``seed`` alone. ``text_encoder`` encodes the captions (default
    ``generator.text``).

    Returns:
        ``(len(captions) * n, 3, S, S)`` images.

    Example:
        >>> from ratlip_layers.clip import tiny_clip
        >>> from ratlip_layers.models import GeneratorConfig, RATLIPGenerator
        >>> from ratlip_layers.training import sample_images
        >>> clip_model, tokenizer = tiny_clip()
        >>> G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)
        >>> captions = ["a red circle on a blue background", "a black square on a red background"]
        >>> images = sample_images(G, captions, n=3, seed=0)
        >>> images.shape, torch.equal(images, sample_images(G, captions, n=3, seed=0))
        (torch.Size([6, 3, 32, 32]), True)
    """
    check_module("generator", generator)
    captions = check_captions("captions", captions)
    n = check_positive_int("n", n)
    if text_encoder is not None and not callable(text_encoder):
        raise TypeError(
            "text_encoder must be None or callable (captions -> TextEncoding), "
            f"got {type(text_encoder).__name__}"
        )
    text = text_encoder if text_encoder is not None else getattr(generator, "text", None)
    if text is None or not hasattr(generator, "z_dim"):
        raise TypeError(
            "generator must be a RATLIPGenerator (with z_dim, and its text encoder at .text unless "
            f"text_encoder is given), got {type(generator).__name__}"
        )
    from ..metrics import fixed_noise  # the metrics package imports torchmetrics, seconds to load

    device = next(p.device for p in generator.parameters())
    sentence = text(captions).sentence.float().repeat_interleave(n, dim=0)
    noise = fixed_noise(list(range(n)), generator.z_dim, seed).to(device).repeat(len(captions), 1)
    with eval_mode(generator):
        return generator(noise, sentence).float().clamp(-1.0, 1.0)


def _check_pixels(name: str, images: object, layout: str) -> Tensor:
    """``images`` (``layout``: ``(C, H, W)`` or ``(B, C, H, W)``), checked to fit in a PNG."""
    pixels = check_tensor(name, images, layout.count(",") + 1, layout)
    channels, height, width = pixels.shape[-3:]
    if channels not in (1, 3) or height == 0 or width == 0:
        raise ValueError(
            f"{name} must have 1 (grey) or 3 (RGB) channels and a height and width >= 1, "
            f"got shape {tuple(pixels.shape)}"
        )
    return pixels


def captioned_grid(images: Tensor, captions: Sequence[str], *, columns: int) -> Image.Image:
    """An RGB grid with one row per caption: the caption on the left (a 240 px panel), then ``columns``
    of ``images`` (grey or RGB in ``[-1, 1]``, row by row) on white, enlarged (nearest) to at least
    64 px so that small samples stay visible.

    Shape:
        - images: :math:`(R \\cdot C, 3, H, W)` or :math:`(R \\cdot C, 1, H, W)`

    Example:
        >>> from ratlip_layers.training import captioned_grid
        >>> grid = captioned_grid(torch.zeros(6, 3, 32, 32), ["a red circle", "a blue square"], columns=3)
        >>> grid.size
        (448, 140)
    """
    _check_pixels("images", images, "(rows * columns, C, H, W)")
    captions = check_captions("captions", captions)
    columns = check_positive_int("columns", columns)
    if images.shape[0] != len(captions) * columns:
        raise ValueError(
            f"images must hold len(captions) * columns = {len(captions)} * {columns} images, "
            f"got {images.shape[0]}"
        )
    height, width = images.shape[-2:]
    scale = max(1, -(-_MIN_CELL // min(height, width)))
    cells = F.interpolate(images.detach().float().cpu(), scale_factor=scale, mode="nearest")
    pictures = make_grid(cells, nrow=columns, padding=_PAD, normalize=True, value_range=(-1, 1),
                         pad_value=1.0)
    if len(cells) == 1:  # make_grid returns a lone image as it is, without the padding around it
        pictures = F.pad(pictures, (_PAD,) * 4, value=1.0)
    # The same conversion as save_image's, so a grid and its saved PNGs agree pixel for pixel.
    pixels = pictures.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    grid = Image.new("RGB", (_TEXT_WIDTH + pixels.shape[1], pixels.shape[0]), (255, 255, 255))
    grid.paste(Image.fromarray(pixels), (_TEXT_WIDTH, 0))
    draw = ImageDraw.Draw(grid)
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        font = ImageFont.load_default()
    chars = max(8, int(_TEXT_WIDTH / max(1.0, draw.textlength("abcdefghij", font=font) / 10)) - 2)
    for row, caption in enumerate(captions):
        top = _PAD + row * (height * scale + _PAD)
        draw.multiline_text((_PAD, top), "\n".join(textwrap.wrap(caption, chars)), fill=(0, 0, 0), font=font)
    return grid


def write_png(image: Image.Image | Tensor, path: str | Path) -> Path:
    """Write a PIL image, or one ``(C, H, W)`` tensor in ``[-1, 1]`` (C = 1 or 3), as a PNG at ``path``,
    atomically.

    Example:
        >>> from PIL import Image
        >>> from ratlip_layers.training.images import write_png
        >>> import tempfile, pathlib
        >>> path = write_png(torch.zeros(3, 4, 4), pathlib.Path(tempfile.mkdtemp()) / "grey.png")
        >>> Image.open(path).getpixel((0, 0))
        (128, 128, 128)
    """
    if isinstance(image, Tensor):
        _check_pixels("image", image, "(C, H, W)")
    elif not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL.Image.Image or a (C, H, W) tensor, got {type(image).__name__}")
    path = Path(check_path("path", path))
    if path.is_dir():
        raise ValueError(f"path must be a PNG file to write, got {path}, an existing directory")
    if not isinstance(image, Tensor):
        return write_atomic(path, lambda f: image.save(f, format="png"))
    pixels = image.detach().float().cpu()
    return write_atomic(path, lambda f: save_image(pixels, f, format="png", normalize=True,
                                                   value_range=(-1, 1)))


def save_images(images: Tensor, directory: str | Path, *, prefix: str = "") -> list[Path]:
    """Write each of ``images`` (``(B, C, H, W)`` in ``[-1, 1]``, C = 1 or 3) as
    ``<directory>/<prefix><index:04d>.png``, creating ``directory`` if missing; return the paths.

    Example:
        >>> from ratlip_layers.training import save_images
        >>> import tempfile
        >>> [p.name for p in save_images(torch.zeros(2, 3, 8, 8), tempfile.mkdtemp(), prefix="red-")]
        ['red-0000.png', 'red-0001.png']
    """
    _check_pixels("images", images, "(B, C, H, W)")
    directory = Path(check_path("directory", directory))
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__} ({prefix!r})")
    if any(sep and sep in prefix for sep in ("/", os.sep, os.altsep)):
        # A separator (or "../") would put the files outside ``directory``.
        raise ValueError(f"prefix must be a file-name prefix without path separators, got {prefix!r}")
    return [write_png(image, directory / f"{prefix}{i:04d}.png") for i, image in enumerate(images)]
