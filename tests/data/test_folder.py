import warnings

import pytest
import torch
from torch.utils.data import DataLoader

from ratlip_layers.data import (
    CaptionCollate,
    CaptionedImageFolder,
    CUBDataset,
    DataFileError,
    DatasetLayoutError,
    build_dataset,
)

from .layouts import GREEN, write_cub, write_folder


def _rgb(image):
    return ((image + 1) * 127.5).round().int()


def test_folder_items_and_captions(tmp_path):
    ds = CaptionedImageFolder(write_folder(tmp_path), split="train", image_size=16)
    assert len(ds) == 3 and ds.augment
    image, caption = ds[(1, 42)]
    assert image.shape == (3, 16, 16)
    assert caption in ("first caption of c1/b", "second caption of c1/b")
    assert {ds[(0, seed)][1] for seed in range(30)} == {"first caption of c1/a", "second caption of c1/a"}
    assert ds.caption((1, 42)) == caption
    test = CaptionedImageFolder(tmp_path, split="test", image_size=16)
    assert len(test) == 1 and not test.augment


def test_same_key_same_draw_other_key_other_draw(tmp_path):
    ds = CaptionedImageFolder(write_folder(tmp_path, size=(60, 40)), image_size=16)
    ds.image_paths[0].unlink()
    # A picture with structure, so that crops and flips show.
    from PIL import Image

    picture = Image.linear_gradient("L").resize((60, 40)).convert("RGB")
    picture.save(ds.image_paths[0])
    a, b = ds[(0, 7)], ds[(0, 7)]
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    assert any(not torch.equal(a[0], ds[(0, seed)][0]) for seed in range(8))


def test_cub_crops_around_the_bounding_box(tmp_path):
    ds = CUBDataset(write_cub(tmp_path), split="test", image_size=16)
    image, caption = ds[0]
    assert caption.startswith("bird 001.Albatross/Albatross_1 caption")
    # Everything inside the reference crop box is green; a wrong box would show blue.
    colours = _rgb(image).permute(1, 2, 0).reshape(-1, 3)
    assert (colours - torch.tensor(GREEN)).abs().max() <= 3
    train = CUBDataset(tmp_path, split="train", image_size=16)
    assert train.augment and train[(1, 5)][0].shape == (3, 16, 16)


def test_missing_data_dir_names_layout_and_guide(tmp_path):
    with pytest.raises(DatasetLayoutError) as info:
        CUBDataset(tmp_path / "nowhere", image_size=16)
    message = str(info.value)
    assert "does not exist" in message and "CUB_200_2011/bounding_boxes.txt" in message
    assert "docs/training.rst" in message


def test_missing_entries_are_all_named(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset("flowers", data_dir=tmp_path, image_size=16)
    assert "missing text/, train/filenames.pickle" in str(info.value)
    assert "Expected layout" in str(info.value)


def test_missing_image_and_caption_files_are_named(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "images" / "c1" / "b.jpg").unlink()
    with pytest.raises(DatasetLayoutError, match=r"1 image\(s\) missing: .*images/c1/b\.jpg"):
        CaptionedImageFolder(tmp_path, image_size=16)
    write_folder(tmp_path)
    (tmp_path / "text" / "c2" / "c.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"caption file\(s\) missing: .*text/c2/c\.txt"):
        CaptionedImageFolder(tmp_path, image_size=16)


def test_malformed_cub_tables_are_reported(tmp_path):
    write_cub(tmp_path)
    (tmp_path / "CUB_200_2011" / "bounding_boxes.txt").write_text("1 40.0 30.0 20.0\n")
    with pytest.raises(DatasetLayoutError, match=r"bounding_boxes.txt line 1: expected 5 fields"):
        CUBDataset(tmp_path, image_size=16)
    (tmp_path / "CUB_200_2011" / "bounding_boxes.txt").write_text("1 40.0 30.0 20.0 20.0\n")
    with pytest.raises(DatasetLayoutError, match=r"no bounding box.*002.Auklet/Auklet_2"):
        CUBDataset(tmp_path, image_size=16)
    (tmp_path / "CUB_200_2011" / "bounding_boxes.txt").write_bytes(b"1 40.0 \xff\xfe 20.0 20.0\n")
    with pytest.raises(DatasetLayoutError, match=r"bounding_boxes.txt is not UTF-8 text"):
        CUBDataset(tmp_path, image_size=16)


def _corrupt(tmp_path):
    write_folder(tmp_path)
    bad = tmp_path / "images" / "c1" / "a.jpg"
    bad.write_bytes(b"this is no jpeg")
    return bad


def test_unreadable_image_is_skipped_with_a_warning_naming_it(tmp_path):
    bad = _corrupt(tmp_path)
    ds = CaptionedImageFolder(tmp_path, image_size=16)
    with pytest.warns(RuntimeWarning, match=f"cannot read image {bad}"):
        image, caption = ds[0]
    assert "c1/b" in caption and image.shape == (3, 16, 16)


def test_unreadable_image_in_strict_mode_names_the_path_even_from_a_worker(tmp_path):
    bad = _corrupt(tmp_path)
    ds = CaptionedImageFolder(tmp_path, image_size=16, skip_unreadable=False)
    with pytest.raises(DataFileError, match=f"cannot read image {bad}"):
        ds[0]
    loader = DataLoader(
        ds, batch_size=3, num_workers=1, collate_fn=CaptionCollate(lambda t: torch.zeros(len(t), 2))
    )
    with pytest.raises(DataFileError, match=f"cannot read image {bad}"):
        next(iter(loader))


def test_undecodable_or_empty_caption_file_is_named(tmp_path):
    write_folder(tmp_path)
    bad = tmp_path / "text" / "c1" / "a.txt"
    bad.write_bytes(b"\xff\xfe\xfa bad bytes")
    ds = CaptionedImageFolder(tmp_path, image_size=16, skip_unreadable=False)
    with pytest.raises(DataFileError, match=f"cannot read caption file {bad}"):
        ds[0]
    bad.write_text("\n  \n")
    with pytest.raises(DataFileError, match=f"caption file {bad} holds no caption"):
        ds[0]
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(DataFileError, match=f"caption file {bad} holds binary data"):
        ds[0]
    # The option that skips unreadable files skips these too, and says so.
    lenient = CaptionedImageFolder(tmp_path, image_size=16)
    with pytest.warns(RuntimeWarning, match=f"caption file {bad} holds binary data"):
        _, caption = lenient[0]
    assert "c1/b" in caption


def test_a_directory_of_unreadable_files_gives_up_clearly(tmp_path):
    write_folder(tmp_path)
    for path in (tmp_path / "images").rglob("*.jpg"):
        path.write_bytes(b"broken")
    ds = CaptionedImageFolder(tmp_path, image_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataFileError, match="could not be read"):
            ds[0]


def test_empty_split_is_reported(tmp_path):
    import pickle

    write_folder(tmp_path)
    (tmp_path / "train" / "filenames.pickle").write_bytes(pickle.dumps([]))
    with pytest.raises(DatasetLayoutError, match="lists no keys"):
        CaptionedImageFolder(tmp_path, image_size=16)
