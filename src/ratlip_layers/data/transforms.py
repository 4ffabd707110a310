"""Image transforms of the recipe, driven by an explicit generator so that draws are reproducible."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .._checks import check_positive_int

__all__ = ["TRAIN_RESIZE_RATIO", "eval_transform", "pil_to_tensor", "train_transform"]

TRAIN_RESIZE_RATIO = 304 / 256
"""The recipe resizes to 304 px and crops 256 px; other sizes keep the ratio."""


def pil_to_tensor(image: Image.Image) -> Tensor:
    """An RGB PIL image as a ``(3, H, W)`` float tensor in ``[-1, 1]``."""
    _check_image(image)
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def _check_image(image: object) -> None:
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL.Image.Image, got {type(image).__name__}")
    if image.width == 0 or image.height == 0:
        raise ValueError(f"image must have a width and height >= 1, got size {image.size}")


def _resize_shorter(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return image.resize(new, Image.Resampling.BILINEAR)


def train_transform(image: Image.Image, size: int, generator: torch.Generator) -> Tensor:
    """Resize the shorter side to ``size * 304 / 256``, crop ``size`` at random, flip with p = 0.5.

    Example:
        >>> from PIL import Image
        >>> from ratlip_layers.data import train_transform
        >>> g = torch.Generator().manual_seed(0)
        >>> train_transform(Image.new("RGB", (50, 40)), 32, g).shape
        torch.Size([3, 32, 32])
    """
    _check_image(image)
    check_positive_int("size", size)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    image = _resize_shorter(image, round(size * TRAIN_RESIZE_RATIO))
    w, h = image.size
    left = int(torch.randint(w - size + 1, (), generator=generator))
    top = int(torch.randint(h - size + 1, (), generator=generator))
    image = image.crop((left, top, left + size, top + size))
    if float(torch.rand((), generator=generator)) < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return pil_to_tensor(image)


def eval_transform(image: Image.Image, size: int) -> Tensor:
    """Resize the shorter side to ``size`` and crop the centre square.

    Example:
        >>> from PIL import Image
        >>> from ratlip_layers.data import eval_transform
        >>> eval_transform(Image.new("RGB", (50, 40)), 32).shape
        torch.Size([3, 32, 32])
    """
    _check_image(image)
    check_positive_int("size", size)
    image = _resize_shorter(image, size)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return pil_to_tensor(image.crop((left, top, left + size, top + size)))
