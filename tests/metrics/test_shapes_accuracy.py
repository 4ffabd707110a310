"""ShapesAccuracy: colours and shape read back from real and generated-looking ``shapes`` images."""

import math

import pytest
import torch
import torch.nn.functional as F

from ratlip_layers.data import PALETTE, SHAPES, ShapesDataset, ShapeSpec, render_shape, shapes_caption
from ratlip_layers.metrics import ShapesAccuracy, read_shapes_image

PERFECT = {"colour_acc": 1.0, "fg_acc": 1.0, "bg_acc": 1.0, "shape_acc": 1.0}


def _image(spec, size=32):
    return torch.from_numpy(render_shape(spec, size)).permute(2, 0, 1).float() / 127.5 - 1


def _test_split(n, size):
    ds = ShapesDataset(n, image_size=size, split="test")
    return torch.stack([ds[i][0] for i in range(n)]), [ds.caption(i) for i in range(n)]


def _score(images, captions, *, spread=False):
    metric = ShapesAccuracy()
    metric.update(images, captions)
    scores = metric.compute()
    return scores if spread else {k: v for k, v in scores.items() if k != "position_spread"}


@pytest.mark.parametrize("size", [32, 64])
def test_real_images_score_perfectly(size):
    scores = _score(*_test_split(600, size), spread=True)
    # Real positions do not depend on the caption: the within-caption spread is the real spread.
    assert scores.pop("position_spread") == pytest.approx(1.0, abs=0.15)
    assert scores == PERFECT


def test_one_picture_per_caption_has_no_position_spread():
    ds = ShapesDataset(40, image_size=32, split="test")
    first = {}  # one item per caption class, each drawn three times
    for i in range(len(ds)):
        spec = ds.spec(i)
        first.setdefault((spec.shape, spec.colour, spec.background), i)
    items = [ds[i] for i in first.values()] * 3
    scores = _score(torch.stack([im for im, _ in items]), [c for _, c in items], spread=True)
    assert scores["position_spread"] == pytest.approx(0.0, abs=1e-6)


def test_shapes_placed_in_a_narrow_band_spread_less_than_real_ones():
    # Every caption class drawn 4 times, the centre jittering by +-0.05 instead of over the image.
    specs = [
        ShapeSpec(shape, colour, background, 0.5 + dx, 0.5 + dy, 0.25)
        for shape, colour, background in [("circle", "red", "blue"), ("square", "white", "black")]
        for dx, dy in [(-0.05, -0.05), (0.05, 0.05), (-0.05, 0.05), (0.05, -0.05)]
    ]
    images = torch.stack([_image(spec) for spec in specs])
    captions = [shapes_caption(s.shape, s.colour, s.background) for s in specs]
    spread = _score(images, captions, spread=True)["position_spread"]
    real = ShapesDataset(600, image_size=32, split="test")
    real_centres = torch.tensor([[real.spec(i).cx, real.spec(i).cy] for i in range(len(real))])
    expected = (0.05 * 2**0.5 * (4 / 3) ** 0.5) / float(real_centres.var(0).sum().sqrt())
    assert spread == pytest.approx(expected, rel=0.25)


def test_no_repeated_caption_gives_nan_position_spread():
    images, captions = _test_split(1, 32)
    assert math.isnan(_score(images, captions, spread=True)["position_spread"])


def _generated_looking(images, seed=0):
    """What a generator draws: soft edges (blur), a hue drift towards a neighbouring palette colour on
    every pixel, and per-pixel noise."""
    g = torch.Generator().manual_seed(seed)
    soft = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    drift = (torch.rand(images.shape[0], 3, 1, 1, generator=g) - 0.5) * 0.3  # up to +-19 of 255 per channel
    noise = torch.randn(images.shape, generator=g) * 0.12
    return (soft + drift + noise).clamp(-1, 1)


def test_generated_looking_images_read_like_a_person_reads_them():
    images, captions = _test_split(300, 32)
    scores = _score(_generated_looking(images), captions)
    assert scores["colour_acc"] >= 0.98 and scores["shape_acc"] >= 0.95, scores


def test_a_red_drawn_with_scattered_pixels_is_read_as_red():
    # Nearly half the shape's pixels pulled just past halfway to orange: the vote over pixels says red,
    # and the speckled colour does not break the shape's outline.
    spec = ShapeSpec("circle", "red", "blue", 0.5, 0.5, 0.32)
    image = _image(spec, 32)
    red, orange = (torch.tensor(PALETTE[c]).float() / 127.5 - 1 for c in ("red", "orange"))
    inside = torch.from_numpy(render_shape(spec, 32)).float().sub(torch.tensor(PALETTE["red"]).float()).abs().sum(-1) < 1
    g = torch.Generator().manual_seed(0)
    pulled = torch.rand(32, 32, generator=g) < 0.45
    tint = torch.where(pulled[..., None], (red + orange) / 2 + 0.02, red).permute(2, 0, 1)
    image = torch.where(inside[None], tint, image)
    assert read_shapes_image(image[None]) == [("circle", "red", "blue")]


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_is_told_apart_at_any_size_and_place(shape):
    specs = [ShapeSpec(shape, "white", "black", cx, cy, r)
             for cx, cy, r in [(0.5, 0.5, 0.22), (0.35, 0.62, 0.25), (0.62, 0.4, 0.34), (0.45, 0.55, 0.28)]]
    images = torch.stack([_image(s, 32) for s in specs])
    assert [seen[0] for seen in read_shapes_image(images)] == [shape] * 4


def test_wrong_colours_and_shapes_are_counted_separately():
    image = _image(ShapeSpec("circle", "red", "blue", 0.5, 0.5, 0.3))[None].repeat(5, 1, 1, 1)
    captions = [
        shapes_caption("circle", "red", "blue"),  # right
        shapes_caption("circle", "green", "blue"),  # shape colour wrong
        shapes_caption("circle", "red", "white"),  # background wrong
        shapes_caption("square", "red", "blue"),  # shape wrong
        shapes_caption("triangle", "yellow", "black"),  # all wrong
    ]
    assert _score(image, captions) == {"colour_acc": 0.4, "fg_acc": 0.6, "bg_acc": 0.6, "shape_acc": 0.6}


def test_an_image_without_a_shape_has_no_shape_or_colour():
    flat = torch.tensor(PALETTE["green"]).float().div(127.5).sub(1).view(1, 3, 1, 1).expand(2, 3, 16, 16)
    assert read_shapes_image(flat) == [(None, None, "green"), (None, None, "green")]
    assert _score(flat, [shapes_caption("circle", "red", "green")] * 2)["shape_acc"] == 0.0


def test_nearest_palette_colour_is_chosen():
    image = _image(ShapeSpec("square", "orange", "white", 0.5, 0.5, 0.3))
    image = (image + torch.tensor([-0.05, 0.04, 0.03]).view(3, 1, 1)).clamp(-1, 1)
    assert read_shapes_image(image[None]) == [("square", "orange", "white")]


def test_counts_accumulate_and_reset():
    ds = ShapesDataset(4, image_size=16)
    metric = ShapesAccuracy()
    for i in range(4):
        metric.update(ds[i][0][None], [ds.caption(i)])
    assert int(metric.total) == 4 and metric.compute()["colour_acc"] == 1.0
    metric.reset()
    with (
        pytest.warns(UserWarning, match="before the ``update``"),
        pytest.raises(RuntimeError, match="before any update"),
    ):
        metric.compute()


def test_errors():
    metric = ShapesAccuracy()
    with pytest.raises(ValueError, match="got 2 images but 1 captions"):
        metric.update(torch.zeros(2, 3, 16, 16), ["a red circle on a blue background"])
    with pytest.raises(ValueError, match="does not name"):
        metric.update(torch.zeros(1, 3, 16, 16), ["a bird"])
    with pytest.raises(ValueError, match="side >= 8"):
        read_shapes_image(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="channels"):
        read_shapes_image(torch.zeros(1, 1, 16, 16))
