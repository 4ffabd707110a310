"""``layers/fused.py``: the fused modulation node's gradients, its one-kernel reduction, and its Triton
kernels under the interpreter (``tests/test_devices.py`` checks them on a GPU under ``--device cuda``)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from ratlip_layers.layers.fused import _scale_shift_backward, fused_modulate_twice

from .cases import modulation_params


class TestFusedModulateTwice:
    def test_gradcheck(self, device):
        x = torch.randn(2, 3, 4, 5, dtype=torch.float64).to(device).requires_grad_()
        params = modulation_params(2, 3, torch.float64, device)

        def fn(x, *params):
            return fused_modulate_twice(x, *params, 0.2, use_triton=False)

        assert torch.autograd.gradcheck(fn, (x, *params))

    @pytest.mark.parametrize(
        ("dtype", "tol"), [(torch.float64, 1e-9), (torch.float32, 1e-4), (torch.bfloat16, 1e-2)]
    )
    def test_one_kernel_reduction_matches_the_explicit_gradients(self, dtype, tol, device):
        grad = torch.randn(2, 8, 64, 64, dtype=dtype).to(device)
        x = torch.randn(2, 8, 64, 64, dtype=dtype).to(device)
        gamma = torch.randn(2, 8, 1, 1, dtype=dtype).to(device)
        got = _scale_shift_backward(grad, x, gamma)
        grad64, x64 = grad.double(), x.double()
        want = (grad64 * gamma.double(), (grad64 * x64).sum((2, 3)), grad64.sum((2, 3)))
        assert got[0].dtype == dtype
        for a, b in zip(got, want):
            torch.testing.assert_close(a.double(), b, rtol=tol, atol=tol * 64)

    @pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="Triton is not installed")
    def test_triton_kernels_match_torch_under_the_interpreter(self, device):
        if device.type == "cuda":  # the interpreter is the CPU run's stand-in for the compiled kernels
            pytest.skip("--device cuda: the compiled kernels are checked in tests/test_devices.py")
        # TRITON_INTERPRET must be set before Triton is imported, hence a fresh interpreter. Shapes
        # cover one partial block and a row longer than the kernels' 1024-wide block.
        script = textwrap.dedent(
            """
            import torch
            from ratlip_layers.layers.fused import fused_modulate_twice
            torch.manual_seed(0)
            for shape, dtype, tol in [((2, 3, 5, 7), torch.float32, 1e-5), ((1, 2, 33, 33), torch.float32, 1e-4),
                                      ((2, 2, 4, 4), torch.bfloat16, 2e-2)]:
                x = torch.randn(shape, dtype=dtype, requires_grad=True)
                ps = [torch.randn(shape[0], shape[1], requires_grad=True) for _ in range(4)]
                grad = torch.randn(shape, dtype=dtype)
                outs = [fused_modulate_twice(x, *ps, 0.2, use_triton=t) for t in (True, False)]
                torch.testing.assert_close(outs[0], outs[1], rtol=tol, atol=tol)
                grads = [torch.autograd.grad(o, [x, *ps], grad) for o in outs]
                for a, b in zip(*grads):
                    assert a.dtype == b.dtype
                    torch.testing.assert_close(a, b, rtol=tol, atol=tol * shape[2] * shape[3])
            print("ok")
            """
        )
        env = {**os.environ, "TRITON_INTERPRET": "1"}
        result = subprocess.run(
            [sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip().endswith("ok")
