"""The accelerated paths on the ``--device`` the suite runs on (``pytest --device cuda`` on a GPU):
fused layers against their reference ops, the Triton kernels against the PyTorch node, the training
step under autocast, and the compiled / CUDA-graph generator against eager. On the default CPU run
they check the CPU side of each path; the CUDA-only checks say so when they skip."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from ratlip_layers import DFBlock, RATBlock, SAConv, ShuffleAttention

# (rtol, atol) of the fused path against the reference, per dtype: both round in their own order.
TOLERANCE = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (3e-2, 3e-2), torch.float16: (5e-3, 5e-3)}

LAYERS = {
    "DFBlock": lambda impl: DFBlock(12, 16, impl=impl),
    "RATBlock": lambda impl: RATBlock(12, 16, 8, impl=impl),
    "ShuffleAttention": lambda impl: ShuffleAttention(16, 2, impl=impl),
    "SAConv": lambda impl: SAConv(8, 16, groups=2, impl=impl),
}


def _run(layer: nn.Module, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, RATBlock):
        return layer(x, cond, None)[0]
    if isinstance(layer, DFBlock):
        return layer(x, cond)
    return layer(x)


def _assert_close_at_scale(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype) -> None:
    """Close relative to the tensor's largest value: a half-precision result differs from another
    rounding order by a few units in the last place of its largest entries (parameter gradients
    are sums over the whole map). In half precision a pre-activation that rounds to the other side
    of zero takes the other LeakyReLU slope, so a few elements in ten thousand may differ more."""
    rtol, atol = TOLERANCE[dtype]
    scale = want.abs().max().clamp_min(1.0)
    if dtype == torch.float32:
        torch.testing.assert_close(got / scale, want / scale, rtol=rtol, atol=atol)
        return
    off = ((got - want).abs() > atol * scale + rtol * want.abs()).float().mean().item()
    assert off <= 1e-3, f"{off:.2%} of the elements differ beyond rtol={rtol}, atol={atol} (at scale {scale:.3g})"



def _perturb(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)
    return module


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_fused_layer_matches_reference_on_device(name, dtype, device):
    torch.manual_seed(0)
    ref = _perturb(LAYERS[name]("ref")).to(device=device, dtype=dtype)
    fused = LAYERS[name]("fused").to(device=device, dtype=dtype)
    fused.load_state_dict(ref.state_dict())
    channels = 8 if name == "SAConv" else 16
    x = torch.randn(4, channels, 16, 16, device=device, dtype=dtype)
    cond = torch.randn(4, 12, device=device, dtype=dtype)
    outs, grads = [], []
    for layer in (ref, fused):
        xi = x.clone().requires_grad_(True)
        out = _run(layer, xi, cond)
        out.backward(torch.ones_like(out))
        outs.append(out.float())
        grads.append([xi.grad.float()] + [p.grad.float() for p in layer.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1])
    for got, want in zip([outs[1], *grads[1]], [outs[0], *grads[0]]):
        _assert_close_at_scale(got, want, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=["float32", "bfloat16", "float16"])
def test_triton_kernels_match_the_pytorch_node_on_cuda(dtype, device):
    if device.type != "cuda" or importlib.util.find_spec("triton") is None:
        pytest.skip("needs --device cuda and Triton (the CPU run checks the kernels under the interpreter)")
    from ratlip_layers.layers.fused import fused_modulate_twice

    torch.manual_seed(0)
    x = torch.randn(3, 16, 24, 24, device=device, dtype=dtype)
    params = [torch.randn(3, 16, device=device) * 0.5 + (1.0 if i % 2 == 0 else 0.0) for i in range(4)]
    grad = torch.randn_like(x)

    def run(x_in: torch.Tensor, use_triton: bool) -> list[torch.Tensor]:
        xi = x_in.clone().requires_grad_(True)
        ps = [p.clone().requires_grad_(True) for p in params]
        out = fused_modulate_twice(xi, *ps, 0.2, use_triton=use_triton)
        out.backward(grad.to(x_in.dtype))
        return [out.float(), xi.grad.float()] + [p.grad.float() for p in ps]

    # Both sides against the PyTorch node in float32 on the same (rounded) inputs: the kernel computes
    # in float32 internally, the PyTorch node in ``dtype``, so the kernel must be at least as close.
    exact = run(x.float(), use_triton=False)
    for kernel, node, want in zip(run(x, True), run(x, False), exact):
        _assert_close_at_scale(kernel, want, dtype)
        if dtype != torch.float32:  # in float32 both sides are the same computation
            assert (kernel - want).abs().max() <= 1.5 * (node - want).abs().max() + 1e-6


@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_training_step_under_autocast_on_device(amp, device):
    from ratlip_layers import CLIPDiscriminator, GeneratorConfig, RATLIPGenerator, tiny_clip
    from ratlip_layers.clip import CLIPTextAdapter
    from ratlip_layers.training import GANTrainStep, Precision

    torch.manual_seed(0)
    clip_model, tokenizer = tiny_clip()
    clip_model = clip_model.to(device)
    G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer).to(device)
    D = CLIPDiscriminator(clip_model, channels=16, joint_channels=8).to(device)
    precision = Precision(amp, device.type)
    step = GANTrainStep(G, D, CLIPTextAdapter(clip_model, tokenizer=tokenizer), precision=precision, lr_g=1e-3)
    before = [p.detach().clone() for p in G.parameters() if p.requires_grad]
    images = torch.rand(4, 3, 32, 32, device=device) * 2 - 1
    tokens = tokenizer(["a red circle on a blue background", "a green square on a white background"] * 2)
    for i in range(3):
        logs = step(images, tokens.to(device), step=i + 1)
        assert all(torch.isfinite(torch.tensor(v)) for v in logs.values()), logs
    # The generator trained in the autocast dtype's precision, its weights stayed float32.
    after = [p for p in G.parameters() if p.requires_grad]
    assert all(p.dtype == torch.float32 for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    if amp == "fp16":
        assert precision.scaler_g.get_scale() >= 64.0 and precision.scaler_d.get_scale() >= 64.0


@pytest.mark.slow
def test_compiled_and_graph_replayed_generator_match_eager_on_device(device):
    from ratlip_layers import GeneratorConfig, RATLIPGenerator, tiny_clip
    from ratlip_layers.models import optimize_for_inference

    torch.manual_seed(0)
    G = RATLIPGenerator(GeneratorConfig.preset("tiny"), tiny_clip()[0]).to(device)
    _perturb(G.fc_code)
    z, s = torch.randn(3, 16, device=device), torch.randn(3, 32, device=device)
    run = optimize_for_inference(G, compile=True)
    assert run.cuda_graphs == (device.type == "cuda")
    with torch.no_grad():
        eager = G(z, s)
    for _ in range(2):  # the second call replays the captured graph on CUDA
        torch.testing.assert_close(run(z, s), eager, rtol=1e-4, atol=1e-4)
    z2 = torch.randn_like(z)  # new values, same shape: the replay reads the new inputs
    with torch.no_grad():
        torch.testing.assert_close(run(z2, s), G(z2, s), rtol=1e-4, atol=1e-4)
