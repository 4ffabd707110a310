import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ratlip_layers.data import (
    PALETTE,
    PHRASINGS,
    SHAPES,
    ShapesDataset,
    ShapeSpec,
    parse_shapes_caption,
    render_shape,
    shapes_caption,
)

COLOURS = list(PALETTE)


def test_palette_is_the_specified_srgb():
    assert PALETTE == {
        "red": (220, 40, 40),
        "green": (40, 170, 60),
        "blue": (40, 80, 220),
        "yellow": (235, 205, 40),
        "purple": (140, 60, 180),
        "orange": (245, 140, 30),
        "white": (240, 240, 240),
        "black": (20, 20, 20),
    }
    assert SHAPES == ("circle", "square", "triangle")


@given(
    shape=st.sampled_from(SHAPES),
    colours=st.permutations(COLOURS).map(lambda p: p[:2]),
    phrasing=st.integers(0, len(PHRASINGS) - 1),
)
def test_every_phrasing_parses_back(shape, colours, phrasing):
    colour, background = colours
    caption = shapes_caption(shape, colour, background, phrasing)
    assert parse_shapes_caption(caption) == (shape, colour, background)
    assert f"{colour} {shape}" in caption and f"{background} background" in caption


def test_caption_wording():
    assert shapes_caption("circle", "red", "blue") == "a red circle on a blue background"
    assert shapes_caption("triangle", "orange", "white", 1) == "an orange triangle against a white background"


@pytest.mark.parametrize(
    "args, match",
    [
        (("hexagon", "red", "blue"), "shape must be one of"),
        (("circle", "pink", "blue"), "colour must be one of"),
        (("circle", "red", "red"), "must differ"),
        (("circle", "red", "blue", 9), "phrasing must be in"),
    ],
)
def test_caption_errors(args, match):
    with pytest.raises(ValueError, match=match):
        shapes_caption(*args)


def test_parse_rejects_foreign_captions():
    with pytest.raises(ValueError, match="does not name"):
        parse_shapes_caption("a small bird with a red crown")


@pytest.mark.parametrize("shape", SHAPES)
def test_render_puts_the_colours_where_they_belong(shape):
    spec = ShapeSpec(shape, "yellow", "purple", cx=0.4, cy=0.55, radius=0.25)
    img = render_shape(spec, 40)
    assert img.dtype == np.uint8 and img.shape == (40, 40, 3)
    for y, x in ((0, 0), (0, 39), (39, 0), (39, 39)):
        assert tuple(img[y, x]) == PALETTE["purple"]
    assert tuple(img[int(0.55 * 40), int(0.4 * 40)]) == PALETTE["yellow"]
    # Areas within a factor 2 of each other: the three shapes are about equally big.
    area = (np.abs(img.astype(int) - PALETTE["purple"]).sum(-1) > 0).mean()
    assert 0.1 < area < 0.25


def test_dataset_is_deterministic_and_split_dependent():
    a, b = ShapesDataset(50, image_size=32, seed=3), ShapesDataset(50, image_size=32, seed=3)
    assert all(torch.equal(a[i][0], b[i][0]) and a[i][1] == b[i][1] for i in range(50))
    other_seed = ShapesDataset(50, image_size=32, seed=4)
    test_split = ShapesDataset(50, image_size=32, seed=3, split="test")
    assert sum(torch.equal(a[i][0], other_seed[i][0]) for i in range(50)) < 5
    assert sum(torch.equal(a[i][0], test_split[i][0]) for i in range(50)) < 5


def test_dataset_covers_everything_and_never_matches_colours():
    ds = ShapesDataset(600, image_size=32)
    specs = [ds.spec(i) for i in range(600)]
    assert all(s.colour != s.background for s in specs)
    assert {s.shape for s in specs} == set(SHAPES)
    assert {s.colour for s in specs} == set(COLOURS) == {s.background for s in specs}
    # Position and size jitter.
    assert np.std([s.cx for s in specs]) > 0.05 and np.std([s.radius for s in specs]) > 0.02
    # The draw seed picks the phrasing: one picture, every template.
    assert len({ds[(0, k)][1] for k in range(60)}) == len(PHRASINGS)


def test_items_are_images_in_range_with_matching_captions():
    ds = ShapesDataset(20, image_size=24)
    for key in (0, 7, (5, 123)):
        image, caption = ds[key]
        assert image.shape == (3, 24, 24) and image.dtype == torch.float32
        assert image.min() >= -1 and image.max() <= 1
        index = key[0] if isinstance(key, tuple) else key
        spec = ds.spec(index)
        assert parse_shapes_caption(caption) == (spec.shape, spec.colour, spec.background)
        assert ds.caption(key) == caption
        corner = ((image[:, 0, 0] + 1) * 127.5).round().int().tolist()
        assert tuple(corner) == PALETTE[spec.background]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"num_samples": 0}, ValueError),
        ({"num_samples": 5, "image_size": 0}, ValueError),
        ({"num_samples": 5, "split": "val"}, ValueError),
        ({"num_samples": 5, "seed": -1}, ValueError),
    ],
)
def test_dataset_argument_errors(kwargs, error):
    with pytest.raises(error):
        ShapesDataset(**kwargs)


def test_index_errors():
    ds = ShapesDataset(5)
    with pytest.raises(IndexError, match="out of range"):
        ds[5]
    with pytest.raises(TypeError, match="item key"):
        ds["0"]
