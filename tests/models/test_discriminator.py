"""CLIPDiscriminator: shapes, per-sample behaviour, gradients (MA-GP included), the frozen CLIP."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ratlip_layers import CLIPDiscriminator, GeneratorConfig, RATLIPGenerator, tiny_clip
from ratlip_layers.clip import ImageFeatures
from ratlip_layers.models.discriminator import NetC

from ..clip.towers import images, make_clip, resnet_clip
from .common import perturbed, trainable


@pytest.fixture(scope="module")
def clip_model():
    return tiny_clip()[0]


def make(clip_model, **kwargs):
    return CLIPDiscriminator(clip_model, channels=32, joint_channels=16, **kwargs)


@pytest.mark.parametrize("kind", ["tiny", "alt"])
def test_logits_shape_and_feature_path(kind):
    clip = make_clip(kind)[0]
    D = perturbed(make(clip)).eval()
    x, s = images(3, 40), torch.randn(3, D.sentence_dim)
    logits, features = D(x, s, return_features=True)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    assert len(features.maps) == len(D.layers) and features.maps[0].shape == (3, D.width, D.grid, D.grid)
    torch.testing.assert_close(D(x, s), logits, rtol=0, atol=0)
    torch.testing.assert_close(D.logits(D.features(x), s), logits, rtol=0, atol=0)


def test_batch_independent_in_eval_mode_and_sentence_matters(clip_model):
    D = perturbed(make(clip_model)).eval()
    x, s = images(4, 32), torch.randn(4, 32)
    batch = D(x, s)
    for i in range(4):
        torch.testing.assert_close(D(x[i : i + 1], s[i : i + 1]), batch[i : i + 1], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(D(x, s.roll(1, dims=0)), batch)


def test_every_trainable_parameter_gets_a_finite_gradient(clip_model):
    x, s = images(3, 32), torch.randn(3, 32)
    fresh = make(clip_model).train()
    fresh(x, s).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable(fresh))
    D = perturbed(make(clip_model)).train()
    D(x, s).square().sum().backward()
    for name, p in D.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in clip_model.parameters())


def test_ma_gp_gradients_with_respect_to_features_and_sentence(clip_model):
    D = perturbed(make(clip_model))
    features = D.features(images(2, 32))
    maps = tuple(m.detach().requires_grad_() for m in features.maps)
    sentence = torch.randn(2, 32, requires_grad=True)
    out = D.logits(ImageFeatures(maps, features.embedding), sentence)
    grads = torch.autograd.grad(out.sum(), (*maps, sentence), create_graph=True)
    norm = torch.cat([g.flatten(1) for g in grads], dim=1).norm(dim=1)
    penalty = 2.0 * norm.pow(6).mean()
    penalty.backward()
    assert all(g.abs().sum() > 0 for g in grads) and torch.isfinite(penalty)
    assert D.net_c.joint[0].weight.grad.abs().sum() > 0


def test_images_get_gradients_for_the_generator_loss(clip_model):
    D = perturbed(make(clip_model))
    x = images(2, 32).requires_grad_()
    logits, features = D(x, torch.randn(2, 32), return_features=True)
    (logits.sum() + features.embedding.sum()).backward()
    assert x.grad.abs().sum() > 0


def test_shared_clip_stays_frozen_across_generator_and_discriminator():
    clip_model, tokenizer = tiny_clip()
    G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)
    D = make(clip_model)
    clip_ids = {id(p) for p in clip_model.parameters()}
    for net in (G, D):
        net.train()
        net.requires_grad_(True)
        assert not clip_ids & {id(p) for p in trainable(net)}
    assert not any(m.training for m in clip_model.modules())
    assert not any(k.startswith("encoder.clip.") for k in D.trainable_state_dict())
    D.to(torch.float64)  # moves the shared CLIP for G too
    assert G.clip_model.visual.conv1.weight.dtype == torch.float64
    assert D(images(1, 32).double(), torch.randn(1, 32, dtype=torch.float64)).dtype == torch.float64


def test_trainable_state_dict_round_trip(clip_model):
    D, other = perturbed(make(clip_model)), make(clip_model)
    other.load_trainable_state_dict(D.trainable_state_dict())
    x, s = images(2, 32), torch.randn(2, 32)
    torch.testing.assert_close(other(x, s), D(x, s), rtol=0, atol=0)
    with pytest.raises(ValueError, match="missing keys"):
        other.load_trainable_state_dict({})


def test_one_image_code_judged_against_several_captions_equals_logits(clip_model):
    D = make(clip_model).eval()
    features = D.features(images(3, 32))
    s = torch.randn(3, 32)
    code = D.image_code(features)
    torch.testing.assert_close(D.match_logits(code, s), D.logits(features, s), rtol=0, atol=0)
    torch.testing.assert_close(D.match_logits(code, s.roll(1, 0)), D.logits(features, s.roll(1, 0)), rtol=0, atol=0)
    with pytest.raises(ValueError, match="batch sizes differ"):
        D.match_logits(code, torch.zeros(2, 32))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda D: D.logits(ImageFeatures(D.features(images(2, 32)).maps[:1], None), torch.zeros(2, 32)),
            "2 maps",
        ),
        (lambda D: D(images(2, 32), torch.zeros(2, 16)), "embed_dim = 32"),
        (lambda D: D(images(2, 32), torch.zeros(3, 32)), "batch sizes differ"),
        (
            lambda D: D.logits(ImageFeatures((torch.zeros(2, 64, 5, 5),) * 2, None), torch.zeros(2, 32)),
            "4, 4",
        ),
    ],
)
def test_bad_inputs_raise(build, match, clip_model):
    with pytest.raises(ValueError, match=match):
        build(make(clip_model))


def test_non_vit_clip_raises():
    with pytest.raises(ValueError, match="got ModifiedResNet"):
        CLIPDiscriminator(resnet_clip())


@given(grid=st.integers(1, 16))
def test_net_c_reduces_any_grid_to_one_logit(grid):
    net = NetC(4, 3, grid, 5)
    assert net(torch.randn(2, 4, grid, grid), torch.randn(2, 3)).shape == (2,)
    if grid == 7:  # the reference's kernels on ViT-B/32's grid
        assert [m.kernel_size for m in net.joint if isinstance(m, torch.nn.Conv2d)] == [(4, 4), (4, 4)]
