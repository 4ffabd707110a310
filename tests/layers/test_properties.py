"""Property-based checks over sizes, dtypes and memory layouts."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from ratlip_layers import Affine, DFBlock, LSTMAffine, RATBlock, SAConv, ShuffleAttention

from .cases import perturb_

DTYPES = st.sampled_from([torch.float32, torch.float64, torch.bfloat16])


@st.composite
def configs(draw):
    groups = draw(st.integers(1, 4))
    return {
        "batch": draw(st.integers(1, 4)),
        "groups": groups,
        "channels": 2 * groups * draw(st.integers(1, 3)),
        "height": draw(st.integers(1, 7)),
        "width": draw(st.integers(2, 7)),  # ShuffleAttention needs H * W >= 2
        "cond_dim": draw(st.integers(1, 12)),
        "hidden": draw(st.integers(1, 10)),
    }


def _build_all(cfg):
    c, d, hid, g = cfg["channels"], cfg["cond_dim"], cfg["hidden"], cfg["groups"]
    return {
        "Affine": Affine(d, c),
        "DFBlock": DFBlock(d, c),
        "LSTMAffine": LSTMAffine(d, c, hid),
        "RATBlock": RATBlock(d, c, hid),
        "ShuffleAttention": ShuffleAttention(c, g),
        "SAConv": SAConv(c, c, groups=g),
    }


def _run(name, module, x, cond, state):
    if name in ("LSTMAffine", "RATBlock"):
        out, (h, c) = module(x, cond, state)
        return out, h, c
    if name in ("Affine", "DFBlock"):
        return (module(x, cond),)
    return (module(x),)


def _inputs(cfg, dtype):
    x = torch.randn(cfg["batch"], cfg["channels"], cfg["height"], cfg["width"], dtype=dtype)
    cond = torch.randn(cfg["batch"], cfg["cond_dim"], dtype=dtype)
    state = tuple(torch.randn(cfg["batch"], cfg["hidden"], dtype=dtype) for _ in range(2))
    return x, cond, state


@given(cfg=configs(), dtype=DTYPES)
def test_shape_and_dtype_preserved(cfg, dtype):
    x, cond, state = _inputs(cfg, dtype)
    for name, module in _build_all(cfg).items():
        module = perturb_(module).to(dtype).eval()
        out, *new_state = _run(name, module, x, cond, state)
        assert out.shape == x.shape, name
        assert out.dtype == dtype, name
        for t in new_state:
            assert t.shape == (cfg["batch"], cfg["hidden"]) and t.dtype == dtype, name


@given(cfg=configs())
def test_float32_module_keeps_bfloat16_features(cfg):
    """Mixed precision without autocast: a float32 conditioned layer returns features in x's dtype."""
    x, cond, state = _inputs(cfg, torch.float32)
    x = x.bfloat16()
    for name, module in _build_all(cfg).items():
        if name == "SAConv":
            continue  # a convolution needs its weights in the input's dtype, as nn.Conv2d always does
        out = _run(name, perturb_(module).eval(), x, cond, state)[0]
        assert out.dtype == torch.bfloat16, name


@given(cfg=configs())
def test_channels_last_and_non_contiguous_match_contiguous(cfg):
    x, cond, state = _inputs(cfg, torch.float32)
    x_cl = x.to(memory_format=torch.channels_last)
    # A non-contiguous view with the same values: every other column of a wider tensor.
    wide = torch.zeros(*x.shape[:3], 2 * x.shape[3])
    wide[..., ::2] = x
    x_nc = wide[..., ::2]
    assert not x_nc.is_contiguous()
    for name, module in _build_all(cfg).items():
        module = perturb_(module).eval()
        expected = _run(name, module, x, cond, state)
        for variant in (x_cl, x_nc):
            got = _run(name, module, variant, cond, state)
            for e, g in zip(expected, got, strict=True):
                torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
