"""RATLIPGenerator: shapes, state threading, ref against fused, per-sample behaviour, gradients, I/O."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from ratlip_layers import (
    CLIPDiscriminator,
    DFBlock,
    GeneratorConfig,
    RATBlock,
    RATLIPGenerator,
    build_clip,
    tiny_clip,
)
from ratlip_layers.clip.build import CLIP_SPEC_ATTR

from ..clip.towers import resnet_clip, vit_clip
from .common import perturbed, trainable

TINY = GeneratorConfig.preset("tiny")
VARIANTS = {
    "tiny": TINY,
    "zeros+shared": dataclasses.replace(TINY, state_init="zeros", share_cell=True),
    "rat-mapper-only": dataclasses.replace(TINY, fusion="cat"),
    "galip": dataclasses.replace(
        TINY, mapper_fusion="cat", fusion="cat", shuffle_attention=False, state_init="zeros"
    ),
}


@pytest.fixture(scope="module")
def clip_and_tokenizer():
    return tiny_clip()


def make(config=TINY, clip_and_tokenizer=None, **kwargs):
    clip_model, tokenizer = clip_and_tokenizer or tiny_clip()
    return RATLIPGenerator(config, clip_model, tokenizer=tokenizer, **kwargs)


def inputs(batch, z_dim=16, embed_dim=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, z_dim, generator=g), torch.randn(batch, embed_dim, generator=g)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_shape(name, clip_and_tokenizer):
    G = make(VARIANTS[name], clip_and_tokenizer)
    out = G(*inputs(3))
    assert out.shape == (3, 3, 32, 32) and torch.isfinite(out).all()
    assert (len(G.mapper_blocks), len(G.blocks)) == (2, 3)


def _record_fusions(G):
    """Hooks on every fusion: the calls, in order, as ``(fusion, incoming state, outgoing state)``."""
    calls = []

    def hook(module, args, output):
        incoming = args[2] if isinstance(module, RATBlock) and len(args) > 2 else None
        outgoing = output[1] if isinstance(module, RATBlock) else None
        calls.append((module, incoming, outgoing))

    for block in (*G.mapper_blocks, *G.blocks):
        for fuse in (block.fuse1, block.fuse2):
            fuse.register_forward_hook(hook)
    return calls


@pytest.mark.parametrize("name", ["tiny", "zeros+shared", "rat-mapper-only"])
def test_state_is_threaded_through_every_rat_layer_in_network_order(name, clip_and_tokenizer):
    G = perturbed(make(VARIANTS[name], clip_and_tokenizer))
    z, s = inputs(2)
    calls = _record_fusions(G)
    with torch.no_grad():
        G(z, s)
    fusions = [fuse for block in (*G.mapper_blocks, *G.blocks) for fuse in (block.fuse1, block.fuse2)]
    assert [module for module, _, _ in calls] == fusions  # every fusion's public forward, in order
    state = G.state_init(z) if G.config.state_init == "noise" else None
    steps = 0
    for module, incoming, outgoing in calls:
        if isinstance(module, RATBlock):
            if state is None:
                assert incoming is None
            else:
                assert all(torch.equal(a, b) for a, b in zip(incoming, state))
            state = outgoing
            steps += 2
        else:
            assert isinstance(module, DFBlock)
    assert steps == {"tiny": 20, "zeros+shared": 20, "rat-mapper-only": 8}[name]


def test_cat_only_generator_has_no_state(clip_and_tokenizer):
    G = make(VARIANTS["galip"], clip_and_tokenizer)
    assert G.state_init is None
    assert not any(isinstance(m, torch.nn.LSTMCell) for m in G.modules())
    states = []
    G.blocks[-1].register_forward_hook(lambda module, args, output: states.append(output[1]))
    G(*inputs(2))
    assert states == [None]


@pytest.mark.parametrize("name", ["tiny", "zeros+shared", "galip"])
def test_fused_generator_matches_ref_with_gradients(name):
    # float64, on a CLIP of its own: in float32 a pre-activation within rounding of zero can take
    # the other LeakyReLU branch in one of the two, and move gradients far beyond rounding.
    clip_model, tokenizer = tiny_clip()
    G = perturbed(RATLIPGenerator(VARIANTS[name], clip_model, tokenizer=tokenizer, impl="fused")).double()
    ref = RATLIPGenerator(VARIANTS[name], clip_model, tokenizer=tokenizer, impl="ref").double()
    assert {m.impl for m in G.modules() if hasattr(m, "impl")} == {"fused"}
    assert {m.impl for m in ref.modules() if hasattr(m, "impl")} == {"ref"}
    assert G.state_dict().keys() == ref.state_dict().keys()  # the choice adds no weights
    ref.load_state_dict(G.state_dict())
    z, s = (t.double() for t in inputs(3, seed=1))
    results = []
    for generator in (G, ref):
        out = generator(z, s)
        # A fixed, non-uniform upstream gradient so every pixel's path counts differently.
        out.backward(torch.linspace(-1.0, 1.0, out.numel(), dtype=out.dtype).view_as(out))
        grads = {n: p.grad for n, p in generator.named_parameters() if p.requires_grad}
        results.append((out.detach(), grads))
    (fused, fused_grads), (want, want_grads) = results
    torch.testing.assert_close(fused, want, rtol=1e-10, atol=1e-10)
    assert fused_grads.keys() == want_grads.keys()
    for param_name, got in fused_grads.items():
        expected = want_grads[param_name]
        assert got is not None and expected is not None, param_name
        atol = 1e-10 * max(1.0, expected.abs().max().item())
        torch.testing.assert_close(
            got, expected, rtol=1e-9, atol=atol, msg=lambda m, n=param_name: f"{n}: {m}"
        )


def test_share_cell_uses_one_lstm_cell(clip_and_tokenizer):
    G = make(VARIANTS["zeros+shared"], clip_and_tokenizer)
    cells = {id(m) for m in G.modules() if isinstance(m, torch.nn.LSTMCell)}
    assert len(cells) == 1
    per_affine = make(dataclasses.replace(VARIANTS["zeros+shared"], share_cell=False), clip_and_tokenizer)
    cell_params = sum(p.numel() for p in torch.nn.LSTMCell(48, 16).parameters())
    assert len(trainable(per_affine)) > len(trainable(G))
    assert (
        sum(p.numel() for p in trainable(per_affine)) - sum(p.numel() for p in trainable(G))
        == 19 * cell_params
    )


@pytest.mark.parametrize("name", ["tiny", "galip"])
def test_batch_independent_in_eval_mode(name, clip_and_tokenizer):
    G = perturbed(make(VARIANTS[name], clip_and_tokenizer)).eval()
    z, s = inputs(4)
    batch = G(z, s)
    for i in range(4):
        torch.testing.assert_close(G(z[i : i + 1], s[i : i + 1]), batch[i : i + 1], rtol=1e-4, atol=1e-5)
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(G(z[perm], s[perm]), batch[perm], rtol=1e-4, atol=1e-5)


def test_caption_and_seed_change_the_image(clip_and_tokenizer):
    G = perturbed(make(TINY, clip_and_tokenizer))
    a = G.generate(["a red bird with black wings"], seed=3)
    assert not torch.allclose(a, G.generate(["a big yellow flower"], seed=3))
    assert torch.equal(a, G.generate(["a red bird with black wings"], seed=3))
    assert not torch.allclose(a, G.generate(["a red bird with black wings"], seed=4))
    assert a.min() >= -1 and a.max() <= 1 and a.shape == (1, 3, 32, 32)
    assert G.training  # generate() restores the mode it found


def test_generate_accepts_sentences_tokens_and_noise(clip_and_tokenizer):
    G = perturbed(make(TINY, clip_and_tokenizer))
    clip_model, tokenizer = clip_and_tokenizer
    tokens = tokenizer(["a bird", "a flower"])
    sentence = clip_model.encode_text(tokens)
    z = torch.randn(2, 16)
    expected = G.eval()(z, sentence).clamp(-1, 1)
    # Without grad, attention takes PyTorch's fused inference path: equal up to rounding.
    torch.testing.assert_close(G.generate(sentence, noise=z), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(G.generate(tokens, noise=z), expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="noise or seed"):
        G.generate(sentence, noise=z, seed=1)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_trainable_parameter_gets_a_finite_gradient(name, clip_and_tokenizer):
    z, s = inputs(3)
    fresh = make(VARIANTS[name], clip_and_tokenizer).train()
    fresh(z, s).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable(fresh))
    G = perturbed(make(VARIANTS[name], clip_and_tokenizer)).train()
    G(z, s).square().mean().backward()
    for pname, p in G.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname
    assert all(p.grad is None for p in clip_and_tokenizer[0].parameters())


def test_clip_is_never_trainable_nor_put_in_train_mode(clip_and_tokenizer):
    clip_model, _ = clip_and_tokenizer
    G = make(TINY, clip_and_tokenizer)
    clip_ids = {id(p) for p in clip_model.parameters()}
    G.train()
    G.requires_grad_(False)
    G.requires_grad_(True)
    assert not any(m.training for m in clip_model.modules())
    assert G.training and G.blocks[0].training
    assert not clip_ids & {id(p) for p in trainable(G)}
    optimizer = torch.optim.Adam(p for p in G.parameters() if p.requires_grad)
    assert not clip_ids & {id(p) for group in optimizer.param_groups for p in group["params"]}
    state = G.trainable_state_dict()
    assert not any(".clip." in k or k.startswith("text.") for k in state)
    params_and_buffers = sum(1 for _ in G.named_parameters()) + sum(1 for _ in G.named_buffers())
    clip_entries = sum(1 for _ in clip_model.named_parameters()) + sum(1 for _ in clip_model.named_buffers())
    assert len(state) == params_and_buffers - clip_entries


def test_to_moves_the_shared_clip():
    G = make(TINY)
    G.to(torch.float64)
    assert G.clip_model.visual.conv1.weight.dtype == torch.float64
    z, s = inputs(2)
    assert G(z.double(), s.double()).dtype == torch.float64


@pytest.mark.parametrize("name", ["tiny", "zeros+shared", "galip"])
def test_save_and_load_round_trip_exactly(name, tmp_path, clip_and_tokenizer):
    G = perturbed(make(VARIANTS[name])).eval()
    G.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert weights.keys() == G.trainable_state_dict().keys()
    assert (tmp_path / "clip.safetensors").exists()  # a random CLIP cannot be rebuilt from a tag
    z, s = inputs(3)
    loaded = RATLIPGenerator.from_pretrained(tmp_path).eval()
    assert loaded.config == G.config
    assert torch.equal(loaded(z, s), G(z, s))
    with_clip = RATLIPGenerator.from_pretrained(tmp_path, G.clip_model).eval()
    assert with_clip.clip_model is G.clip_model and torch.equal(with_clip(z, s), G(z, s))


def test_save_without_clip_weights_and_foreign_clip(tmp_path):
    G = make(TINY)
    G.save_pretrained(tmp_path / "a", include_clip=False)
    assert not (tmp_path / "a" / "clip.safetensors").exists()
    loaded = RATLIPGenerator.from_pretrained(tmp_path / "a", G.clip_model)
    assert torch.equal(loaded.fc_code.weight, G.fc_code.weight)
    foreign = RATLIPGenerator(TINY, vit_clip(image_size=32, patch_size=8, width=64, layers=2, embed_dim=32))
    delattr(foreign.clip_model, CLIP_SPEC_ATTR)  # as if built without build_clip
    foreign.save_pretrained(tmp_path / "b")
    with pytest.raises(ValueError, match="pass clip_model"):
        RATLIPGenerator.from_pretrained(tmp_path / "b")
    with pytest.raises(ValueError, match="shape"):
        small = vit_clip(image_size=32, patch_size=8, width=32, layers=2, embed_dim=32)
        RATLIPGenerator.from_pretrained(tmp_path / "a", small)


@pytest.mark.parametrize(
    ("noise", "sentence", "match"),
    [
        (torch.zeros(2, 16), torch.zeros(3, 32), "batch sizes differ"),
        (torch.zeros(2, 16), torch.zeros(2, 31), "embed_dim = 32"),
        (torch.zeros(2, 15), torch.zeros(2, 32), "z_dim = 16"),
        (torch.zeros(2, 16, 1), torch.zeros(2, 32), "2-D"),
    ],
)
def test_bad_inputs_raise(noise, sentence, match, clip_and_tokenizer):
    with pytest.raises(ValueError, match=match):
        make(TINY, clip_and_tokenizer)(noise, sentence)


def test_bad_clip_or_size_raises(clip_and_tokenizer):
    with pytest.raises(ValueError, match="VisionTransformer.*got ModifiedResNet"):
        RATLIPGenerator(TINY, resnet_clip())
    with pytest.raises(ValueError, match=r"larger than the CLIP grid \(4x4\).*image_size=4"):
        make(dataclasses.replace(TINY, image_size=4), clip_and_tokenizer)
    with pytest.raises(ValueError, match=r"prompt_blocks.*\[0, 1\].*got \(0, 5\)"):
        make(dataclasses.replace(TINY, prompt_blocks=(0, 5)), clip_and_tokenizer)
    with pytest.raises(ValueError, match="grid of at least 2x2, got 1x1"):
        RATLIPGenerator(TINY, vit_clip(image_size=8, patch_size=8, width=16, layers=1))
    with pytest.raises(TypeError, match="GeneratorConfig"):
        RATLIPGenerator(TINY.to_dict(), clip_and_tokenizer[0])


@st.composite
def shapes(draw):
    groups = draw(st.sampled_from([1, 2]))
    patch = draw(st.sampled_from([4, 8]))
    grid = draw(st.integers(2, 4))
    return {
        "clip": {
            "image_size": patch * grid,
            "patch_size": patch,
            "width": draw(st.sampled_from([16, 32])),
            "layers": draw(st.integers(1, 3)),
        },
        "config": GeneratorConfig(
            image_size=draw(st.integers(grid + 1, 40)),
            ngf=2 * groups * draw(st.integers(1, 2)),
            z_dim=draw(st.integers(1, 8)),
            hidden_size=draw(st.integers(1, 8)),
            code_channels=2 * groups * draw(st.integers(1, 2)),
            mapper_mid_channels=draw(st.integers(1, 4)),
            mapper_blocks=draw(st.integers(1, 2)),
            mapper_fusion=draw(st.sampled_from(["cat", "rat"])),
            fusion="rat",
            shuffle_attention=draw(st.booleans()),
            sa_groups=groups,
            share_cell=draw(st.booleans()),
            state_init=draw(st.sampled_from(["zeros", "noise"])),
        ),
        "batch": draw(st.integers(1, 3)),
    }


@settings(max_examples=8)
@given(case=shapes())
def test_output_shape_over_configs_and_towers(case):
    cfg = case["config"]
    G = RATLIPGenerator(cfg, vit_clip(**case["clip"], embed_dim=8)).eval()
    out = G(torch.randn(case["batch"], cfg.z_dim), torch.randn(case["batch"], 8))
    assert out.shape == (case["batch"], 3, cfg.image_size, cfg.image_size)
    assert (
        G.blocks[-1].size == cfg.image_size
        and G.grid == case["clip"]["image_size"] // case["clip"]["patch_size"]
    )


@pytest.mark.slow
def test_torch_compile_runs_the_tiny_generator(clip_and_tokenizer):
    torch._dynamo.reset()
    G = perturbed(make(TINY, clip_and_tokenizer)).eval()
    z, s = inputs(2)
    compiled = torch.compile(G, dynamic=False, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(z, s), G(z, s), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_presets_on_vit_b32_match_the_reference_counts():
    clip_model, _ = build_clip("ViT-B-32-quickgelu")
    counts = {}
    for name in ("paper", "ratlip", "galip", "galip+sa", "galip+rat"):
        G = RATLIPGenerator(GeneratorConfig.preset(name), clip_model)
        counts[name] = sum(p.numel() for p in trainable(G))
        if name == "paper":
            assert (G.grid, [b.size for b in G.blocks]) == (7, [8, 16, 32, 64, 128, 224])
            assert [b.out_channels for b in G.blocks] == [512, 512, 512, 256, 128, 64]
            assert G.clip_mapper.prompt_blocks == (1, 2, 3, 4, 5, 6, 7, 8) and G.cond_dim == 612
        del G
    D = CLIPDiscriminator(clip_model)
    assert D.layers == (1, 4, 8) and (D.width, D.grid, D.sentence_dim) == (768, 7, 512)
    # Reference trainable counts: RATLIP 53,771,379 and GALIP 51,830,211. The single switches add
    # SA convs (BatchNorm + SA - conv bias: 5,808) or the mapper's 16 LSTMs (2,777,088) minus the
    # smaller first head layers (841,728).
    assert counts == {
        "paper": 53_771_379,
        "ratlip": 53_771_379,
        "galip": 51_830_211,
        "galip+sa": 51_830_211 + 5_808,
        "galip+rat": 51_830_211 + 2_777_088 - 841_728,
    }
