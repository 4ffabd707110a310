"""Captioned image folders (Oxford-102, CelebA-tiny, CUB birds): items ``(image in [-1, 1], caption)``.
The layout is checked when the dataset is built, so a missing file is named before training starts."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from .._checks import check_path, check_positive_int
from .errors import PREPARE_DOCS, DataFileError, DatasetLayoutError
from .keys import DrawKey, split_key
from .safe_pickle import load_filenames
from .transforms import eval_transform, train_transform

__all__ = ["CUBDataset", "CaptionedImageFolder"]

_MAX_SKIPS = 16  # unreadable items in a row before giving up


def _listed(paths: list) -> str:
    more = len(paths) - 5
    return ", ".join(map(str, paths[:5])) + (f" and {more} more" if more > 0 else "")


class CaptionedImageFolder(Dataset):
    """Items ``(image (3, S, S) in [-1, 1], caption)``, ``S = image_size``, from images with caption files,
    split by ``train|test/filenames.pickle`` (Oxford-102, CelebA-tiny); a :class:`DatasetLayoutError`
    names what the layout lacks and shows it.

    Args:
        root, split, image_size: the data directory, ``"train"`` or ``"test"``, the output images' side.
        augment: random resize-crop and flip, else a centre crop; defaults to ``split == "train"``.
        skip_unreadable: warn about an unreadable file and use the next item, instead of raising.
        name: the dataset's name in messages.

    Example:
        >>> import pathlib, pickle, tempfile
        >>> from PIL import Image
        >>> from ratlip_layers.data import CaptionedImageFolder
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> _ = [(root / folder).mkdir() for folder in ("images", "text", "train")]
        >>> Image.new("RGB", (48, 40), "red").save(root / "images" / "rose.jpg")
        >>> _ = (root / "text" / "rose.txt").write_text("a red flower")
        >>> _ = (root / "train" / "filenames.pickle").write_bytes(pickle.dumps(["rose"]))
        >>> CaptionedImageFolder(root, image_size=32)[0][1]
        'a red flower'
    """

    layout = """\
  <data-dir>/
    images/<key>.jpg            one image per key (.jpg, .jpeg or .png)
    text/<key>.txt              captions, one per line
    train/filenames.pickle      list of keys of the training split
    test/filenames.pickle       list of keys of the test split"""
    image_dir = "images"
    tables: tuple[str, ...] = ()  # further files the layout needs

    def __init__(self, root: str | Path, *, split: str = "train", image_size: int = 256,
                 augment: bool | None = None, skip_unreadable: bool = True,
                 name: str = "captioned image folder") -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.root, self.name, self.split = Path(check_path("root", root)), name, split
        self.image_size = check_positive_int("image_size", image_size)
        self.augment = split == "train" if augment is None else bool(augment)
        self.skip_unreadable = bool(skip_unreadable)
        if not self.root.is_dir():
            raise self._error("the directory does not exist")
        needed = [f"{self.image_dir}/", "text/", f"{split}/filenames.pickle", *self.tables]
        missing = [e for e in needed if not (Path.is_dir if e.endswith("/") else Path.is_file)(self.root / e)]
        if missing:
            raise self._error("missing " + ", ".join(missing))
        if not (keys := load_filenames(self.root / split / "filenames.pickle")):
            raise self._error(f"{split}/filenames.pickle lists no keys")
        self.keys, images = keys, self.root / self.image_dir
        candidates = ([images / f"{key}{ext}" for ext in (".jpg", ".jpeg", ".png")] for key in keys)
        self.image_paths = [next((p for p in paths if p.is_file()), paths[0]) for paths in candidates]
        self.text_paths = [self.root / "text" / f"{key}.txt" for key in keys]
        for what, paths in (("image", self.image_paths), ("caption file", self.text_paths)):
            if missing := [p for p in paths if not p.is_file()]:
                raise self._error(f"{len(missing)} {what}(s) missing: {_listed(missing)}")
        self._warned: set[str] = set()

    def _error(self, problem: str) -> DatasetLayoutError:
        return DatasetLayoutError(f"{self.name} data dir {self.root}: {problem}\nExpected layout:\n"
                                  f"{self.layout}\nHow to prepare it: {PREPARE_DOCS}.")

    def __len__(self) -> int:
        return len(self.keys)

    def _split(self, key: int | DrawKey) -> tuple[int, torch.Generator]:
        index, generator = split_key(key)
        if not 0 <= index < len(self.keys):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self.keys)} items")
        return index, generator

    def _caption(self, index: int, generator: torch.Generator) -> str:
        path = self.text_paths[index]
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise DataFileError(f"cannot read caption file {path}: {err}") from None
        if "\x00" in text:
            raise DataFileError(f"caption file {path} holds binary data (NUL bytes), not text")
        captions = [line.strip() for line in text.splitlines() if line.strip()]
        if not captions:
            raise DataFileError(f"caption file {path} holds no caption")
        return captions[int(torch.randint(len(captions), (), generator=generator))]

    def caption(self, key: int | DrawKey) -> str:
        """The caption ``self[key]`` has, without reading the image."""
        return self._caption(*self._split(key))

    def _open(self, index: int) -> Image.Image:
        return Image.open(self.image_paths[index]).convert("RGB")

    def _load(self, index: int, generator: torch.Generator) -> tuple[Tensor, str]:
        caption = self._caption(index, generator)
        try:
            image = self._open(index)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise DataFileError(f"cannot read image {self.image_paths[index]}: {err}") from None
        if self.augment:
            return train_transform(image, self.image_size, generator), caption
        return eval_transform(image, self.image_size), caption

    def __getitem__(self, key: int | DrawKey) -> tuple[Tensor, str]:
        index, generator = self._split(key)
        for attempt in range(_MAX_SKIPS):
            try:
                return self._load((index + attempt) % len(self.keys), generator)
            except DataFileError as err:
                if not self.skip_unreadable:
                    raise
                if str(err) not in self._warned:  # once per file
                    self._warned.add(str(err))
                    warnings.warn(f"skipping an unreadable item: {err}", RuntimeWarning, stacklevel=2)
        raise DataFileError(f"{_MAX_SKIPS} files in a row from {self.root} could not be read (see the "
                            "warnings above); is the data directory intact?")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
                f"image_size={self.image_size}, augment={self.augment}, items={len(self)})")


class CUBDataset(CaptionedImageFolder):
    """CUB-200-2011 birds with the reference's captions and crop (the square of half-side
    ``0.75 * max(w, h)`` around the bird's box). Arguments are those of :class:`CaptionedImageFolder`.

    Example:
        >>> import pathlib, pickle, tempfile
        >>> from PIL import Image
        >>> from ratlip_layers.data import CUBDataset
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for folder in ("CUB_200_2011/images/001.Albatross", "text/001.Albatross", "test"):
        ...     (root / folder).mkdir(parents=True)
        >>> Image.new("RGB", (100, 80)).save(root / "CUB_200_2011/images/001.Albatross/a_1.jpg")
        >>> _ = (root / "CUB_200_2011/images.txt").write_text("1 001.Albatross/a_1.jpg")
        >>> _ = (root / "CUB_200_2011/bounding_boxes.txt").write_text("1 40.0 30.0 20.0 20.0")
        >>> _ = (root / "text/001.Albatross/a_1.txt").write_text("a large white seabird")
        >>> _ = (root / "test/filenames.pickle").write_bytes(pickle.dumps(["001.Albatross/a_1"]))
        >>> CUBDataset(root, split="test", image_size=16)[0][0].shape
        torch.Size([3, 16, 16])
    """

    layout = """\
  <data-dir>/
    CUB_200_2011/images/<key>.jpg
    CUB_200_2011/images.txt            '<id> <key>.jpg' per line
    CUB_200_2011/bounding_boxes.txt    '<id> <x> <y> <width> <height>' per line
    text/<key>.txt                     ten captions per image, one per line
    train/filenames.pickle             list of keys of the training split
    test/filenames.pickle              list of keys of the test split"""
    image_dir = "CUB_200_2011/images"
    tables = ("CUB_200_2011/images.txt", "CUB_200_2011/bounding_boxes.txt")

    def __init__(self, root: str | Path, **kwargs) -> None:
        super().__init__(root, **{"name": "CUB", **kwargs})
        names, rows = (self._table(self.root / name, columns) for name, columns in zip(self.tables, (2, 5)))
        boxes = {}
        for image_id, (relpath,) in names.items():
            if (box := rows.get(image_id)) is not None:
                try:
                    boxes[relpath.rsplit(".", 1)[0]] = tuple(float(v) for v in box)
                except ValueError:
                    raise self._error(f"bounding box of image id {image_id} is not numeric: {box}") from None
        if missing := [key for key in self.keys if key not in boxes]:
            raise self._error(f"{len(missing)} key(s) have no bounding box in {self.tables[1]}: "
                              f"{_listed(missing)}")
        self.boxes = [boxes[key] for key in self.keys]

    def _table(self, path: Path, columns: int) -> dict[str, list[str]]:
        """``{first field: the other fields}`` of a whitespace-separated table."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as err:
            raise self._error(f"{path} is not UTF-8 text: {err}") from None
        rows = {}
        for number, line in enumerate(lines, start=1):
            if fields := line.split():
                if len(fields) != columns:
                    raise self._error(f"{path} line {number}: expected {columns} fields, got {line!r}")
                rows[fields[0]] = fields[1:]
        return rows

    def _open(self, index: int) -> Image.Image:
        image = super()._open(index)
        x, y, w, h = self.boxes[index]
        cx, cy, r = int((2 * x + w) / 2), int((2 * y + h) / 2), int(max(w, h) * 0.75)
        width, height = image.size
        return image.crop((max(0, cx - r), max(0, cy - r), min(width, cx + r), min(height, cy + r)))
