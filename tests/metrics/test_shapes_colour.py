import pytest
import torch

from ratlip_layers.data import PALETTE, ShapesDataset, ShapeSpec, render_shape, shapes_caption
from ratlip_layers.metrics import ShapesColourAccuracy, estimate_shapes_colours


def _image(spec, size=32):
    return torch.from_numpy(render_shape(spec, size)).permute(2, 0, 1).float() / 127.5 - 1


def test_real_images_score_perfectly_even_with_noise():
    ds = ShapesDataset(300, image_size=32, split="test")
    images = torch.stack([ds[i][0] for i in range(300)])
    captions = [ds.caption(i) for i in range(300)]
    metric = ShapesColourAccuracy()
    metric.update((images + 0.08 * torch.randn_like(images)).clamp(-1, 1), captions)
    assert metric.compute() == {"colour_acc": 1.0, "fg_acc": 1.0, "bg_acc": 1.0}


def test_wrong_colours_are_counted_separately():
    spec = ShapeSpec("circle", "red", "blue", 0.5, 0.5, 0.3)
    image = _image(spec)[None].repeat(4, 1, 1, 1)
    captions = [
        shapes_caption("circle", "red", "blue"),  # right
        shapes_caption("circle", "green", "blue"),  # shape colour wrong
        shapes_caption("circle", "red", "white"),  # background wrong
        shapes_caption("square", "yellow", "black"),  # both wrong (the shape kind is not scored)
    ]
    metric = ShapesColourAccuracy()
    metric.update(image, captions)
    assert metric.compute() == {"colour_acc": 0.25, "fg_acc": 0.5, "bg_acc": 0.5}


def test_an_image_without_a_shape_has_no_shape_colour():
    flat = torch.tensor(PALETTE["green"]).float().div(127.5).sub(1).view(1, 3, 1, 1).expand(2, 3, 16, 16)
    assert estimate_shapes_colours(flat) == ([None, None], ["green", "green"])


def test_nearest_palette_colour_is_chosen():
    # Off-palette tints snap to the closest palette entry.
    spec = ShapeSpec("square", "orange", "white", 0.5, 0.5, 0.3)
    image = _image(spec)
    image = (image + torch.tensor([-0.05, 0.04, 0.03]).view(3, 1, 1)).clamp(-1, 1)
    assert estimate_shapes_colours(image[None]) == (["orange"], ["white"])


def test_counts_accumulate_and_reset():
    ds = ShapesDataset(4, image_size=16)
    metric = ShapesColourAccuracy()
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
    metric = ShapesColourAccuracy()
    with pytest.raises(ValueError, match="got 2 images but 1 captions"):
        metric.update(torch.zeros(2, 3, 16, 16), ["a red circle on a blue background"])
    with pytest.raises(ValueError, match="does not name"):
        metric.update(torch.zeros(1, 3, 16, 16), ["a bird"])
    with pytest.raises(ValueError, match="side >= 8"):
        estimate_shapes_colours(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="channels"):
        estimate_shapes_colours(torch.zeros(1, 1, 16, 16))
