"""One entry point for every dataset the training command knows by name."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from .errors import PREPARE_DOCS
from .folder import CaptionedImageFolder, CUBDataset
from .shapes import ShapesDataset

__all__ = ["DATASETS", "SHAPES_SIZES", "build_dataset"]

DATASETS: tuple[str, ...] = ("shapes", "cub", "flowers", "celeba-tiny")
"""Names accepted by :func:`build_dataset` (and ``--dataset``)."""

SHAPES_SIZES = {"train": 10_000, "test": 1_024}
"""Default number of ``shapes`` items per split."""


def build_dataset(name: str, *, split: str = "train", image_size: int = 256,
                  data_dir: str | Path | None = None, seed: int = 0, augment: bool | None = None,
                  num_samples: int | None = None, skip_unreadable: bool = True) -> Dataset:
    """Build a dataset of ``(image, caption)`` items by name.

    Args:
        name, split: one of :data:`DATASETS`, and ``"train"`` or ``"test"``.
        image_size, data_dir: the images' side, and the data directory (``shapes`` reads nothing).
        seed, num_samples: the ``shapes`` pictures' seed and split length (default :data:`SHAPES_SIZES`).
        augment, skip_unreadable: as in :class:`CaptionedImageFolder`.

    Example:
        >>> from ratlip_layers.data import build_dataset
        >>> build_dataset("shapes", split="test", image_size=32)
        ShapesDataset(num_samples=1024, image_size=32, seed=0, split='test')
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if name == "shapes":
        size = SHAPES_SIZES.get(split, 1) if num_samples is None else num_samples  # not `or`: 0 is refused
        return ShapesDataset(size, image_size=image_size, seed=seed, split=split)
    if data_dir is None:
        raise ValueError(f"dataset {name!r} needs a data directory (--data-dir); how to prepare it: "
                         f"{PREPARE_DOCS}")
    options = dict(split=split, image_size=image_size, augment=augment, skip_unreadable=skip_unreadable)
    if name == "cub":
        return CUBDataset(data_dir, **options)
    return CaptionedImageFolder(data_dir, name=name, **options)
