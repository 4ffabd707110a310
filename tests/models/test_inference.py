"""optimize_for_inference and InferenceGenerator: argument checks, eager and compiled runs."""

from __future__ import annotations

import pytest
import torch

from ratlip_layers import GeneratorConfig, RATLIPGenerator, tiny_clip
from ratlip_layers.models import optimize_for_inference

from .common import perturbed

TINY = GeneratorConfig.preset("tiny")


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
