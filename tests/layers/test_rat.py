"""``layers/rat.py``: LSTMAffine, RATBlock and StateFromNoise: SPEC §2's equations and state threading."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from ratlip_layers import LSTMAffine, RATBlock, StateFromNoise
from ratlip_layers.layers import modulate_twice

from .cases import (
    C,
    CASES,
    COND_DIM,
    HIDDEN,
    PER_SAMPLE_BATCH,
    PER_SAMPLE_CHANNELS,
    LayerCase,
    RecurrentTester,
    assert_batch_equals_per_sample,
    check_block_fused_matches_ref,
    check_compiled_backward_matches_eager,
    lrelu,
    make_inputs,
    mlp_pair,
    perturb_,
)


def _lstm_step(cell: nn.LSTMCell, y, h, c):
    gates = y @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c_t = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_t), c_t


class _BatchMixingAffine(nn.Module):
    """The reference code's defect, rebuilt: its LSTM reads the minibatch as one sequence."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(cond_dim, HIDDEN, batch_first=True)
        self.gamma = nn.Linear(HIDDEN, channels)
        self.beta = nn.Linear(HIDDEN, channels)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        _, (h, _) = self.lstm(cond.unsqueeze(0))  # (1, B, cond): one sequence of length B
        h = h[-1]  # one hidden state for the whole batch
        return self.gamma(h)[:, :, None, None] * x + self.beta(h)[:, :, None, None]


class TestLSTMAffine(RecurrentTester):
    case = CASES["LSTMAffine"]

    def test_exception(self):
        with pytest.raises(ValueError, match="must be a positive int, got"):
            LSTMAffine(COND_DIM, C, 0)

    def test_exception_cell_that_does_not_fit(self):
        with pytest.raises(ValueError, match=r"nn.LSTMCell\(6, 5\), got nn.LSTMCell\(6, 7\)"):
            LSTMAffine(COND_DIM, C, HIDDEN, cell=nn.LSTMCell(COND_DIM, 7))

    def test_exception_step_without_state_names_it(self, device):
        with pytest.raises(TypeError, match=r"step\(\) missing 1 required positional argument: 'state'"):
            LSTMAffine(COND_DIM, C, HIDDEN).to(device).step(torch.randn(2, COND_DIM).to(device))

    def test_matches_spec_equations(self, device):
        layer = perturb_(LSTMAffine(COND_DIM, 8, HIDDEN)).double().to(device)
        x, cond, (h0, c0) = make_inputs(3, 8, dtype=torch.float64, device=device)
        out, (h, c) = layer(x, cond, (h0, c0))
        h_ref, c_ref = _lstm_step(layer.cell, cond, h0, c0)
        gamma, beta = mlp_pair(layer.head, h_ref)
        torch.testing.assert_close(h, h_ref)
        torch.testing.assert_close(c, c_ref)
        torch.testing.assert_close(out, gamma[:, :, None, None] * x + beta[:, :, None, None])

    def test_none_state_means_zeros(self, device):
        layer = perturb_(LSTMAffine(COND_DIM, 8, HIDDEN)).to(device)
        x, cond, _ = make_inputs(3, 8, device=device)
        out_none, state_none = layer(x, cond, None)
        zeros = (torch.zeros(3, HIDDEN, device=device), torch.zeros(3, HIDDEN, device=device))
        out_zero, state_zero = layer(x, cond, zeros)
        torch.testing.assert_close(out_none, out_zero)
        torch.testing.assert_close(state_none[1], state_zero[1])

    def test_identity_at_init_and_state_advances(self, device):
        layer = LSTMAffine(COND_DIM, 8, HIDDEN).to(device)
        x, cond, state = make_inputs(3, 8, device=device)
        out, (h, c) = layer(x, cond, state)
        assert torch.equal(out, x)
        assert not torch.allclose(h, state[0]) and not torch.allclose(c, state[1])

    def test_shared_cell_receives_gradient_from_every_user(self, device):
        cell = nn.LSTMCell(COND_DIM, HIDDEN)
        a = perturb_(LSTMAffine(COND_DIM, 8, HIDDEN, cell=cell)).to(device)
        b = perturb_(LSTMAffine(COND_DIM, 8, HIDDEN, cell=cell)).to(device)
        x, cond, _ = make_inputs(2, 8, device=device)
        out_a, state = a(x, cond, None)
        out_a.sum().backward()
        grad_from_a = cell.weight_ih.grad.clone()
        out_b, _ = b(out_a.detach(), cond, (state[0].detach(), state[1].detach()))
        out_b.sum().backward()
        assert not torch.allclose(cell.weight_ih.grad, grad_from_a)

    def test_per_sample_check_catches_the_reference_defect(self, device):
        """The per-sample check is not vacuous: the reference's batch-mixing RAT layer fails it."""
        build = lambda c, d, h, g: _BatchMixingAffine(d, c)  # noqa: E731
        case = LayerCase("reference", build, conditioned=True, recurrent=False)
        module = case.build(PER_SAMPLE_CHANNELS).double().eval().to(device)
        x, cond, _ = make_inputs(PER_SAMPLE_BATCH, PER_SAMPLE_CHANNELS, dtype=torch.float64, device=device)
        with pytest.raises(AssertionError):
            assert_batch_equals_per_sample(case, module, x, cond, None)


class TestRATBlock(RecurrentTester):
    case = CASES["RATBlock"]

    def test_exception(self):
        with pytest.raises(ValueError, match="must be a positive int, got"):
            RATBlock(COND_DIM, 0)

    def test_exception_cell_of_wrong_type(self):
        with pytest.raises(TypeError, match="cell must be an nn.LSTMCell or None, got LSTM"):
            RATBlock(COND_DIM, C, HIDDEN, cell=nn.LSTM(COND_DIM, HIDDEN))

    def test_exception_modulation_without_state_names_it(self, device):
        with pytest.raises(TypeError, match=r"modulation\(\) missing 1 required positional argument: 'state'"):
            RATBlock(COND_DIM, C, HIDDEN).to(device).modulation(torch.randn(2, COND_DIM).to(device))

    @pytest.mark.slow
    def test_dynamo_backward(self, device):
        check_compiled_backward_matches_eager(self.case, device)

    def test_fused_matches_ref_with_gradients(self, device):
        check_block_fused_matches_ref(RATBlock, device)

    def test_state_threads_from_first_affine_to_second(self, device):
        block = perturb_(RATBlock(COND_DIM, 8, HIDDEN)).double().to(device)
        x, cond, state = make_inputs(3, 8, dtype=torch.float64, device=device)
        h1, s1 = block.affine1(x, cond, state)
        h2, s2 = block.affine2(lrelu(h1), cond, s1)
        out, s_out = block(x, cond, state)
        torch.testing.assert_close(out, lrelu(h2))
        torch.testing.assert_close(s_out[0], s2[0])
        torch.testing.assert_close(s_out[1], s2[1])

    def test_incoming_state_changes_next_block(self, device):
        first = perturb_(RATBlock(COND_DIM, 8, HIDDEN)).to(device)
        second = perturb_(RATBlock(COND_DIM, 8, HIDDEN)).to(device)
        x, cond, _ = make_inputs(3, 8, device=device)
        h, state = first(x, cond, None)
        with_state, _ = second(h, cond, state)
        without_state, _ = second(h, cond, None)
        assert not torch.allclose(with_state, without_state)

    def test_modulation_then_modulate_twice_equals_forward(self, device):
        block = perturb_(RATBlock(COND_DIM, 8, HIDDEN)).to(device)
        x, cond, state = make_inputs(3, 8, device=device)
        params, new_state = block.modulation(cond, state)
        out, fwd_state = block(x, cond, state)
        torch.testing.assert_close(modulate_twice(x, *params, block.negative_slope), out)
        torch.testing.assert_close(new_state[0], fwd_state[0])

    def test_shared_cell_shares_parameters(self, device):
        cell = nn.LSTMCell(COND_DIM, HIDDEN)
        shared = RATBlock(COND_DIM, 8, HIDDEN, cell=cell).to(device)
        owned = RATBlock(COND_DIM, 8, HIDDEN).to(device)
        assert shared.affine1.cell is cell and shared.affine2.cell is cell
        assert owned.affine1.cell is not owned.affine2.cell
        cell_size = sum(p.numel() for p in cell.parameters())
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        assert count(owned) - count(shared) == cell_size
        with torch.no_grad():
            cell.bias_ih.add_(1.0)  # one edit is seen by both affines
        assert torch.equal(shared.affine1.cell.bias_ih, shared.affine2.cell.bias_ih)

    # The zero-``weight_hh`` case documented on LSTMAffine and RATBlock, and its fix.
    def _first_cell_grads(self, start, device):
        block = perturb_(RATBlock(COND_DIM, 8, HIDDEN)).to(device)  # one cell per affine (the default)
        init = StateFromNoise(10, HIDDEN).to(device)
        x, cond, _ = make_inputs(4, 8, device=device)
        state = init(torch.randn(4, 10).to(device)) if start == "noise" else None
        out, _ = block(x, cond, state)
        out.square().sum().backward()
        return block.affine1.cell, block.affine2.cell

    def test_zero_start_never_trains_the_first_weight_hh(self, device):
        first, second = self._first_cell_grads("zeros", device)
        assert first.weight_hh.grad is not None and torch.count_nonzero(first.weight_hh.grad) == 0
        assert torch.count_nonzero(first.weight_ih.grad) > 0  # the cell itself does learn
        assert torch.count_nonzero(second.weight_hh.grad) > 0  # the second sees h_1 != 0

    def test_state_from_noise_trains_the_first_weight_hh(self, device):
        first, _ = self._first_cell_grads("noise", device)
        assert torch.count_nonzero(first.weight_hh.grad) > 0

    def test_a_shared_cell_trains_the_first_weight_hh(self, device):
        cell = nn.LSTMCell(COND_DIM, HIDDEN)
        block = perturb_(RATBlock(COND_DIM, 8, HIDDEN, cell=cell)).to(device)
        x, cond, _ = make_inputs(4, 8, device=device)
        out, _ = block(x, cond, None)
        out.square().sum().backward()
        assert torch.count_nonzero(cell.weight_hh.grad) > 0


class TestStateFromNoise:
    def test_smoke(self, device, dtype):
        init = StateFromNoise(10, HIDDEN).to(device, dtype)
        h, c = init(torch.randn(4, 10, dtype=dtype).to(device))
        assert h.device == c.device and h.device.type == device.type and h.dtype == c.dtype == dtype
        assert repr(init).startswith("StateFromNoise(")

    def test_exception(self):
        with pytest.raises(ValueError, match="must be a positive int, got"):
            StateFromNoise(0, HIDDEN)

    def test_exception_noise_of_wrong_size(self, device):
        with pytest.raises(ValueError, match=r"noise_dim = 10 .* got shape \(2, 9\)"):
            StateFromNoise(10, HIDDEN).to(device)(torch.randn(2, 9).to(device))

    def test_cardinality(self, device):
        h, c = StateFromNoise(10, HIDDEN).to(device)(torch.randn(3, 10).to(device))
        assert h.shape == c.shape == (3, HIDDEN)

    def test_gradcheck(self, device):
        init = StateFromNoise(10, HIDDEN).double().to(device)
        z = torch.randn(2, 10, dtype=torch.float64).to(device).requires_grad_()
        assert torch.autograd.gradcheck(lambda z: init(z), (z,))

    def test_is_two_linear_maps_of_noise(self, device):
        init = StateFromNoise(10, HIDDEN).to(device)
        z = torch.randn(4, 10).to(device)
        h, c = init(z)
        w, b = init.proj.weight, init.proj.bias
        torch.testing.assert_close(h, z @ w[:HIDDEN].T + b[:HIDDEN])
        torch.testing.assert_close(c, z @ w[HIDDEN:].T + b[HIDDEN:])

    def test_feeds_a_rat_block(self, device):
        init, block = StateFromNoise(10, HIDDEN).to(device), RATBlock(COND_DIM, 8, HIDDEN).to(device)
        x, cond, _ = make_inputs(4, 8, device=device)
        out, (h, c) = block(x, cond, init(torch.randn(4, 10).to(device)))
        assert out.shape == x.shape and h.shape == c.shape == (4, HIDDEN)
