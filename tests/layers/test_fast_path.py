"""The fast path against the plain reference path: same values and gradients, every optimisation."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from ratlip_layers import (
    Affine,
    ConditioningSchedule,
    DFBlock,
    LSTMAffine,
    RATBlock,
    SAConv,
    ShuffleAttention,
    is_fast_path_enabled,
    lstm_pointwise,
    modulate,
    modulate_twice,
    set_fast_path,
)
from ratlip_layers.layers.fused import TORCH, _scale_shift_backward, fused_modulate_twice

CHANNELS_LAST = torch.channels_last
FORMATS = [torch.contiguous_format, CHANNELS_LAST]


def _params(batch: int, channels: int, dtype=torch.float32) -> list[torch.Tensor]:
    return [torch.randn(batch, channels, dtype=dtype, requires_grad=True) for _ in range(4)]


def _grads(out: torch.Tensor, inputs: list[torch.Tensor], grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(out, inputs, grad)


def _plain(fn, *args, **kwargs):
    with set_fast_path(False):
        return fn(*args, **kwargs)


def test_switch_is_a_context_manager_and_a_call():
    assert is_fast_path_enabled()
    with set_fast_path(False):
        assert not is_fast_path_enabled()
        with set_fast_path(True):
            assert is_fast_path_enabled()
        assert not is_fast_path_enabled()
    assert is_fast_path_enabled()
    set_fast_path(False)
    try:
        assert not is_fast_path_enabled()
    finally:
        set_fast_path(True)
    with pytest.raises(TypeError, match="enabled must be a bool"):
        set_fast_path(1)


def test_fused_modulation_gradcheck_float64():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    params = _params(2, 3, torch.float64)

    def fn(x, *params):
        return fused_modulate_twice(x, *params, 0.2, backend=TORCH)

    assert torch.autograd.gradcheck(fn, (x, *params))


@pytest.mark.parametrize("memory_format", FORMATS, ids=["nchw", "channels_last"])
@pytest.mark.parametrize("slope", [0.2, 0.0])
def test_fused_modulation_matches_plain(memory_format, slope):
    x = torch.randn(3, 4, 5, 6).contiguous(memory_format=memory_format).requires_grad_()
    params = _params(3, 4)
    grad = torch.randn(3, 4, 5, 6)
    fast = modulate_twice(x, *params, slope)
    plain = _plain(modulate_twice, x, *params, slope)
    torch.testing.assert_close(fast, plain)
    for a, b in zip(_grads(fast, [x, *params], grad), _grads(plain, [x, *params], grad)):
        torch.testing.assert_close(a, b)
    assert fast.is_contiguous(memory_format=memory_format)


def test_fused_modulation_matches_plain_on_large_maps():
    # 2 * 8 * 64 * 64 elements reach the one-kernel (batch-norm backward) reduction path.
    x = torch.randn(2, 8, 64, 64, dtype=torch.float64, requires_grad=True)
    params = _params(2, 8, torch.float64)
    grad = torch.randn(2, 8, 64, 64, dtype=torch.float64)
    fast = _grads(modulate_twice(x, *params), [x, *params], grad)
    plain = _grads(_plain(modulate_twice, x, *params), [x, *params], grad)
    for a, b in zip(fast, plain):
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


def test_fused_modulation_without_grad_and_in_bfloat16():
    x = torch.randn(2, 8, 3, 3, dtype=torch.bfloat16)
    params = [p.detach() for p in _params(2, 8)]
    with torch.no_grad():
        fast = modulate_twice(x, *params)
        plain = _plain(modulate_twice, x, *params)
    assert fast.dtype == torch.bfloat16
    torch.testing.assert_close(fast, plain, rtol=2e-2, atol=2e-2)


def test_negative_slope_takes_the_plain_path_with_the_same_result():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    params = _params(2, 3)
    fast = modulate_twice(x, *params, -0.5)
    torch.testing.assert_close(fast, _plain(modulate_twice, x, *params, -0.5))
    assert "ModulateTwice" not in type(fast.grad_fn).__name__


def test_fused_modulation_gradient_only_for_params():
    x = torch.randn(2, 3, 4, 4)
    params = _params(2, 3)
    grad = torch.randn(2, 3, 4, 4)
    fast = _grads(modulate_twice(x, *params), params, grad)
    plain = _grads(_plain(modulate_twice, x, *params), params, grad)
    for a, b in zip(fast, plain):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("memory_format", FORMATS, ids=["nchw", "channels_last"])
def test_modulate_matches_plain(memory_format):
    x = torch.randn(2, 5, 3, 4).contiguous(memory_format=memory_format).requires_grad_()
    gamma, beta = _params(2, 5)[:2]
    grad = torch.randn(2, 5, 3, 4)
    fast = modulate(x, gamma, beta)
    plain = _plain(modulate, x, gamma, beta)
    torch.testing.assert_close(fast, plain)
    for a, b in zip(_grads(fast, [x, gamma, beta], grad), _grads(plain, [x, gamma, beta], grad)):
        torch.testing.assert_close(a, b)
    with torch.no_grad():
        torch.testing.assert_close(modulate(x, gamma, beta), plain)


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
            outs = [fused_modulate_twice(x, *ps, 0.2, backend=b) for b in ("triton", "torch")]
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


def _perturbed(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)
    return module


@pytest.mark.parametrize("groups", [8, 2, 3])
@pytest.mark.parametrize("memory_format", FORMATS, ids=["nchw", "channels_last"])
def test_shuffle_attention_matches_plain(groups, memory_format):
    sa = _perturbed(ShuffleAttention(12 * groups, groups)).double()
    x = (
        torch.randn(2, 12 * groups, 5, 3, dtype=torch.float64)
        .contiguous(memory_format=memory_format)
        .requires_grad_()
    )
    grad = torch.randn(2, 12 * groups, 5, 3, dtype=torch.float64)
    fast = sa(x)
    plain = _plain(sa, x)
    torch.testing.assert_close(fast, plain)
    inputs = [x, *sa.parameters()]
    for a, b in zip(_grads(fast, inputs, grad), _grads(plain, inputs, grad)):
        torch.testing.assert_close(a, b)
    if groups % 2 == 0:
        assert fast.is_contiguous(memory_format=memory_format)


def test_sa_conv_keeps_channels_last():
    layer = SAConv(8, 16).to(memory_format=CHANNELS_LAST)
    x = torch.randn(2, 8, 6, 6).contiguous(memory_format=CHANNELS_LAST)
    out = layer(x)
    assert out.is_contiguous(memory_format=CHANNELS_LAST)
    torch.testing.assert_close(out, _plain(layer, x))


@pytest.mark.parametrize("block_cls", [RATBlock, DFBlock])
def test_blocks_match_plain_with_gradients(block_cls):
    block = _perturbed(block_cls(10, 6))
    x = torch.randn(3, 6, 4, 4, requires_grad=True)
    cond = torch.randn(3, 10)

    def run():
        out = block(x, cond)
        return out[0] if isinstance(out, tuple) else out

    grad = torch.randn(3, 6, 4, 4)
    fast, plain = run(), _plain(run)
    torch.testing.assert_close(fast, plain)
    inputs = [x, *block.parameters()]
    for a, b in zip(_grads(fast, inputs, grad), _grads(plain, inputs, grad)):
        torch.testing.assert_close(a, b)


def test_lstm_pointwise_matches_lstm_cell_with_and_without_state():
    cell = nn.LSTMCell(5, 3)
    x, h, c = torch.randn(4, 5), torch.randn(4, 3), torch.randn(4, 3)
    with_state = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    for got, want in zip(lstm_pointwise(with_state, c), cell(x, (h, c))):
        torch.testing.assert_close(got, want)
    zero_state = x @ cell.weight_ih.T + cell.bias_ih + cell.bias_hh
    for got, want in zip(lstm_pointwise(zero_state, None), cell(x)):
        torch.testing.assert_close(got, want)


def _network() -> list[nn.Module]:
    shared = nn.LSTMCell(12, 5)
    layers = [
        RATBlock(12, 8, 5),
        DFBlock(12, 8),
        LSTMAffine(12, 16, 5, cell=shared),
        Affine(12, 16),
        RATBlock(12, 8, 5, cell=shared),
        RATBlock(12, 16, 5),
    ]
    return [_perturbed(layer).double() for layer in layers]


def _per_layer(layers, cond, state):
    """The modulations the layers compute one by one, threading the state through recurrent layers."""
    out = []
    for layer in layers:
        if isinstance(layer, RATBlock):
            params, state = layer.modulation(cond, state)
        elif isinstance(layer, LSTMAffine):
            gamma, beta, state = layer.step(cond, state)
            params = (gamma, beta)
        else:
            params = layer.modulation(cond)
        out.append(params)
    return out, state


@pytest.mark.parametrize("with_state", [False, True])
def test_schedule_matches_the_layers_one_by_one(with_state):
    layers = _network()
    cond = torch.randn(3, 12, dtype=torch.float64)
    state = (
        (torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64))
        if with_state
        else None
    )
    scheduled, final = ConditioningSchedule(layers)(cond, state)
    expected, expected_final = _per_layer(layers, cond, state)
    assert len(scheduled) == len(layers)
    for got, want in zip(scheduled, expected):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)
    torch.testing.assert_close(final, expected_final)
    params = [p for layer in layers for p in layer.parameters()]
    unique = list({id(p): p for p in params}.values())
    weights = [torch.randn_like(t) for mods in expected for t in mods]
    loss_a = (
        sum((w * t).sum() for w, t in zip(weights, [t for mods in scheduled for t in mods])) + final[0].sum()
    )
    loss_b = (
        sum((w * t).sum() for w, t in zip(weights, [t for mods in expected for t in mods]))
        + expected_final[0].sum()
    )
    # Every parameter is in the graph, W_hh of a zero state included, as DDP requires.
    for a, b in zip(torch.autograd.grad(loss_a, unique), torch.autograd.grad(loss_b, unique)):
        torch.testing.assert_close(a, b)


def test_schedule_apply_equals_the_layer_forward():
    layers = _network()
    cond = torch.randn(2, 12, dtype=torch.float64)
    schedule = ConditioningSchedule(layers)
    mods, _ = schedule(cond)
    x8 = torch.randn(2, 8, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(schedule.apply(0, x8, mods[0]), layers[0](x8, cond)[0])
    torch.testing.assert_close(schedule.apply(1, x8, mods[1]), layers[1](x8, cond))
    x16 = torch.randn(2, 16, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(schedule.apply(3, x16, mods[3]), layers[3](x16, cond))
    assert len(schedule) == 6 and "RATBlock" in repr(schedule)


def test_schedule_of_cat_layers_only_returns_the_input_state():
    layers = [DFBlock(6, 4), Affine(6, 4)]
    state = (torch.randn(2, 3), torch.randn(2, 3))
    mods, final = ConditioningSchedule(layers)(torch.randn(2, 6), state)
    assert final is state
    assert [len(m) for m in mods] == [4, 2]


def test_schedule_rejects_bad_layers_and_inputs():
    with pytest.raises(ValueError, match="at least one"):
        ConditioningSchedule([])
    with pytest.raises(TypeError, match="got Linear at index 1"):
        ConditioningSchedule([DFBlock(6, 4), nn.Linear(2, 2)])
    with pytest.raises(ValueError, match=r"cond_dim, got \[6, 7\]"):
        ConditioningSchedule([DFBlock(6, 4), DFBlock(7, 4)])
    with pytest.raises(ValueError, match=r"hidden_size, got \[3, 5\]"):
        ConditioningSchedule([RATBlock(6, 4, 3), RATBlock(6, 4, 5)])
    schedule = ConditioningSchedule([RATBlock(6, 4, 3)])
    with pytest.raises(ValueError, match="cond_dim = 6"):
        schedule(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"\(batch, hidden_size\) = \(2, 3\)"):
        schedule(torch.randn(2, 6), (torch.randn(2, 4), torch.randn(2, 4)))


@pytest.mark.slow
def test_schedule_compiles_without_graph_breaks():
    torch._dynamo.reset()
    layers = _network()
    schedule = ConditioningSchedule(layers)
    cond = torch.randn(2, 12, dtype=torch.float64)
    state = (torch.randn(2, 5, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64))
    compiled = torch.compile(schedule.__call__, fullgraph=True, dynamic=False)
    got, got_state = compiled(cond, state)
    want, want_state = schedule(cond, state)
    for got_layer, want_layer in zip(got, want):
        for a, b in zip(got_layer, want_layer):
            torch.testing.assert_close(a, b)
    torch.testing.assert_close(got_state, want_state)
