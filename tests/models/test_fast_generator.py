"""The generator's fast path (scheduled conditioning) against its per-block loop, and inference helpers."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from ratlip_layers import GeneratorConfig, RATLIPGenerator, set_fast_path, tiny_clip
from ratlip_layers.models import optimize_for_inference

from .common import perturbed, trainable

TINY = GeneratorConfig.preset("tiny")
CONFIGS = {
    "tiny": TINY,
    "rat+shared+noise": dataclasses.replace(TINY, fusion="rat", share_cell=True, state_init="noise"),
    "galip": dataclasses.replace(
        TINY, mapper_fusion="cat", fusion="cat", shuffle_attention=False, state_init="zeros"
    ),
}


@pytest.fixture(scope="module")
def clip_and_tokenizer():
    return tiny_clip()


def _generator(config, clip_and_tokenizer):
    torch.manual_seed(0)
    clip_model, tokenizer = clip_and_tokenizer
    return perturbed(RATLIPGenerator(config, clip_model, tokenizer=tokenizer))


def _inputs(batch=3):
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 16, generator=g), torch.randn(batch, 32, generator=g)


def _images_and_grads(G, fast):
    z, s = _inputs()
    G.zero_grad(set_to_none=True)
    with set_fast_path(fast):
        out = G(z, s)
        # A fixed, non-uniform upstream gradient so every pixel's path counts differently.
        out.backward(torch.linspace(-1.0, 1.0, out.numel()).view_as(out))
    return out.detach(), [p.grad for p in trainable(G)]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fast_path_matches_the_per_block_loop(name, clip_and_tokenizer):
    G = _generator(CONFIGS[name], clip_and_tokenizer)
    fast, fast_grads = _images_and_grads(G, True)
    plain, plain_grads = _images_and_grads(G, False)
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
    names = [n for n, p in G.named_parameters() if p.requires_grad]
    for param_name, got, want in zip(names, fast_grads, plain_grads):
        assert got is not None and want is not None, param_name
        # float32 tolerance, scaled to the tensor: sums of thousands of products round differently.
        atol = 1e-5 * max(1.0, want.abs().max().item())
        torch.testing.assert_close(got, want, rtol=1e-4, atol=atol, msg=lambda m, n=param_name: f"{n}: {m}")


def test_conditioning_phases_agree_field_by_field(clip_and_tokenizer):
    G = _generator(CONFIGS["rat+shared+noise"], clip_and_tokenizer)
    z, s = _inputs()
    with torch.no_grad():
        fast = G.conditioning(z, s)
        with set_fast_path(False):
            plain = G.conditioning(z, s)
    torch.testing.assert_close(fast.prompts, plain.prompts)
    torch.testing.assert_close(fast.state, plain.state, rtol=1e-5, atol=1e-6)
    for got, want in zip((*fast.mapper, *fast.blocks), (*plain.mapper, *plain.blocks)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_schedule_adds_no_state_dict_keys_and_follows_copies(clip_and_tokenizer):
    G = _generator(TINY, clip_and_tokenizer)
    keys = set(G.state_dict())
    assert not any("schedule" in key for key in keys)
    clone = copy.deepcopy(G)
    with torch.no_grad():
        for p in trainable(clone):
            p.add_(0.1)
    z, s = _inputs()
    with torch.no_grad():
        # The copy's schedule reads the copy's (changed) weights, not the original's.
        assert not torch.allclose(clone(z, s), G(z, s))
        with set_fast_path(False):
            plain = clone(z, s)
        torch.testing.assert_close(clone(z, s), plain, rtol=1e-4, atol=1e-5)
    fresh = _generator(TINY, clip_and_tokenizer)
    fresh.load_state_dict(G.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(z, s), G(z, s))


def test_optimize_for_inference_checks_its_arguments(clip_and_tokenizer):
    G = _generator(TINY, clip_and_tokenizer)
    with pytest.raises(ValueError, match="cuda_graphs=True needs the generator on a CUDA device.*cpu"):
        optimize_for_inference(G, cuda_graphs=True)
    with pytest.raises(TypeError, match="generator must be a RATLIPGenerator, got Linear"):
        optimize_for_inference(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="compile must be a bool, got str"):
        optimize_for_inference(G, compile="yes")
    run = optimize_for_inference(G, compile=False)
    assert not run.cuda_graphs and not G.training  # CPU: CUDA graphs fall back to plain calls
    z, s = _inputs()
    with pytest.raises(ValueError, match="noise must have z_dim = 16"):
        run(torch.randn(3, 5), s)
    out = run(z, s)
    assert not out.requires_grad
    G.train()
    torch.testing.assert_close(out, G.eval()(z, s))


@pytest.mark.slow
def test_compiled_generator_matches_eager(clip_and_tokenizer):
    G = _generator(TINY, clip_and_tokenizer).eval()
    z, s = _inputs(2)
    with torch.no_grad():
        want = G(z, s)
    torch._dynamo.reset()
    run = optimize_for_inference(G)
    assert run.compile and not run.cuda_graphs
    torch.testing.assert_close(run(z, s), want, rtol=1e-4, atol=1e-5)
    # Same shapes again: the compiled graph is reused, and the result still matches.
    z2, s2 = _inputs(2)[0] * 0.5, _inputs(2)[1]
    with torch.no_grad():
        torch.testing.assert_close(run(z2, s2), G(z2, s2), rtol=1e-4, atol=1e-5)
