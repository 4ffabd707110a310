"""``layers/modulation.py``: ``modulate_twice``'s ``impl="fused"`` against the reference, values and grads."""

from __future__ import annotations

import pytest
import torch

from ratlip_layers.layers import modulate_twice

from .cases import grads, modulation_params

FORMATS = [torch.contiguous_format, torch.channels_last]


class TestModulateTwice:
    @pytest.mark.parametrize("memory_format", FORMATS, ids=["nchw", "channels_last"])
    @pytest.mark.parametrize("slope", [0.2, 0.0])
    def test_fused_matches_ref(self, memory_format, slope, device):
        x = torch.randn(3, 4, 5, 6).to(device).contiguous(memory_format=memory_format).requires_grad_()
        params = modulation_params(3, 4, device=device)
        grad = torch.randn(3, 4, 5, 6).to(device)
        fused = modulate_twice(x, *params, slope, impl="fused")
        ref = modulate_twice(x, *params, slope, impl="ref")
        assert "ModulateTwice" in type(fused.grad_fn).__name__
        torch.testing.assert_close(fused, ref)
        for a, b in zip(grads(fused, [x, *params], grad), grads(ref, [x, *params], grad)):
            torch.testing.assert_close(a, b)
        assert fused.is_contiguous(memory_format=memory_format)

    def test_fused_matches_ref_on_large_maps(self, device):
        # 2 * 8 * 64 * 64 elements reach the one-kernel (batch-norm backward) reduction path.
        x = torch.randn(2, 8, 64, 64, dtype=torch.float64).to(device).requires_grad_()
        params = modulation_params(2, 8, torch.float64, device)
        grad = torch.randn(2, 8, 64, 64, dtype=torch.float64).to(device)
        fused = grads(modulate_twice(x, *params, impl="fused"), [x, *params], grad)
        ref = grads(modulate_twice(x, *params), [x, *params], grad)
        for a, b in zip(fused, ref):
            torch.testing.assert_close(a, b)

    @pytest.mark.parametrize("size", [3, 64], ids=["small", "one-kernel-reduction"])
    def test_fused_in_bfloat16_with_and_without_grad(self, size, device):
        x = torch.randn(2, 8, size, size, dtype=torch.bfloat16).to(device).requires_grad_()
        params = modulation_params(2, 8, device=device)
        with torch.no_grad():
            fused = modulate_twice(x, *params, impl="fused")
            ref = modulate_twice(x, *params)
        assert fused.dtype == torch.bfloat16
        torch.testing.assert_close(fused, ref, rtol=2e-2, atol=2e-2)
        grad = torch.randn(2, 8, size, size, dtype=torch.bfloat16).to(device)
        fused_grads = grads(modulate_twice(x, *params, impl="fused"), [x, *params], grad)
        ref_grads = grads(modulate_twice(x, *params), [x, *params], grad)
        assert fused_grads[0].dtype == torch.bfloat16 and fused_grads[1].dtype == torch.float32
        # Both round in bfloat16, in different places, so a pre-activation within rounding of zero
        # may take the other LeakyReLU branch: grad_x may differ at a handful of such elements.
        close = torch.isclose(fused_grads[0].float(), ref_grads[0].float(), rtol=3e-2, atol=3e-2)
        assert close.float().mean() > 0.999
        for a, b in zip(fused_grads[1:], ref_grads[1:]):
            torch.testing.assert_close(a, b, rtol=3e-2, atol=3e-2 * max(1.0, b.abs().max().item()))

    def test_negative_slope_computes_the_reference(self, device):
        x = torch.randn(2, 3, 4, 4).to(device).requires_grad_()
        params = modulation_params(2, 3, device=device)
        fused = modulate_twice(x, *params, -0.5, impl="fused")
        torch.testing.assert_close(fused, modulate_twice(x, *params, -0.5))
        assert "ModulateTwice" not in type(fused.grad_fn).__name__

    def test_fused_gradient_only_for_params(self, device):
        x = torch.randn(2, 3, 4, 4).to(device)
        params = modulation_params(2, 3, device=device)
        grad = torch.randn(2, 3, 4, 4).to(device)
        fused = grads(modulate_twice(x, *params, impl="fused"), params, grad)
        ref = grads(modulate_twice(x, *params), params, grad)
        for a, b in zip(fused, ref):
            torch.testing.assert_close(a, b)
