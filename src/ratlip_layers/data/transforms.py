"""The recipe's image transforms, driven by an explicit generator so that every draw is reproducible."""

from __future__ import annotations

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor

from .._checks import check_positive_int

__all__ = ["eval_transform", "to_signed", "train_transform"]


def to_signed(pixels: Tensor) -> Tensor:
    """uint8 pixels as floats in ``[-1, 1]``."""
    return pixels.float().div_(127.5).sub_(1.0)


def _resized(image: object, size: object, shorter_side: float = 1.0) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL.Image.Image, got {type(image).__name__}")
    if image.width == 0 or image.height == 0:
        raise ValueError(f"image must have a width and height >= 1, got size {image.size}")
    return TF.resize(image.convert("RGB"), round(check_positive_int("size", size) * shorter_side))


def train_transform(image: Image.Image, size: int, generator: torch.Generator) -> Tensor:
    """Resize the shorter side to ``size * 304 / 256``, crop ``size`` at random and flip with p = 0.5.

    Example:
        >>> from PIL import Image
        >>> from ratlip_layers.data import train_transform
        >>> train_transform(Image.new("RGB", (50, 40)), 32, torch.Generator().manual_seed(0)).shape
        torch.Size([3, 32, 32])
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    image = _resized(image, size, 304 / 256)
    w, h = image.size
    left = int(torch.randint(w - size + 1, (), generator=generator))
    top = int(torch.randint(h - size + 1, (), generator=generator))
    image = TF.crop(image, top, left, size, size)
    if float(torch.rand((), generator=generator)) < 0.5:
        image = TF.hflip(image)
    return to_signed(TF.pil_to_tensor(image))


def eval_transform(image: Image.Image, size: int) -> Tensor:
    """Resize the shorter side to ``size`` and crop the centre square.

    Example:
        >>> from PIL import Image
        >>> from ratlip_layers.data import eval_transform
        >>> eval_transform(Image.new("RGB", (50, 40)), 32).shape
        torch.Size([3, 32, 32])
    """
    return to_signed(TF.pil_to_tensor(TF.center_crop(_resized(image, size), size)))
