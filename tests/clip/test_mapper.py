"""CLIPMapper: CLIP's vision transformer on a feature map, one prompt token per chosen block."""

from __future__ import annotations

import pytest
import torch

from ratlip_layers import CLIPMapper

from .towers import make_clip


def reference_mapper(visual, x, prompts, prompt_blocks):
    """The mapper written out with open_clip's modules, block by block."""
    b, c, g, _ = x.shape
    tokens = x.flatten(2).transpose(1, 2)
    tokens = torch.cat((visual.class_embedding.expand(b, 1, c), tokens), dim=1) + visual.positional_embedding
    tokens = visual.ln_pre(tokens)
    for i, block in enumerate(visual.transformer.resblocks):
        if i in prompt_blocks:
            j = prompt_blocks.index(i)
            tokens = block(torch.cat((tokens, prompts[:, j : j + 1]), dim=1))[:, :-1]
        else:
            tokens = block(tokens)
    return tokens[:, 1:].transpose(1, 2).reshape(b, c, g, g)


@pytest.mark.parametrize(("kind", "prompt_blocks"), [("tiny", None), ("alt", None), ("alt", (1,))])
def test_matches_block_by_block_reference(kind, prompt_blocks):
    clip_model, _ = make_clip(kind)
    mapper = CLIPMapper(clip_model, cond_dim=10, prompt_blocks=prompt_blocks)
    g, width = mapper.grid, mapper.width
    x, cond = torch.randn(2, width, g, g), torch.randn(2, 10)
    prompts = mapper.prompts(cond)
    assert prompts.shape == (2, len(mapper.prompt_blocks), width)
    expected = reference_mapper(clip_model.visual, x, prompts, list(mapper.prompt_blocks))
    torch.testing.assert_close(mapper(x, cond), expected, rtol=0, atol=1e-5)


def test_default_prompt_blocks_scale_with_depth():
    assert CLIPMapper(make_clip("tiny")[0], 4).prompt_blocks == (0, 1)
    # Blocks 1 to 8 of 12 span [1/12, 9/12) of the depth: [0.25, 2.25) of 3, rounded to blocks 0 and 1.
    assert CLIPMapper(make_clip("alt")[0], 4).prompt_blocks == (0, 1)


def test_every_prompt_changes_the_output():
    clip_model, _ = make_clip("alt")
    mapper = CLIPMapper(clip_model, cond_dim=4)
    x = torch.randn(1, mapper.width, mapper.grid, mapper.grid)
    prompts = torch.randn(1, len(mapper.prompt_blocks), mapper.width)
    base = mapper.transform(x, prompts)
    for j in range(prompts.shape[1]):
        changed = prompts.clone()
        changed[:, j] += 1.0
        assert not torch.allclose(mapper.transform(x, changed), base)


def test_gradients_reach_map_and_prompt_head_not_clip():
    clip_model, _ = make_clip("tiny")
    mapper = CLIPMapper(clip_model, cond_dim=6).train()
    x = torch.randn(2, 64, 4, 4, requires_grad=True)
    mapper(x, torch.randn(2, 6)).square().sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mapper.fc_prompt.parameters())
    assert all(p.grad is None for p in clip_model.parameters())
    assert not clip_model.training
    assert set(mapper.trainable_state_dict()) == {"fc_prompt.weight", "fc_prompt.bias"}


@pytest.mark.parametrize(
    ("x", "prompts", "match"),
    [
        (torch.zeros(2, 64, 5, 5), torch.zeros(2, 2, 64), r"\(B, 64, 4, 4\)"),
        (torch.zeros(2, 32, 4, 4), torch.zeros(2, 2, 64), r"\(B, 64, 4, 4\)"),
        (torch.zeros(2, 64, 4, 4), torch.zeros(2, 1, 64), r"\(B, 2, 64\)"),
        (torch.zeros(2, 64, 4, 4), torch.zeros(3, 2, 64), "batch sizes differ"),
    ],
)
def test_bad_inputs_raise(x, prompts, match):
    with pytest.raises(ValueError, match=match):
        CLIPMapper(make_clip("tiny")[0], 4).transform(x, prompts)


def test_bad_prompt_blocks_raise():
    with pytest.raises(ValueError, match=r"\[0, 1\].*got \(2,\)"):
        CLIPMapper(make_clip("tiny")[0], 4, prompt_blocks=(2,))
