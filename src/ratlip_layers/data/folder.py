"""Captioned image folders: Oxford-102 flowers, CelebA-tiny (``images/`` + ``text/``) and CUB birds.

Each item is ``(image, caption)``: the image as a float tensor in ``[-1, 1]``, and one caption drawn
at random from the image's text file (CUB has ten per image). Layouts are checked when the dataset is
built, so a missing file is named before any training starts.
"""

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

__all__ = ["CUB_LAYOUT", "FOLDER_LAYOUT", "CUBDataset", "CaptionedImageFolder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

FOLDER_LAYOUT = """\
  <data-dir>/
    images/<key>.jpg            one image per key (.jpg, .jpeg or .png)
    text/<key>.txt              captions, one per line
    train/filenames.pickle      list of keys of the training split
    test/filenames.pickle       list of keys of the test split"""
"""The layout of :class:`CaptionedImageFolder` (Oxford-102, CelebA-tiny), as error messages show it."""

CUB_LAYOUT = """\
  <data-dir>/
    CUB_200_2011/images/<key>.jpg
    CUB_200_2011/images.txt            '<id> <key>.jpg' per line
    CUB_200_2011/bounding_boxes.txt    '<id> <x> <y> <width> <height>' per line
    text/<key>.txt                     ten captions per image, one per line
    train/filenames.pickle             list of keys of the training split
    test/filenames.pickle              list of keys of the test split"""
"""The layout of :class:`CUBDataset`, as error messages show it."""

_MAX_LISTED = 5
_MAX_SKIPS = 16


def _layout_error(name: str, root: Path, problem: str, layout: str) -> DatasetLayoutError:
    return DatasetLayoutError(
        f"{name} data dir {root}: {problem}\nExpected layout:\n{layout}\nHow to prepare it: {PREPARE_DOCS}."
    )


def _list_paths(paths: list[Path]) -> str:
    shown = ", ".join(str(p) for p in paths[:_MAX_LISTED])
    more = len(paths) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


class CaptionedImageFolder(Dataset):
    """Images with caption files, split by ``train|test/filenames.pickle`` (Oxford-102, CelebA-tiny).

    Args:
        root: the data directory (layout in ``FOLDER_LAYOUT``).
        split: ``"train"`` or ``"test"``.
        image_size: side of the square output images.
        augment: random resize-crop and flip (the recipe's training transform) if ``True``, a centre
            crop if ``False``; defaults to ``split == "train"``.
        skip_unreadable: if ``True``, an image or caption file that cannot be read is reported in a
            warning naming its path and the next item is used instead; if ``False`` it raises
            :class:`ratlip_layers.data.DataFileError`.
        name: the dataset's name in messages.

    Raises:
        DatasetLayoutError: a directory or file the layout needs is missing; the message names each
            one, shows the expected layout and points to the guide.

    Shape:
        - image: :math:`(3, S, S)`, ``S = image_size``

    Example:
        >>> import pathlib, pickle, tempfile
        >>> from PIL import Image
        >>> from ratlip_layers.data import CaptionedImageFolder
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for folder in ("images", "text", "train"):
        ...     (root / folder).mkdir()
        >>> Image.new("RGB", (48, 40), "red").save(root / "images" / "rose.jpg")
        >>> _ = (root / "text" / "rose.txt").write_text("a red flower")
        >>> _ = (root / "train" / "filenames.pickle").write_bytes(pickle.dumps(["rose"]))
        >>> image, caption = CaptionedImageFolder(root, image_size=32)[0]
        >>> image.shape, caption
        (torch.Size([3, 32, 32]), 'a red flower')
    """

    layout = FOLDER_LAYOUT
    image_dir = "images"

    def __init__(
        self,
        root: str | Path,
        *,
        split: str = "train",
        image_size: int = 256,
        augment: bool | None = None,
        skip_unreadable: bool = True,
        name: str = "captioned image folder",
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.root = Path(check_path("root", root))
        self.name = name
        self.split = split
        self.image_size = check_positive_int("image_size", image_size)
        self.augment = split == "train" if augment is None else bool(augment)
        self.skip_unreadable = bool(skip_unreadable)
        self._check_layout()
        keys = load_filenames(self.root / split / "filenames.pickle")
        if not keys:
            raise self._error(f"{split}/filenames.pickle lists no keys")
        self.keys = keys
        self.image_paths = self._resolve_images(keys)
        self.text_paths = [self.root / "text" / f"{key}.txt" for key in keys]
        missing = [p for p in self.text_paths if not p.is_file()]
        if missing:
            raise self._error(f"{len(missing)} caption file(s) missing: {_list_paths(missing)}")
        self._warned: set[str] = set()

    def _error(self, problem: str) -> DatasetLayoutError:
        return _layout_error(self.name, self.root, problem, self.layout)

    def _required(self) -> list[str]:
        return [f"{self.image_dir}/", "text/", f"{self.split}/filenames.pickle"]

    def _check_layout(self) -> None:
        if not self.root.is_dir():
            raise self._error("the directory does not exist")
        missing = []
        for entry in self._required():
            path = self.root / entry
            if not (path.is_dir() if entry.endswith("/") else path.is_file()):
                missing.append(entry)
        if missing:
            raise self._error("missing " + ", ".join(missing))

    def _resolve_images(self, keys: list[str]) -> list[Path]:
        base = self.root / self.image_dir
        paths, missing = [], []
        for key in keys:
            found = next(
                (base / f"{key}{ext}" for ext in IMAGE_EXTENSIONS if (base / f"{key}{ext}").is_file()), None
            )
            if found is None:
                missing.append(base / f"{key}.jpg")
            paths.append(found)
        if missing:
            raise self._error(f"{len(missing)} image(s) missing: {_list_paths(missing)}")
        return paths

    def __len__(self) -> int:
        return len(self.keys)

    def _open(self, index: int) -> Image.Image:
        return Image.open(self.image_paths[index]).convert("RGB")

    def _draw_caption(self, index: int, generator: torch.Generator) -> str:
        text_path = self.text_paths[index]
        try:
            text = text_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise DataFileError(f"cannot read caption file {text_path}: {err}") from None
        if "\x00" in text:
            raise DataFileError(f"caption file {text_path} holds binary data (NUL bytes), not text")
        captions = [line.strip() for line in text.splitlines()]
        captions = [c for c in captions if c]
        if not captions:
            raise DataFileError(f"caption file {text_path} holds no caption")
        return captions[int(torch.randint(len(captions), (), generator=generator))]

    def caption(self, key: int | DrawKey) -> str:
        """The caption ``self[key]`` has, without reading the image."""
        return self._draw_caption(*self._split(key))

    def _split(self, key: int | DrawKey) -> tuple[int, torch.Generator]:
        index, generator = split_key(key)
        if not 0 <= index < len(self.keys):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self.keys)} items")
        return index, generator

    def _load(self, index: int, generator: torch.Generator) -> tuple[Tensor, str]:
        caption = self._draw_caption(index, generator)
        path = self.image_paths[index]
        try:
            image = self._open(index)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise DataFileError(f"cannot read image {path}: {err}") from None
        if self.augment:
            tensor = train_transform(image, self.image_size, generator)
        else:
            tensor = eval_transform(image, self.image_size)
        return tensor, caption

    def __getitem__(self, key: int | DrawKey) -> tuple[Tensor, str]:
        index, generator = self._split(key)
        for attempt in range(_MAX_SKIPS):
            try:
                return self._load((index + attempt) % len(self.keys), generator)
            except DataFileError as err:
                if not self.skip_unreadable:
                    raise
                self._warn(err)
        raise DataFileError(
            f"{_MAX_SKIPS} files in a row from {self.root} could not be read (see the warnings above); "
            "is the data directory intact?"
        )

    def _warn(self, err: DataFileError) -> None:
        if str(err) not in self._warned:
            self._warned.add(str(err))
            warnings.warn(f"skipping an unreadable item: {err}", RuntimeWarning, stacklevel=3)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
            f"image_size={self.image_size}, augment={self.augment}, items={len(self)})"
        )


class CUBDataset(CaptionedImageFolder):
    """CUB-200-2011 birds with the reference's captions, each image cropped around its bird.

    The crop is the square of half-side ``0.75 * max(w, h)`` centred on the bounding box, clipped to
    the image, as in the reference pipeline. Arguments are those of :class:`CaptionedImageFolder`;
    the layout is ``CUB_200_2011/images/<key>.jpg``, ``CUB_200_2011/images.txt``,
    ``CUB_200_2011/bounding_boxes.txt``, ``text/<key>.txt`` and ``train|test/filenames.pickle``.

    Example:
        >>> import pathlib, pickle, tempfile
        >>> from PIL import Image
        >>> from ratlip_layers.data import CUBDataset
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> cub = root / "CUB_200_2011"
        >>> (cub / "images" / "001.Albatross").mkdir(parents=True)
        >>> (root / "text" / "001.Albatross").mkdir(parents=True)
        >>> (root / "test").mkdir()
        >>> Image.new("RGB", (100, 80)).save(cub / "images" / "001.Albatross" / "a_1.jpg")
        >>> _ = (cub / "images.txt").write_text("1 001.Albatross/a_1.jpg")
        >>> _ = (cub / "bounding_boxes.txt").write_text("1 40.0 30.0 20.0 20.0")
        >>> _ = (root / "text" / "001.Albatross" / "a_1.txt").write_text("a large white seabird")
        >>> _ = (root / "test" / "filenames.pickle").write_bytes(pickle.dumps(["001.Albatross/a_1"]))
        >>> image, caption = CUBDataset(root, split="test", image_size=16)[0]
        >>> image.shape, caption
        (torch.Size([3, 16, 16]), 'a large white seabird')
    """

    layout = CUB_LAYOUT
    image_dir = "CUB_200_2011/images"

    def __init__(self, root: str | Path, **kwargs) -> None:
        kwargs.setdefault("name", "CUB")
        super().__init__(root, **kwargs)
        boxes = self._read_boxes()
        missing = [key for key in self.keys if key not in boxes]
        if missing:
            raise self._error(
                f"{len(missing)} key(s) have no bounding box in CUB_200_2011/bounding_boxes.txt: "
                + ", ".join(missing[:_MAX_LISTED])
            )
        self.boxes = [boxes[key] for key in self.keys]

    def _required(self) -> list[str]:
        return super()._required() + ["CUB_200_2011/images.txt", "CUB_200_2011/bounding_boxes.txt"]

    def _read_table(self, name: str, columns: int) -> dict[str, list[str]]:
        path = self.root / "CUB_200_2011" / name
        rows = {}
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise self._error(f"{path} is not UTF-8 text: {err}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != columns:
                raise self._error(f"{path} line {number}: expected {columns} fields, got {line!r}")
            rows[fields[0]] = fields[1:]
        return rows

    def _read_boxes(self) -> dict[str, tuple[float, float, float, float]]:
        names = self._read_table("images.txt", 2)
        boxes = self._read_table("bounding_boxes.txt", 5)
        out = {}
        for image_id, (relpath,) in names.items():
            if image_id in boxes:
                try:
                    x, y, w, h = (float(v) for v in boxes[image_id])
                except ValueError:
                    raise self._error(
                        f"bounding box of image id {image_id} is not numeric: {boxes[image_id]}"
                    ) from None
                out[relpath.rsplit(".", 1)[0]] = (x, y, w, h)
        return out

    def _open(self, index: int) -> Image.Image:
        image = super()._open(index)
        x, y, w, h = self.boxes[index]
        radius = int(max(w, h) * 0.75)
        cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
        width, height = image.size
        box = (max(0, cx - radius), max(0, cy - radius), min(width, cx + radius), min(height, cy + radius))
        return image.crop(box)
