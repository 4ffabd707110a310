"""Small on-disk datasets in the reference layouts, for the folder dataset tests."""

import pickle
from pathlib import Path

from PIL import Image

BLUE, GREEN = (0, 0, 255), (0, 200, 0)


def write_folder(root: Path, keys=("c1/a", "c1/b", "c2/c"), *, test_keys=("c2/c",), size=(40, 30)) -> Path:
    """An ``images/`` + ``text/`` dataset (Oxford-102 / CelebA-tiny layout)."""
    for key in keys:
        (root / "images" / key).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, BLUE).save(root / "images" / f"{key}.jpg")
        (root / "text" / key).parent.mkdir(parents=True, exist_ok=True)
        (root / "text" / f"{key}.txt").write_text(f"first caption of {key}\n\nsecond caption of {key}\n")
    for split, split_keys in (("train", keys), ("test", test_keys)):
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / split / "filenames.pickle").write_bytes(pickle.dumps(list(split_keys), protocol=2))
    return root


def write_cub(root: Path) -> Path:
    """A CUB layout with two birds: pixels inside the reference crop box are green, outside blue.

    Image 100x80, box (x=40, y=30, w=20, h=20): centre (50, 40), radius 0.75 * 20 = 15, so the
    crop is [35, 65) x [25, 55).
    """
    keys = ["001.Albatross/Albatross_1", "002.Auklet/Auklet_2"]
    cub = root / "CUB_200_2011"
    lines, boxes = [], []
    for number, key in enumerate(keys, start=1):
        (cub / "images" / key).parent.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (100, 80), BLUE)
        image.paste(Image.new("RGB", (30, 30), GREEN), (35, 25))
        image.save(cub / "images" / f"{key}.png")  # lossless, so the colours stay exact
        lines.append(f"{number} {key}.jpg")
        boxes.append(f"{number} 40.0 30.0 20.0 20.0")
        (root / "text" / key).parent.mkdir(parents=True, exist_ok=True)
        (root / "text" / f"{key}.txt").write_text("\n".join(f"bird {key} caption {i}" for i in range(10)))
    (cub / "images.txt").write_text("\n".join(lines) + "\n")
    (cub / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    for split in ("train", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / split / "filenames.pickle").write_bytes(pickle.dumps(keys))
    return root
