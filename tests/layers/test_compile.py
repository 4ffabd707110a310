"""torch.compile(fullgraph=True) traces every layer without a graph break and matches eager."""

from __future__ import annotations

import pytest
import torch

from .cases import CASE_IDS, CASES, make_inputs, perturb_

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_compiled_matches_eager(case):
    torch._dynamo.reset()
    module = perturb_(case.build(8)).eval()
    x, cond, state = make_inputs(3, 8)
    state = state if case.recurrent else None
    compiled = torch.compile(module, fullgraph=True, dynamic=False)
    expected, expected_state = case.run(module, x, cond, state)
    got, got_state = case.run(compiled, x, cond, state)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    if expected_state is not None:
        torch.testing.assert_close(got_state[0], expected_state[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got_state[1], expected_state[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("RATBlock", "ShuffleAttention")], ids=lambda c: c.name)
def test_compiled_backward_matches_eager(case):
    torch._dynamo.reset()
    module = perturb_(case.build(8)).train()
    x, cond, state = make_inputs(3, 8)
    state = state if case.recurrent else None
    compiled = torch.compile(module, fullgraph=True, dynamic=False)
    case.run(module, x, cond, state)[0].square().sum().backward()
    eager_grads = {n: p.grad.clone() for n, p in module.named_parameters()}
    module.zero_grad()
    case.run(compiled, x, cond, state)[0].square().sum().backward()
    for name, p in module.named_parameters():
        torch.testing.assert_close(p.grad, eager_grads[name], rtol=1e-4, atol=1e-5, msg=name)
