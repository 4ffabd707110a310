"""Gradient flow through every layer: finite everywhere, non-zero once perturbed, gradcheck in float64."""

from __future__ import annotations

import pytest
import torch

from .cases import CASE_IDS, CASES, make_inputs, perturb_


def _loss(case, module, x, cond, state):
    out, new_state = case.run(module, x, cond, state)
    # Weighted sum so that no gradient cancels by symmetry (e.g. through the group norm's mean).
    loss = (out * torch.linspace(-1.0, 2.0, out.numel(), dtype=out.dtype).view_as(out)).sum()
    if new_state is not None:
        loss = loss + new_state[0].pow(2).sum() + new_state[1].sum()
    return loss


def _inputs(case, dtype=torch.float32, batch=3, channels=8):
    x, cond, state = make_inputs(batch, channels, dtype=dtype)
    x.requires_grad_(True)
    cond.requires_grad_(case.conditioned)
    if not case.recurrent:
        return x, cond, None
    state = (state[0].requires_grad_(True), state[1].requires_grad_(True))
    return x, cond, state


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
class TestGradients:
    def test_finite_gradients_at_init(self, case):
        module = case.build(8)
        x, cond, state = _inputs(case)
        _loss(case, module, x, cond, state).backward()
        for name, p in module.named_parameters():
            assert p.grad is not None, f"{name} received no gradient"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"

    def test_every_parameter_and_input_gets_nonzero_gradient_once_perturbed(self, case):
        module = perturb_(case.build(8))
        x, cond, state = _inputs(case)
        _loss(case, module, x, cond, state).backward()
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} has a zero gradient"
        assert x.grad.abs().sum() > 0
        if case.conditioned:
            assert cond.grad.abs().sum() > 0
        if case.recurrent:
            assert state[0].grad.abs().sum() > 0 and state[1].grad.abs().sum() > 0

    def test_gradcheck_float64(self, case):
        module = perturb_(case.build(4)).double().eval()
        x, cond, state = _inputs(case, torch.float64, batch=2, channels=4)
        x = x.detach()[:, :, :3, :3].requires_grad_(True)
        if case.recurrent:
            fn = lambda x, c, h, s: _loss(case, module, x, c, (h, s))  # noqa: E731
            args = (x, cond, *state)
        elif case.conditioned:
            fn = lambda x, c: _loss(case, module, x, c, None)  # noqa: E731
            args = (x, cond)
        else:
            fn = lambda x: _loss(case, module, x, None, None)  # noqa: E731
            args = (x,)
        assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5)
