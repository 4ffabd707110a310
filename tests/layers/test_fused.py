"""The fused implementations against the reference ones (values and gradients), and how a layer's
implementation is chosen (``impl=``, ``default_impl``, the ``RATLIP_LAYERS_IMPL`` override)."""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from ratlip_layers import DFBlock, RATBlock, SAConv, ShuffleAttention
from ratlip_layers.layers import modulate_twice
from ratlip_layers.layers import default_impl
from ratlip_layers.layers.fused import _scale_shift_backward, fused_modulate_twice

CHANNELS_LAST = torch.channels_last
FORMATS = [torch.contiguous_format, CHANNELS_LAST]
LAYERS_WITH_IMPL = [
    pytest.param(lambda impl: DFBlock(6, 4, impl=impl), id="DFBlock"),
    pytest.param(lambda impl: RATBlock(6, 4, 3, impl=impl), id="RATBlock"),
    pytest.param(lambda impl: ShuffleAttention(8, 2, impl=impl), id="ShuffleAttention"),
    pytest.param(lambda impl: SAConv(4, 8, groups=2, impl=impl).attn, id="SAConv"),
]


def _params(batch: int, channels: int, dtype=torch.float32) -> list[torch.Tensor]:
    return [torch.randn(batch, channels, dtype=dtype, requires_grad=True) for _ in range(4)]


def _grads(out: torch.Tensor, inputs: list[torch.Tensor], grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(out, inputs, grad)


def _ref_copy(module: nn.Module) -> nn.Module:
    """The same module, weights shared, with every layer that has an ``impl`` switched to ``"ref"``."""
    ref = copy.copy(module)
    ref._modules = {name: _ref_copy(child) for name, child in module._modules.items()}
    if hasattr(ref, "impl"):
        ref.impl = "ref"
    return ref


def _perturbed(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)
    return module


@pytest.mark.parametrize("build", LAYERS_WITH_IMPL)
def test_impl_is_chosen_once_at_construction(build):
    assert default_impl() == "fused"  # no RATLIP_LAYERS_IMPL in the test environment
    assert build(None).impl == "fused" and build("fused").impl == "fused" and build("ref").impl == "ref"
    assert "impl='ref'" in repr(build("ref"))
    with pytest.raises(ValueError, match=r"impl must be one of \('ref', 'fused'\) or None, got 'cuda'"):
        build("cuda")


def test_environment_variable_sets_the_default_once_at_import():
    script = textwrap.dedent(
        """
        import os
        from ratlip_layers import DFBlock, ShuffleAttention
        from ratlip_layers.layers import default_impl
        assert default_impl() == "ref", default_impl()
        assert DFBlock(4, 2).impl == ShuffleAttention(4, 2).impl == "ref"
        os.environ["RATLIP_LAYERS_IMPL"] = "fused"  # read at import only: no effect now
        assert DFBlock(4, 2).impl == "ref" and DFBlock(4, 2, impl="fused").impl == "fused"
        print("ok")
        """
    )

    def run(value: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "RATLIP_LAYERS_IMPL": value}
        return subprocess.run(
            [sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True, timeout=120
        )

    result = run("ref")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
    result = run("fast")
    assert result.returncode != 0
    assert "RATLIP_LAYERS_IMPL must be one of ('ref', 'fused'), got 'fast'" in result.stderr


def test_fused_modulation_gradcheck_float64():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    params = _params(2, 3, torch.float64)

    def fn(x, *params):
        return fused_modulate_twice(x, *params, 0.2, use_triton=False)

    assert torch.autograd.gradcheck(fn, (x, *params))


@pytest.mark.parametrize("memory_format", FORMATS, ids=["nchw", "channels_last"])
@pytest.mark.parametrize("slope", [0.2, 0.0])
def test_fused_modulation_matches_ref(memory_format, slope):
    x = torch.randn(3, 4, 5, 6).contiguous(memory_format=memory_format).requires_grad_()
    params = _params(3, 4)
    grad = torch.randn(3, 4, 5, 6)
    fused = modulate_twice(x, *params, slope, impl="fused")
    ref = modulate_twice(x, *params, slope, impl="ref")
    assert "ModulateTwice" in type(fused.grad_fn).__name__
    torch.testing.assert_close(fused, ref)
    for a, b in zip(_grads(fused, [x, *params], grad), _grads(ref, [x, *params], grad)):
        torch.testing.assert_close(a, b)
    assert fused.is_contiguous(memory_format=memory_format)


def test_fused_modulation_matches_ref_on_large_maps():
    # 2 * 8 * 64 * 64 elements reach the one-kernel (batch-norm backward) reduction path.
    x = torch.randn(2, 8, 64, 64, dtype=torch.float64, requires_grad=True)
    params = _params(2, 8, torch.float64)
    grad = torch.randn(2, 8, 64, 64, dtype=torch.float64)
    fused = _grads(modulate_twice(x, *params, impl="fused"), [x, *params], grad)
    ref = _grads(modulate_twice(x, *params), [x, *params], grad)
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("dtype", "tol"), [(torch.float64, 1e-9), (torch.float32, 1e-4), (torch.bfloat16, 1e-2)]
)
def test_one_kernel_reduction_matches_the_explicit_gradients(dtype, tol):
    grad, x = torch.randn(2, 8, 64, 64, dtype=dtype), torch.randn(2, 8, 64, 64, dtype=dtype)
    gamma = torch.randn(2, 8, 1, 1, dtype=dtype)
    got = _scale_shift_backward(grad, x, gamma)
    grad64, x64 = grad.double(), x.double()
    want = (grad64 * gamma.double(), (grad64 * x64).sum((2, 3)), grad64.sum((2, 3)))
    assert got[0].dtype == dtype
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b, rtol=tol, atol=tol * 64)


@pytest.mark.parametrize("size", [3, 64], ids=["small", "one-kernel-reduction"])
def test_fused_modulation_in_bfloat16_with_and_without_grad(size):
    x = torch.randn(2, 8, size, size, dtype=torch.bfloat16, requires_grad=True)
    params = _params(2, 8)
    with torch.no_grad():
        fused = modulate_twice(x, *params, impl="fused")
        ref = modulate_twice(x, *params)
    assert fused.dtype == torch.bfloat16
    torch.testing.assert_close(fused, ref, rtol=2e-2, atol=2e-2)
    grad = torch.randn(2, 8, size, size, dtype=torch.bfloat16)
    fused_grads = _grads(modulate_twice(x, *params, impl="fused"), [x, *params], grad)
    ref_grads = _grads(modulate_twice(x, *params), [x, *params], grad)
    assert fused_grads[0].dtype == torch.bfloat16 and fused_grads[1].dtype == torch.float32
    # Both round in bfloat16, in different places, so a pre-activation within rounding of zero
    # may take the other LeakyReLU branch: grad_x may differ at a handful of such elements.
    close = torch.isclose(fused_grads[0].float(), ref_grads[0].float(), rtol=3e-2, atol=3e-2)
    assert close.float().mean() > 0.999
    for a, b in zip(fused_grads[1:], ref_grads[1:]):
        torch.testing.assert_close(a, b, rtol=3e-2, atol=3e-2 * max(1.0, b.abs().max().item()))


def test_negative_slope_computes_the_reference():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    params = _params(2, 3)
    fused = modulate_twice(x, *params, -0.5, impl="fused")
    torch.testing.assert_close(fused, modulate_twice(x, *params, -0.5))
    assert "ModulateTwice" not in type(fused.grad_fn).__name__


def test_fused_modulation_gradient_only_for_params():
    x = torch.randn(2, 3, 4, 4)
    params = _params(2, 3)
    grad = torch.randn(2, 3, 4, 4)
    fused = _grads(modulate_twice(x, *params, impl="fused"), params, grad)
    ref = _grads(modulate_twice(x, *params), params, grad)
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b)


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed")
def test_triton_kernels_match_torch_under_the_interpreter():
    # TRITON_INTERPRET must be set before Triton is imported, hence a fresh interpreter. Shapes
    # cover one partial block and a row longer than the kernels' 1024-wide block.
    script = textwrap.dedent(
        """
        import torch
        from ratlip_layers.layers.fused import fused_modulate_twice
        torch.manual_seed(0)
        for shape, dtype, tol in [((2, 3, 5, 7), torch.float32, 1e-5), ((1, 2, 33, 33), torch.float32, 1e-4),
                                  ((2, 2, 4, 4), torch.bfloat16, 2e-2)]:
            x = torch.randn(shape, dtype=dtype, requires_grad=True)
            ps = [torch.randn(shape[0], shape[1], requires_grad=True) for _ in range(4)]
            grad = torch.randn(shape, dtype=dtype)
            outs = [fused_modulate_twice(x, *ps, 0.2, use_triton=t) for t in (True, False)]
            torch.testing.assert_close(outs[0], outs[1], rtol=tol, atol=tol)
            grads = [torch.autograd.grad(o, [x, *ps], grad) for o in outs]
            for a, b in zip(*grads):
                assert a.dtype == b.dtype
                torch.testing.assert_close(a, b, rtol=tol, atol=tol * shape[2] * shape[3])
        print("ok")
        """
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


@pytest.mark.parametrize("groups", [8, 2, 3])
@pytest.mark.parametrize("memory_format", FORMATS, ids=["nchw", "channels_last"])
def test_shuffle_attention_fused_matches_ref(groups, memory_format):
    sa = _perturbed(ShuffleAttention(12 * groups, groups, impl="fused")).double()
    x = (
        torch.randn(2, 12 * groups, 5, 3, dtype=torch.float64)
        .contiguous(memory_format=memory_format)
        .requires_grad_()
    )
    grad = torch.randn(2, 12 * groups, 5, 3, dtype=torch.float64)
    fused = sa(x)
    ref = _ref_copy(sa)(x)
    torch.testing.assert_close(fused, ref)
    inputs = [x, *sa.parameters()]
    for a, b in zip(_grads(fused, inputs, grad), _grads(ref, inputs, grad)):
        torch.testing.assert_close(a, b)
    if groups % 2 == 0:
        assert fused.is_contiguous(memory_format=memory_format)


def test_sa_conv_keeps_channels_last():
    layer = SAConv(8, 16, impl="fused").to(memory_format=CHANNELS_LAST)
    x = torch.randn(2, 8, 6, 6).contiguous(memory_format=CHANNELS_LAST)
    out = layer(x)
    assert out.is_contiguous(memory_format=CHANNELS_LAST)
    torch.testing.assert_close(out, _ref_copy(layer)(x))


@pytest.mark.parametrize("block_cls", [RATBlock, DFBlock])
def test_blocks_fused_match_ref_with_gradients(block_cls):
    block = _perturbed(block_cls(10, 6, impl="fused"))
    x = torch.randn(3, 6, 4, 4, requires_grad=True)
    cond = torch.randn(3, 10)

    def run(module):
        out = module(x, cond, None) if isinstance(module, RATBlock) else module(x, cond)
        return out[0] if isinstance(out, tuple) else out

    grad = torch.randn(3, 6, 4, 4)
    fused, ref = run(block), run(_ref_copy(block))
    torch.testing.assert_close(fused, ref)
    inputs = [x, *block.parameters()]
    for a, b in zip(_grads(fused, inputs, grad), _grads(ref, inputs, grad)):
        torch.testing.assert_close(a, b)
