"""CLIPImageEncoder against open_clip's own intermediate outputs and encode_image."""

from __future__ import annotations

import open_clip
import pytest
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.transformer import Transformer
from torchvision.transforms.v2 import functional as TF

from ratlip_layers import CLIPImageEncoder
from ratlip_layers.clip import ImageFeatures
from ratlip_layers.clip._vit import run_blocks

from .towers import images, make_clip, resnet_clip

MEAN = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)


def clip_input(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> CLIP's normalised input, for images already at the tower's size."""
    return ((x + 1) / 2 - MEAN) / STD


@pytest.mark.parametrize(("kind", "layers"), [("tiny", None), ("tiny", [1]), ("alt", None), ("alt", (0, 2))])
def test_maps_and_embedding_match_open_clip(kind, layers):
    clip_model, _ = make_clip(kind)
    encoder = CLIPImageEncoder(clip_model, layers=layers)
    size = clip_model.visual.image_size[0]
    x = images(3, size)
    features = encoder(x)
    assert isinstance(features, ImageFeatures)
    reference = clip_model.visual.forward_intermediates(clip_input(x), indices=list(encoder.layers))
    assert len(features.maps) == len(encoder.layers)
    for got, want in zip(features.maps, reference["image_intermediates"]):
        assert got.shape == (3, encoder.width, encoder.grid, encoder.grid)
        assert got.is_contiguous()  # strided views of the tokens slow the discriminator's convolutions
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    torch.testing.assert_close(features.embedding, clip_model.encode_image(clip_input(x)), rtol=0, atol=1e-5)


def test_default_layers_scale_with_depth():
    assert CLIPImageEncoder(make_clip("tiny")[0]).layers == (0, 1)
    # 2, 5 and 9 of 12 blocks -> 0.5, 1.25 and 2.25 of 3, rounded to 1, 1 and 2 blocks run.
    assert CLIPImageEncoder(make_clip("alt")[0]).layers == (0, 1)


def test_normalises_once():
    # The reference mapped [-1, 1] to [0, 1] twice, sending pixel -1 to 0.5; here -1 -> 0 -> (0 - mean) / std.
    encoder = CLIPImageEncoder(make_clip("tiny")[0])
    out = encoder.preprocess(-torch.ones(1, 3, 32, 32))
    torch.testing.assert_close(out, (-MEAN / STD).expand_as(out))


def test_other_sizes_are_resized_like_torchvision():
    clip_model, _ = make_clip("tiny")
    encoder = CLIPImageEncoder(clip_model)
    x = images(2, 80)
    expected = TF.resize((x + 1) / 2, [32, 32], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
    torch.testing.assert_close(encoder.preprocess(x), (expected - MEAN) / STD, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        encoder(x).embedding, clip_model.encode_image((expected - MEAN) / STD), atol=1e-5, rtol=0
    )


def test_non_square_images_are_centre_cropped():
    encoder = CLIPImageEncoder(make_clip("tiny")[0])
    wide = images(1, 48)[:, :, 8:40, :]  # 32 x 48
    torch.testing.assert_close(encoder.preprocess(wide), encoder.preprocess(wide[..., 8:40]), rtol=0, atol=0)


def test_gradients_reach_images_not_clip():
    clip_model, _ = make_clip("tiny")
    encoder = CLIPImageEncoder(clip_model).train()
    x = images(2, 40).requires_grad_()
    features = encoder(x)
    (sum(m.square().sum() for m in features.maps) + features.embedding.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in clip_model.parameters())
    assert not any(m.training for m in clip_model.modules())


def test_sequence_first_transformer_gives_the_same_tokens():
    # open_clip's Transformer may run its blocks sequence-first; run_blocks must handle both layouts.
    batch_first = Transformer(16, 2, 2)
    seq_first = Transformer(16, 2, 2, batch_first=False)
    seq_first.load_state_dict(batch_first.state_dict())
    x, prompt = torch.randn(3, 5, 16), torch.randn(3, 16)
    a = run_blocks(batch_first, x, {1: prompt})
    b = run_blocks(seq_first, x, {1: prompt})
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert a.shape == x.shape


def test_non_vit_clip_raises():
    with pytest.raises(ValueError, match="VisionTransformer.*got ModifiedResNet"):
        CLIPImageEncoder(resnet_clip())


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ((0, 2), r"\[0, 1\].*got \(0, 2\)"),
        ((1, 0), "strictly increasing"),
        ((), "non-empty"),
        ((0.5,), "int"),
    ],
)
def test_bad_layers_raise(layers, match):
    with pytest.raises(ValueError, match=match):
        CLIPImageEncoder(make_clip("tiny")[0], layers=layers)


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.zeros(1, 1, 32, 32), ValueError, "channels = 3"),
        (torch.zeros(3, 32, 32), ValueError, "4-D"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.long), TypeError, "floating"),
    ],
)
def test_bad_images_raise(x, error, match):
    with pytest.raises(error, match=match):
        CLIPImageEncoder(make_clip("tiny")[0])(x)


def test_model_preprocess_cfg_is_used():
    clip_model, _ = make_clip("tiny")
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    open_clip.set_model_preprocess_cfg(
        clip_model, {**clip_model.visual.preprocess_cfg, "mean": mean, "std": std}
    )
    out = CLIPImageEncoder(clip_model).preprocess(torch.zeros(1, 3, 32, 32))
    torch.testing.assert_close(out, torch.zeros_like(out))
