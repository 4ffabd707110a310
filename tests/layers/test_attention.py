"""``layers/attention.py``: ShuffleAttention and SAConv against SA-Net's steps (SPEC §2), fused and ref."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ratlip_layers import SAConv, ShuffleAttention

from .cases import (
    CASES,
    C,
    BaseTester,
    check_compiled_backward_matches_eager,
    grads,
    perturb_,
    perturb_all_,
    ref_copy,
)

FORMATS = [torch.contiguous_format, torch.channels_last]


def _shuffle_attention_reference(sa: ShuffleAttention, x):
    """SPEC §2's steps with plain reshapes and an explicit per-channel norm."""
    b, c, h, w = x.shape
    g = sa.groups
    xg = x.reshape(b * g, c // g, h, w)
    x0, x1 = xg[:, : c // (2 * g)], xg[:, c // (2 * g) :]
    x0 = x0 * torch.sigmoid(sa.cweight * x0.mean(dim=(2, 3), keepdim=True) + sa.cbias)
    mean = x1.mean(dim=(2, 3), keepdim=True)
    var = x1.var(dim=(2, 3), keepdim=True, unbiased=False)
    normed = (x1 - mean) / torch.sqrt(var + sa.gn.eps) * sa.gn.weight[None, :, None, None] + sa.gn.bias[None, :, None, None]
    x1 = x1 * torch.sigmoid(sa.sweight * normed + sa.sbias)
    out = torch.cat([x0, x1], dim=1).reshape(b, c, h, w)
    return out.reshape(b, 2, c // 2, h, w).permute(0, 2, 1, 3, 4).reshape(b, c, h, w)


class TestShuffleAttention(BaseTester):
    case = CASES["ShuffleAttention"]

    @pytest.mark.parametrize("make", [lambda: ShuffleAttention(0), lambda: ShuffleAttention(16, groups=0)])
    def test_exception(self, make):
        with pytest.raises(ValueError, match="must be a positive int, got"):
            make()

    def test_exception_channels_not_divisible_by_two_groups(self):
        with pytest.raises(ValueError, match=r"channels \(12\) must be divisible by 2 \* groups \(8\)"):
            ShuffleAttention(12, groups=4)

    def test_exception_wrong_rank_and_channels(self, device):
        with pytest.raises(ValueError, match=r"4-D tensor .* got shape \(8, 4, 4\)"):
            ShuffleAttention(C, 2).to(device)(torch.randn(C, 4, 4).to(device))
        with pytest.raises(ValueError, match=r"= 8 .* got shape \(1, 6, 4, 4\)"):
            ShuffleAttention(C, 2).to(device)(torch.randn(1, 6, 4, 4).to(device))

    def test_exception_single_pixel_map(self, device):
        with pytest.raises(ValueError, match=r"H \* W >= 2, got x of shape \(1, 8, 1, 1\)"):
            ShuffleAttention(C, 2).to(device)(torch.randn(1, C, 1, 1).to(device))

    @pytest.mark.slow
    def test_dynamo_backward(self, device):
        check_compiled_backward_matches_eager(self.case, device)

    def test_matches_sa_net(self, device):
        sa = perturb_(ShuffleAttention(16, groups=2)).double().to(device)
        x = torch.randn(3, 16, 5, 4, dtype=torch.float64).to(device)
        torch.testing.assert_close(sa(x), _shuffle_attention_reference(sa, x))

    def test_init_values_and_names(self):
        sa = ShuffleAttention(32, groups=4)
        names = dict(sa.named_parameters())
        assert set(names) == {"cweight", "cbias", "sweight", "sbias", "gn.weight", "gn.bias"}
        assert names["cweight"].shape == (1, 4, 1, 1)
        assert (sa.cweight == 0).all() and (sa.cbias == 1).all() and (sa.sweight == 0).all() and (sa.sbias == 1).all()
        assert sa.gn.num_groups == 4 and sa.gn.num_channels == 4

    def test_channel_shuffle_interleaves_halves(self, device):
        # With all gates saturated open (bias large), attention is the identity up to the shuffle.
        sa = ShuffleAttention(8, groups=1)
        with torch.no_grad():
            sa.cbias.fill_(50.0)
            sa.sbias.fill_(50.0)
        x = torch.arange(8.0, device=device).reshape(1, 8, 1, 1).expand(1, 8, 2, 2).contiguous()
        assert sa.to(device)(x)[0, :, 0, 0].tolist() == [0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]

    def test_loads_sa_net_style_state_dict(self, device):
        src = perturb_(ShuffleAttention(16, groups=2)).to(device)
        state = {k: v.clone() for k, v in src.state_dict().items()}
        dst = ShuffleAttention(16, groups=2).to(device)
        dst.load_state_dict(state)
        x = torch.randn(2, 16, 3, 3).to(device)
        torch.testing.assert_close(dst(x), src(x))

    @pytest.mark.parametrize("groups", [8, 2, 3])
    @pytest.mark.parametrize("memory_format", FORMATS, ids=["nchw", "channels_last"])
    def test_fused_matches_ref(self, groups, memory_format, device):
        sa = perturb_all_(ShuffleAttention(12 * groups, groups, impl="fused")).double().to(device)
        x = (
            torch.randn(2, 12 * groups, 5, 3, dtype=torch.float64)
            .to(device)
            .contiguous(memory_format=memory_format)
            .requires_grad_()
        )
        grad = torch.randn(2, 12 * groups, 5, 3, dtype=torch.float64).to(device)
        fused = sa(x)
        ref = ref_copy(sa)(x)
        torch.testing.assert_close(fused, ref)
        inputs = [x, *sa.parameters()]
        for a, b in zip(grads(fused, inputs, grad), grads(ref, inputs, grad)):
            torch.testing.assert_close(a, b)
        if groups % 2 == 0:
            assert fused.is_contiguous(memory_format=memory_format)


class TestSAConv(BaseTester):
    case = CASES["SAConv"]
    # A convolution needs its weights in the input's dtype, as nn.Conv2d always does.
    test_float32_module_keeps_bfloat16_features = None

    @pytest.mark.parametrize(
        "make", [lambda: SAConv(0, 16, groups=2), lambda: SAConv(4, 16, kernel_size=0, groups=2)]
    )
    def test_exception(self, make):
        with pytest.raises(ValueError, match="must be a positive int, got"):
            make()

    def test_exception_channels_not_divisible_by_two_groups(self):
        with pytest.raises(ValueError, match=r"out_channels \(20\) must be divisible by 2 \* groups \(16\)"):
            SAConv(4, 20)

    def test_exception_negative_padding(self):
        with pytest.raises(ValueError, match="padding must be None or a non-negative int, got -1"):
            SAConv(4, 16, padding=-1, groups=2)

    def test_exception_wrong_rank_and_channels(self, device):
        with pytest.raises(ValueError, match=r"4-D tensor .* got shape \(8, 4, 4\)"):
            SAConv(C, C, groups=2).to(device)(torch.randn(C, 4, 4).to(device))
        with pytest.raises(ValueError, match=r"= 8 .* got shape \(1, 6, 4, 4\)"):
            SAConv(C, C, groups=2).to(device)(torch.randn(1, 6, 4, 4).to(device))

    def test_cardinality_stride_and_padding(self, device):
        layer = SAConv(4, 16, kernel_size=3, stride=2, groups=2).to(device)
        assert layer(torch.randn(1, 4, 8, 8).to(device)).shape == (1, 16, 4, 4)
        layer = SAConv(4, 16, kernel_size=4, padding=0, groups=2).to(device)
        assert layer(torch.randn(1, 4, 7, 7).to(device)).shape == (1, 16, 4, 4)

    def test_is_conv_bn_lrelu_sa(self, device):
        layer = perturb_(SAConv(4, 16, groups=2)).eval().to(device)
        x = torch.randn(2, 4, 6, 6).to(device)
        conv = F.conv2d(x, layer.conv.weight, padding=1)
        bn = layer.norm
        normed = (conv - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps)
        normed = normed * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
        torch.testing.assert_close(layer(x), layer.attn(F.leaky_relu(normed, 0.01)), rtol=1e-5, atol=1e-5)
        assert layer.conv.bias is None

    def test_injectable_norm_and_activation(self, device):
        layer = SAConv(4, 16, groups=2, norm_layer=lambda c, **kw: nn.GroupNorm(4, c, **kw), act_layer=nn.GELU)
        assert isinstance(layer.norm, nn.GroupNorm) and isinstance(layer.act, nn.GELU)
        assert layer.to(device)(torch.randn(2, 4, 5, 5).to(device)).shape == (2, 16, 5, 5)

    def test_fused_keeps_channels_last(self, device):
        layer = SAConv(8, 16, impl="fused").to(device).to(memory_format=torch.channels_last)
        x = torch.randn(2, 8, 6, 6).to(device).contiguous(memory_format=torch.channels_last)
        out = layer(x)
        assert out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out, ref_copy(layer)(x))
