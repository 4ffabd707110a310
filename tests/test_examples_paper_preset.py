"""The paper preset run through the command line, as a user copying the reference's settings runs it:
a named CLIP (random weights, offline), 224 px, the CUB layout, and a final evaluation of more images
than the test split holds."""

import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _write_cub(root: Path, train: int, test: int) -> Path:
    """A CUB_200_2011 layout in the reference's folder structure: JPEGs, ten captions per bird,
    bounding boxes, ``images.txt`` and the train/test ``filenames.pickle``."""
    keys = [f"{i + 1:03d}.Bird_{i}/Bird_{i}_{i:04d}" for i in range(train + test)]
    cub = root / "CUB_200_2011"
    images, boxes = [], []
    for number, key in enumerate(keys, start=1):
        (cub / "images" / key).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (120, 90), (30 * number % 256, 90, 160)).save(cub / "images" / f"{key}.jpg")
        images.append(f"{number} {key}.jpg")
        boxes.append(f"{number} 20.0 15.0 60.0 50.0")
        (root / "text" / key).parent.mkdir(parents=True, exist_ok=True)
        (root / "text" / f"{key}.txt").write_text(
            "\n".join(f"this bird number {number} has feature {c}" for c in range(10)) + "\n"
        )
    (cub / "images.txt").write_text("\n".join(images) + "\n")
    (cub / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    for split, split_keys in (("train", keys[:train]), ("test", keys[train:])):
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / split / "filenames.pickle").write_bytes(pickle.dumps(split_keys, protocol=2))
    return root


@pytest.mark.slow
def test_paper_preset_trains_and_evaluates_more_images_than_the_test_split(tmp_path):
    data = _write_cub(tmp_path / "birds", train=4, test=3)
    out = tmp_path / "run"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_cub.py"), "--preset", "paper", "--dataset", "cub",
         "--data-dir", str(data), "--clip-pretrained", "none", "--batch-size", "2", "--steps", "2",
         "--eval-images", "8", "--device", "cpu", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=900, check=False, cwd=ROOT,
    )
    elapsed = time.perf_counter() - started
    print(f"paper preset CLI smoke run: {elapsed:.0f} s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # One warning says the named CLIP has random weights; no traceback.
    assert proc.stderr.count("random weights") == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert (config["preset"], config["imsize"], config["clip_model"]) == ("paper", 224, "ViT-B-32-quickgelu")
    assert config["clip_pretrained"] == "none"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if "passes" in r]
    assert final, records
    metrics = final[-1]
    assert metrics["step"] == 2 and metrics["passes"] == 3  # 8 images over a 3-image test split
    assert {"clip_score", "fid_clip"} <= set(metrics)
    assert "passes=3" in proc.stderr  # the printed metrics line
    assert (out / "checkpoints" / "step-00000002").is_dir()
