"""Datasets of captioned images: the built-in ``shapes``, CUB, Oxford-102 and CelebA-tiny."""

from .build import DATASETS, SHAPES_SIZES, build_dataset
from .collate import CaptionBatch, CaptionCollate
from .errors import DataFileError, DatasetLayoutError, UnsafePickleError
from .folder import CaptionedImageFolder, CUBDataset
from .keys import DrawKey, draw_seed
from .safe_pickle import load_filenames
from .sampler import ResumableSampler
from .shapes import PALETTE, PHRASINGS, SHAPES, ShapesDataset, ShapeSpec, parse_shapes_caption, render_shape
from .shapes import shapes_caption
from .transforms import eval_transform, train_transform

__all__ = [
    "DATASETS", "PALETTE", "PHRASINGS", "SHAPES", "SHAPES_SIZES", "CUBDataset", "CaptionBatch",
    "CaptionCollate", "CaptionedImageFolder", "DataFileError", "DatasetLayoutError", "DrawKey",
    "ResumableSampler", "ShapeSpec", "ShapesDataset", "UnsafePickleError", "build_dataset", "draw_seed",
    "eval_transform", "load_filenames", "parse_shapes_caption", "render_shape", "shapes_caption",
    "train_transform",
]
