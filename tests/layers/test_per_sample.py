"""Per-sample conditioning: sample i's output depends only on sample i's inputs (SPEC §2)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from .cases import CASE_IDS, CASES, COND_DIM, HIDDEN, LayerCase, make_inputs, perturb_

BATCH, CHANNELS = 5, 8


def _setup(case: LayerCase):
    module = perturb_(case.build(CHANNELS)).double().eval()
    x, cond, state = make_inputs(BATCH, CHANNELS, dtype=torch.float64)
    return module, x, cond, (state if case.recurrent else None)


def _select(state, index):
    return None if state is None else (state[0][index], state[1][index])


def assert_batch_equals_per_sample(case: LayerCase, module: nn.Module, x: Tensor, cond: Tensor, state) -> None:
    out, new_state = case.run(module, x, cond, state)
    for i in range(x.shape[0]):
        alone, alone_state = case.run(module, x[i : i + 1], cond[i : i + 1], _select(state, slice(i, i + 1)))
        torch.testing.assert_close(out[i : i + 1], alone, rtol=0, atol=1e-12)
        if new_state is not None:
            torch.testing.assert_close(new_state[0][i : i + 1], alone_state[0], rtol=0, atol=1e-12)
            torch.testing.assert_close(new_state[1][i : i + 1], alone_state[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
class TestPerSample:
    def test_batch_equals_each_sample_alone(self, case):
        assert_batch_equals_per_sample(case, *_setup(case))

    def test_permutation_equivariant(self, case):
        module, x, cond, state = _setup(case)
        perm = torch.randperm(BATCH)
        out, new_state = case.run(module, x, cond, state)
        out_p, new_state_p = case.run(module, x[perm], cond[perm], _select(state, perm))
        torch.testing.assert_close(out_p, out[perm], rtol=0, atol=1e-12)
        if new_state is not None:
            torch.testing.assert_close(new_state_p[0], new_state[0][perm], rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in CASES if c.conditioned], ids=lambda c: c.name)
def test_other_samples_condition_does_not_leak(case):
    module, x, cond, state = _setup(case)
    out, _ = case.run(module, x, cond, state)
    cond2 = cond.clone()
    cond2[3] = torch.randn(COND_DIM, dtype=cond.dtype) * 3
    out2, _ = case.run(module, x, cond2, state)
    keep = [0, 1, 2, 4]
    torch.testing.assert_close(out2[keep], out[keep], rtol=0, atol=0)
    assert not torch.allclose(out2[3], out[3]), "changing sample 3's condition must change sample 3"


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


def test_the_check_catches_the_reference_defect():
    """The per-sample check is not vacuous: the reference's batch-mixing RAT layer fails it."""
    case = LayerCase("reference", lambda c: _BatchMixingAffine(COND_DIM, c), conditioned=True, recurrent=False)
    module = case.build(CHANNELS).double().eval()
    x, cond, _ = make_inputs(BATCH, CHANNELS, dtype=torch.float64)
    with pytest.raises(AssertionError):
        assert_batch_equals_per_sample(case, module, x, cond, None)
