"""Each layer computes SPEC §2's equations, written out independently here."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ratlip_layers import Affine, DFBlock, LSTMAffine, RATBlock, SAConv, ShuffleAttention, StateFromNoise
from ratlip_layers.layers import modulate_twice
from ratlip_layers.layers.modulation import ModulationHead

from .cases import COND_DIM, HIDDEN, make_inputs, perturb_


def _mlp_pair(head: ModulationHead, v: torch.Tensor):
    """gamma = W2g relu(W1g v + b1g) + b2g, beta likewise, from the packed parameters."""
    c = head.num_features
    w1, b1 = head.fc1.weight, head.fc1.bias
    gamma = F.relu(v @ w1[:c].T + b1[:c]) @ head.weight2[0].T + head.bias2[0]
    beta = F.relu(v @ w1[c:].T + b1[c:]) @ head.weight2[1].T + head.bias2[1]
    return gamma, beta


def _lstm_step(cell: nn.LSTMCell, y, h, c):
    gates = y @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c_t = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_t), c_t


def _lrelu(t, slope=0.2):
    return torch.where(t >= 0, t, slope * t)


class TestAffine:
    def test_matches_equation(self):
        layer = perturb_(Affine(COND_DIM, 8)).double()
        x, cond, _ = make_inputs(3, 8, dtype=torch.float64)
        gamma, beta = _mlp_pair(layer.head, cond)
        torch.testing.assert_close(layer(x, cond), gamma[:, :, None, None] * x + beta[:, :, None, None])

    def test_identity_at_init(self):
        layer = Affine(COND_DIM, 8)
        x, cond, _ = make_inputs(3, 8)
        assert torch.equal(layer(x, cond), x)

    def test_dfblock_is_affine_lrelu_affine_lrelu(self):
        block = perturb_(DFBlock(COND_DIM, 8)).double()
        x, cond, _ = make_inputs(3, 8, dtype=torch.float64)
        expected = _lrelu(block.affine2(_lrelu(block.affine1(x, cond)), cond))
        torch.testing.assert_close(block(x, cond), expected)

    def test_dfblock_at_init_is_double_lrelu(self):
        block = DFBlock(COND_DIM, 8, negative_slope=0.1)
        x, cond, _ = make_inputs(3, 8)
        assert torch.equal(block(x, cond), F.leaky_relu(F.leaky_relu(x, 0.1), 0.1))

    def test_repr_names_sizes(self):
        assert "cond_dim=6, num_features=8" in repr(Affine(COND_DIM, 8))


class TestLSTMAffine:
    def test_matches_spec_equations(self):
        layer = perturb_(LSTMAffine(COND_DIM, 8, HIDDEN)).double()
        x, cond, (h0, c0) = make_inputs(3, 8, dtype=torch.float64)
        out, (h, c) = layer(x, cond, (h0, c0))
        h_ref, c_ref = _lstm_step(layer.cell, cond, h0, c0)
        gamma, beta = _mlp_pair(layer.head, h_ref)
        torch.testing.assert_close(h, h_ref)
        torch.testing.assert_close(c, c_ref)
        torch.testing.assert_close(out, gamma[:, :, None, None] * x + beta[:, :, None, None])

    def test_none_state_means_zeros(self):
        layer = perturb_(LSTMAffine(COND_DIM, 8, HIDDEN))
        x, cond, _ = make_inputs(3, 8)
        out_none, state_none = layer(x, cond, None)
        out_zero, state_zero = layer(x, cond, (torch.zeros(3, HIDDEN), torch.zeros(3, HIDDEN)))
        torch.testing.assert_close(out_none, out_zero)
        torch.testing.assert_close(state_none[1], state_zero[1])

    def test_identity_at_init_and_state_advances(self):
        layer = LSTMAffine(COND_DIM, 8, HIDDEN)
        x, cond, state = make_inputs(3, 8)
        out, (h, c) = layer(x, cond, state)
        assert torch.equal(out, x)
        assert not torch.allclose(h, state[0]) and not torch.allclose(c, state[1])


class TestRATBlock:
    def test_state_threads_from_first_affine_to_second(self):
        block = perturb_(RATBlock(COND_DIM, 8, HIDDEN)).double()
        x, cond, state = make_inputs(3, 8, dtype=torch.float64)
        h1, s1 = block.affine1(x, cond, state)
        h2, s2 = block.affine2(_lrelu(h1), cond, s1)
        out, s_out = block(x, cond, state)
        torch.testing.assert_close(out, _lrelu(h2))
        torch.testing.assert_close(s_out[0], s2[0])
        torch.testing.assert_close(s_out[1], s2[1])

    def test_incoming_state_changes_next_block(self):
        first = perturb_(RATBlock(COND_DIM, 8, HIDDEN))
        second = perturb_(RATBlock(COND_DIM, 8, HIDDEN))
        x, cond, _ = make_inputs(3, 8)
        h, state = first(x, cond, None)
        with_state, _ = second(h, cond, state)
        without_state, _ = second(h, cond, None)
        assert not torch.allclose(with_state, without_state)

    def test_modulation_then_modulate_twice_equals_forward(self):
        block = perturb_(RATBlock(COND_DIM, 8, HIDDEN))
        x, cond, state = make_inputs(3, 8)
        params, new_state = block.modulation(cond, state)
        out, fwd_state = block(x, cond, state)
        torch.testing.assert_close(modulate_twice(x, *params, block.negative_slope), out)
        torch.testing.assert_close(new_state[0], fwd_state[0])


class TestSharedCell:
    def test_shared_cell_shares_parameters(self):
        cell = nn.LSTMCell(COND_DIM, HIDDEN)
        shared = RATBlock(COND_DIM, 8, HIDDEN, cell=cell)
        owned = RATBlock(COND_DIM, 8, HIDDEN)
        assert shared.affine1.cell is cell and shared.affine2.cell is cell
        assert owned.affine1.cell is not owned.affine2.cell
        cell_size = sum(p.numel() for p in cell.parameters())
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        assert count(owned) - count(shared) == cell_size
        with torch.no_grad():
            cell.bias_ih.add_(1.0)  # one edit is seen by both affines
        assert torch.equal(shared.affine1.cell.bias_ih, shared.affine2.cell.bias_ih)

    def test_shared_cell_receives_gradient_from_every_user(self):
        cell = nn.LSTMCell(COND_DIM, HIDDEN)
        a = perturb_(LSTMAffine(COND_DIM, 8, HIDDEN, cell=cell))
        b = perturb_(LSTMAffine(COND_DIM, 8, HIDDEN, cell=cell))
        x, cond, _ = make_inputs(2, 8)
        out_a, state = a(x, cond, None)
        out_a.sum().backward()
        grad_from_a = cell.weight_ih.grad.clone()
        out_b, _ = b(out_a.detach(), cond, (state[0].detach(), state[1].detach()))
        out_b.sum().backward()
        assert not torch.allclose(cell.weight_ih.grad, grad_from_a)


class TestStateFromNoise:
    def test_is_two_linear_maps_of_noise(self):
        init = StateFromNoise(10, HIDDEN)
        z = torch.randn(4, 10)
        h, c = init(z)
        w, b = init.proj.weight, init.proj.bias
        torch.testing.assert_close(h, z @ w[:HIDDEN].T + b[:HIDDEN])
        torch.testing.assert_close(c, z @ w[HIDDEN:].T + b[HIDDEN:])

    def test_feeds_a_rat_block(self):
        init, block = StateFromNoise(10, HIDDEN), RATBlock(COND_DIM, 8, HIDDEN)
        x, cond, _ = make_inputs(4, 8)
        out, (h, c) = block(x, cond, init(torch.randn(4, 10)))
        assert out.shape == x.shape and h.shape == c.shape == (4, HIDDEN)


class TestFirstCellWeightHH:
    """The zero-``weight_hh`` case documented on LSTMAffine and RATBlock, and its fix."""

    def _grads(self, start):
        block = perturb_(RATBlock(COND_DIM, 8, HIDDEN))  # one cell per affine (the default)
        init = StateFromNoise(10, HIDDEN)
        x, cond, _ = make_inputs(4, 8)
        state = init(torch.randn(4, 10)) if start == "noise" else None
        out, _ = block(x, cond, state)
        out.square().sum().backward()
        return block.affine1.cell, block.affine2.cell

    def test_zero_start_never_trains_the_first_weight_hh(self):
        first, second = self._grads("zeros")
        assert first.weight_hh.grad is not None and torch.count_nonzero(first.weight_hh.grad) == 0
        assert torch.count_nonzero(first.weight_ih.grad) > 0  # the cell itself does learn
        assert torch.count_nonzero(second.weight_hh.grad) > 0  # the second sees h_1 != 0

    def test_state_from_noise_trains_it(self):
        first, _ = self._grads("noise")
        assert torch.count_nonzero(first.weight_hh.grad) > 0

    def test_a_shared_cell_trains_it(self):
        cell = nn.LSTMCell(COND_DIM, HIDDEN)
        block = perturb_(RATBlock(COND_DIM, 8, HIDDEN, cell=cell))
        x, cond, _ = make_inputs(4, 8)
        out, _ = block(x, cond, None)
        out.square().sum().backward()
        assert torch.count_nonzero(cell.weight_hh.grad) > 0


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


class TestShuffleAttention:
    def test_matches_sa_net(self):
        sa = perturb_(ShuffleAttention(16, groups=2)).double()
        x = torch.randn(3, 16, 5, 4, dtype=torch.float64)
        torch.testing.assert_close(sa(x), _shuffle_attention_reference(sa, x))

    def test_init_values_and_names(self):
        sa = ShuffleAttention(32, groups=4)
        names = dict(sa.named_parameters())
        assert set(names) == {"cweight", "cbias", "sweight", "sbias", "gn.weight", "gn.bias"}
        assert names["cweight"].shape == (1, 4, 1, 1)
        assert (sa.cweight == 0).all() and (sa.cbias == 1).all() and (sa.sweight == 0).all() and (sa.sbias == 1).all()
        assert sa.gn.num_groups == 4 and sa.gn.num_channels == 4

    def test_channel_shuffle_interleaves_halves(self):
        # With all gates saturated open (bias large), attention is the identity up to the shuffle.
        sa = ShuffleAttention(8, groups=1)
        with torch.no_grad():
            sa.cbias.fill_(50.0)
            sa.sbias.fill_(50.0)
        x = torch.arange(8.0).reshape(1, 8, 1, 1).expand(1, 8, 2, 2).contiguous()
        assert sa(x)[0, :, 0, 0].tolist() == [0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]

    def test_loads_sa_net_style_state_dict(self):
        src = perturb_(ShuffleAttention(16, groups=2))
        state = {k: v.clone() for k, v in src.state_dict().items()}
        dst = ShuffleAttention(16, groups=2)
        dst.load_state_dict(state)
        x = torch.randn(2, 16, 3, 3)
        torch.testing.assert_close(dst(x), src(x))


class TestSAConv:
    def test_is_conv_bn_lrelu_sa(self):
        layer = perturb_(SAConv(4, 16, groups=2)).eval()
        x = torch.randn(2, 4, 6, 6)
        conv = F.conv2d(x, layer.conv.weight, padding=1)
        bn = layer.norm
        normed = (conv - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps)
        normed = normed * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
        torch.testing.assert_close(layer(x), layer.attn(F.leaky_relu(normed, 0.01)), rtol=1e-5, atol=1e-5)
        assert layer.conv.bias is None

    def test_stride_and_padding(self):
        assert SAConv(4, 16, kernel_size=3, stride=2, groups=2)(torch.randn(1, 4, 8, 8)).shape == (1, 16, 4, 4)
        assert SAConv(4, 16, kernel_size=4, padding=0, groups=2)(torch.randn(1, 4, 7, 7)).shape == (1, 16, 4, 4)

    def test_injectable_norm_and_activation(self):
        layer = SAConv(4, 16, groups=2, norm_layer=lambda c, **kw: nn.GroupNorm(4, c, **kw), act_layer=nn.GELU)
        assert isinstance(layer.norm, nn.GroupNorm) and isinstance(layer.act, nn.GELU)
        assert layer(torch.randn(2, 4, 5, 5)).shape == (2, 16, 5, 5)
