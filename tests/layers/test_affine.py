"""``layers/affine.py``: Affine and DFBlock compute SPEC §2's equations, written out independently here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ratlip_layers import Affine, DFBlock

from .cases import (
    C,
    CASES,
    COND_DIM,
    ConditionedTester,
    check_block_fused_matches_ref,
    lrelu,
    make_inputs,
    mlp_pair,
    perturb_,
)


class TestAffine(ConditionedTester):
    case = CASES["Affine"]

    def test_exception(self):
        with pytest.raises(ValueError, match="must be a positive int, got"):
            Affine(0, C)

    def test_exception_non_int_sizes(self):
        with pytest.raises(TypeError, match=r"num_features must be an int, got float \(8.0\)"):
            Affine(COND_DIM, 8.0)

    def test_matches_equation(self, device):
        layer = perturb_(Affine(COND_DIM, 8)).double().to(device)
        x, cond, _ = make_inputs(3, 8, dtype=torch.float64, device=device)
        gamma, beta = mlp_pair(layer.head, cond)
        torch.testing.assert_close(layer(x, cond), gamma[:, :, None, None] * x + beta[:, :, None, None])

    def test_identity_at_init(self, device):
        layer = Affine(COND_DIM, 8).to(device)
        x, cond, _ = make_inputs(3, 8, device=device)
        assert torch.equal(layer(x, cond), x)

    def test_repr_names_sizes(self):
        assert "cond_dim=6, num_features=8" in repr(Affine(COND_DIM, 8))


class TestDFBlock(ConditionedTester):
    case = CASES["DFBlock"]

    def test_exception(self):
        with pytest.raises(ValueError, match="must be a positive int, got"):
            DFBlock(COND_DIM, -1)

    def test_is_affine_lrelu_affine_lrelu(self, device):
        block = perturb_(DFBlock(COND_DIM, 8)).double().to(device)
        x, cond, _ = make_inputs(3, 8, dtype=torch.float64, device=device)
        expected = lrelu(block.affine2(lrelu(block.affine1(x, cond)), cond))
        torch.testing.assert_close(block(x, cond), expected)

    def test_at_init_is_double_lrelu(self, device):
        block = DFBlock(COND_DIM, 8, negative_slope=0.1).to(device)
        x, cond, _ = make_inputs(3, 8, device=device)
        assert torch.equal(block(x, cond), F.leaky_relu(F.leaky_relu(x, 0.1), 0.1))

    def test_fused_matches_ref_with_gradients(self, device):
        check_block_fused_matches_ref(DFBlock, device)
