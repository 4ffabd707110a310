"""Triton kernels for the fused DF/RAT block body ``lrelu(g2 * lrelu(g1 * x + b1) + b2)``, in float32.

They take NCHW-contiguous tensors, a row of ``H * W`` values per (sample, channel), and ``params``,
the float32 ``(4, B, C)`` stack of ``(g1, b1, g2, b2)``. The backward recomputes the intermediate and
reduces each row's parameter gradients in registers: no atomics, deterministic.
"""

from __future__ import annotations

import contextlib
import importlib.util

import torch
from torch import Tensor

__all__ = ["HAS_TRITON", "modulate_twice_backward", "modulate_twice_forward"]

HAS_TRITON = importlib.util.find_spec("triton") is not None
"""Whether Triton is importable (it ships with CUDA builds of PyTorch on Linux)."""

_BLOCK = 1024

if HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def _row_params(params_ptr, row, rows):
        # Row ``row``'s (g1, b1, g2, b2) out of the (4, rows) parameter stack.
        return (
            tl.load(params_ptr + row),
            tl.load(params_ptr + rows + row),
            tl.load(params_ptr + 2 * rows + row),
            tl.load(params_ptr + 3 * rows + row),
        )

    @triton.jit
    def _forward_kernel(x_ptr, out_ptr, params_ptr, hw, slope, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        gamma1, beta1, gamma2, beta2 = _row_params(params_ptr, row, tl.num_programs(0))
        offsets = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < hw
        base = row.to(tl.int64) * hw
        x = tl.load(x_ptr + base + offsets, mask=mask).to(tl.float32)
        y = gamma1 * x + beta1
        y = tl.where(y > 0, y, y * slope)
        y = gamma2 * y + beta2
        y = tl.where(y > 0, y, y * slope)
        tl.store(out_ptr + base + offsets, y.to(out_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _backward_kernel(x_ptr, grad_ptr, dx_ptr, params_ptr, dparams_ptr, hw, slope, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        rows = tl.num_programs(0)
        gamma1, beta1, gamma2, beta2 = _row_params(params_ptr, row, rows)
        base = row.to(tl.int64) * hw
        acc_gamma1 = tl.zeros([BLOCK], dtype=tl.float32)
        acc_beta1 = tl.zeros([BLOCK], dtype=tl.float32)
        acc_gamma2 = tl.zeros([BLOCK], dtype=tl.float32)
        acc_beta2 = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, hw, BLOCK):
            offsets = start + tl.arange(0, BLOCK)
            mask = offsets < hw
            x = tl.load(x_ptr + base + offsets, mask=mask, other=0.0).to(tl.float32)
            grad = tl.load(grad_ptr + base + offsets, mask=mask, other=0.0).to(tl.float32)
            y1 = gamma1 * x + beta1
            a1 = tl.where(y1 > 0, y1, y1 * slope)
            y2 = gamma2 * a1 + beta2
            d2 = tl.where(y2 > 0, grad, grad * slope)
            acc_gamma2 += d2 * a1
            acc_beta2 += d2
            d1 = d2 * gamma2
            d1 = tl.where(y1 > 0, d1, d1 * slope)
            acc_gamma1 += d1 * x
            acc_beta1 += d1
            tl.store(dx_ptr + base + offsets, (d1 * gamma1).to(dx_ptr.dtype.element_ty), mask=mask)
        tl.store(dparams_ptr + row, tl.sum(acc_gamma1, axis=0))
        tl.store(dparams_ptr + rows + row, tl.sum(acc_beta1, axis=0))
        tl.store(dparams_ptr + 2 * rows + row, tl.sum(acc_gamma2, axis=0))
        tl.store(dparams_ptr + 3 * rows + row, tl.sum(acc_beta2, axis=0))


def _on_device(x: Tensor) -> contextlib.AbstractContextManager:
    """Launch on ``x``'s GPU, not the current one (none for the CPU interpreter)."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def modulate_twice_forward(x: Tensor, params: Tensor, slope: float) -> Tensor:
    """Fused forward of ``x`` with ``params``; same shape and dtype as ``x``."""
    batch, channels, height, width = x.shape
    out = torch.empty_like(x)
    grid = (batch * channels, triton.cdiv(height * width, _BLOCK))
    with _on_device(x):
        _forward_kernel[grid](x, out, params, height * width, slope, BLOCK=_BLOCK)
    return out


def modulate_twice_backward(x: Tensor, grad: Tensor, params: Tensor, slope: float) -> tuple[Tensor, Tensor]:
    """Fused backward; returns ``(grad_x, grad_params)``, ``grad_params`` float32 like ``params``."""
    batch, channels, height, width = x.shape
    grad_x = torch.empty_like(x)
    grad_params = torch.empty_like(params)
    with _on_device(x):
        _backward_kernel[(batch * channels,)](
            x, grad.contiguous(), grad_x, params, grad_params, height * width, slope, BLOCK=_BLOCK
        )
    return grad_x, grad_params
