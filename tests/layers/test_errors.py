"""Bad input raises a clear ValueError/TypeError at the public boundary, naming expected and actual."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ratlip_layers import Affine, DFBlock, LSTMAffine, RATBlock, SAConv, ShuffleAttention, StateFromNoise

COND, C, HID = 6, 8, 5


def _x(b=2, c=C):
    return torch.randn(b, c, 4, 4)


CONDITIONED = [
    pytest.param(lambda: Affine(COND, C), id="Affine"),
    pytest.param(lambda: DFBlock(COND, C), id="DFBlock"),
    pytest.param(lambda: LSTMAffine(COND, C, HID), id="LSTMAffine"),
    pytest.param(lambda: RATBlock(COND, C, HID), id="RATBlock"),
]
RECURRENT = CONDITIONED[2:]


def _call(module, x, cond):
    """A conditioned layer's call; the recurrent ones take their (required) state, None here."""
    if isinstance(module, (LSTMAffine, RATBlock)):
        return module(x, cond, None)
    return module(x, cond)


@pytest.mark.parametrize("build", CONDITIONED)
class TestConditionedInputs:
    def test_wrong_rank_of_x(self, build):
        with pytest.raises(ValueError, match=r"x must be a 4-D tensor .* got shape \(2, 8, 4\)"):
            _call(build(), torch.randn(2, C, 4), torch.randn(2, COND))

    def test_wrong_rank_of_cond(self, build):
        with pytest.raises(ValueError, match=r"cond must be a 2-D tensor .* got shape \(2, 6, 1\)"):
            _call(build(), _x(), torch.randn(2, COND, 1))

    def test_wrong_channel_count(self, build):
        with pytest.raises(ValueError, match=r"channels C = 8 .* got shape \(2, 7, 4, 4\)"):
            _call(build(), _x(c=7), torch.randn(2, COND))

    def test_wrong_cond_dim(self, build):
        with pytest.raises(ValueError, match=r"cond_dim = 6 .* got shape \(2, 5\)"):
            _call(build(), _x(), torch.randn(2, 5))

    def test_mismatched_batch(self, build):
        with pytest.raises(ValueError, match=r"x has 2 samples .* cond has 3"):
            _call(build(), _x(), torch.randn(3, COND))

    def test_wrong_types(self, build):
        with pytest.raises(TypeError, match="x must be a torch.Tensor"):
            _call(build(), _x().numpy(), torch.randn(2, COND))
        with pytest.raises(TypeError, match="cond must be a floating-point tensor, got dtype torch.int64"):
            _call(build(), _x(), torch.ones(2, COND, dtype=torch.long))

    def test_device_mismatch(self, build):
        with pytest.raises(ValueError, match=r"cond is on meta but x is on cpu"):
            _call(build(), _x(), torch.randn(2, COND, device="meta"))


@pytest.mark.parametrize("build", RECURRENT)
class TestState:
    def test_state_of_wrong_shape(self, build):
        with pytest.raises(ValueError, match=r"state h must have shape \(batch, hidden_size\) = \(2, 5\), got \(2, 4\)"):
            build()(_x(), torch.randn(2, COND), (torch.randn(2, 4), torch.randn(2, 4)))

    def test_state_batch_mismatch(self, build):
        with pytest.raises(ValueError, match=r"= \(2, 5\), got \(3, 5\)"):
            build()(_x(), torch.randn(2, COND), (torch.zeros(3, HID), torch.zeros(3, HID)))

    def test_state_not_a_pair(self, build):
        with pytest.raises(TypeError, match="state must be None or a pair"):
            build()(_x(), torch.randn(2, COND), torch.zeros(2, HID))


class TestStateIsRequired:
    """Forgetting the state raises instead of silently restarting the memory from zeros."""

    @pytest.mark.parametrize("build", RECURRENT)
    def test_forward_without_state_names_it(self, build):
        with pytest.raises(TypeError, match=r"forward\(\) missing 1 required positional argument: 'state'"):
            build()(_x(), torch.randn(2, COND))

    def test_step_and_modulation_without_state_name_it(self):
        with pytest.raises(TypeError, match=r"step\(\) missing 1 required positional argument: 'state'"):
            LSTMAffine(COND, C, HID).step(torch.randn(2, COND))
        with pytest.raises(TypeError, match=r"modulation\(\) missing 1 required positional argument: 'state'"):
            RATBlock(COND, C, HID).modulation(torch.randn(2, COND))

    @pytest.mark.parametrize("build", RECURRENT)
    def test_explicit_none_still_means_zeros(self, build):
        module, x, cond = build(), _x(), torch.randn(2, COND)
        out_none, (h_none, c_none) = module(x, cond, None)
        out_zero, (h_zero, c_zero) = module(x, cond, (torch.zeros(2, HID), torch.zeros(2, HID)))
        assert torch.equal(out_none, out_zero) and torch.equal(h_none, h_zero) and torch.equal(c_none, c_zero)


class TestConstructorErrors:
    @pytest.mark.parametrize(
        "make",
        [
            lambda: Affine(0, C),
            lambda: DFBlock(COND, -1),
            lambda: LSTMAffine(COND, C, 0),
            lambda: RATBlock(COND, 0),
            lambda: ShuffleAttention(0),
            lambda: ShuffleAttention(16, groups=0),
            lambda: SAConv(0, 16, groups=2),
            lambda: SAConv(4, 16, kernel_size=0, groups=2),
            lambda: StateFromNoise(0, HID),
        ],
    )
    def test_non_positive_sizes(self, make):
        with pytest.raises(ValueError, match="must be a positive int, got"):
            make()

    def test_non_int_sizes(self):
        with pytest.raises(TypeError, match=r"num_features must be an int, got float \(8.0\)"):
            Affine(COND, 8.0)

    def test_channels_not_divisible_by_two_groups(self):
        with pytest.raises(ValueError, match=r"channels \(12\) must be divisible by 2 \* groups \(8\)"):
            ShuffleAttention(12, groups=4)
        with pytest.raises(ValueError, match=r"out_channels \(20\) must be divisible by 2 \* groups \(16\)"):
            SAConv(4, 20)

    def test_cell_that_does_not_fit(self):
        with pytest.raises(ValueError, match=r"nn.LSTMCell\(6, 5\), got nn.LSTMCell\(6, 7\)"):
            LSTMAffine(COND, C, HID, cell=nn.LSTMCell(COND, 7))
        with pytest.raises(TypeError, match="cell must be an nn.LSTMCell or None, got LSTM"):
            RATBlock(COND, C, HID, cell=nn.LSTM(COND, HID))

    def test_negative_padding(self):
        with pytest.raises(ValueError, match="padding must be None or a non-negative int, got -1"):
            SAConv(4, 16, padding=-1, groups=2)


class TestUnconditionedInputs:
    @pytest.mark.parametrize("make", [lambda: ShuffleAttention(C, 2), lambda: SAConv(C, C, groups=2)])
    def test_wrong_rank_and_channels(self, make):
        with pytest.raises(ValueError, match=r"4-D tensor .* got shape \(8, 4, 4\)"):
            make()(torch.randn(C, 4, 4))
        with pytest.raises(ValueError, match=r"= 8 .* got shape \(1, 6, 4, 4\)"):
            make()(torch.randn(1, 6, 4, 4))

    def test_single_pixel_map(self):
        with pytest.raises(ValueError, match=r"H \* W >= 2, got x of shape \(1, 8, 1, 1\)"):
            ShuffleAttention(C, 2)(torch.randn(1, C, 1, 1))

    def test_noise_of_wrong_size(self):
        with pytest.raises(ValueError, match=r"noise_dim = 10 .* got shape \(2, 9\)"):
            StateFromNoise(10, HID)(torch.randn(2, 9))
