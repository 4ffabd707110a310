"""``impl="fused"`` of :func:`~ratlip_layers.layers.modulate_twice`: the block body as one autograd
node with a hand-written backward, storing ``x`` and one intermediate (none with Triton) where
autograd's eight nodes store three. In place on CPU after the first op; one Triton kernel each way
for an NCHW-contiguous CUDA ``x``. ``benchmarks/results/cpu.md`` measures it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._triton_modulation import HAS_TRITON, modulate_twice_backward, modulate_twice_forward

__all__ = ["fused_modulate_twice"]

# From this many elements on, one batch-norm backward kernel beats four passes that write a full-size
# ``grad * x`` first (2-3x on CPU at G-block sizes); below it, its set-up costs more than it saves.
_FUSED_REDUCTION_MIN_ELEMENTS = 1 << 16


def is_channels_last(x: Tensor) -> bool:
    """Whether ``x`` is a 4-D channels_last tensor that is not also NCHW-contiguous."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def scale_shift(x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    """``gamma * x + beta`` with ``(.., C, 1, 1)`` scales, by the fastest op sequence for ``x``.

    For NCHW on CPU, multiply then add (in place outside autograd): ``addcmul`` broadcasting a
    per-channel operand is several times slower there (``benchmarks/bench_blocks.py``).
    """
    if x.device.type == "cpu" and not is_channels_last(x):
        out = x * gamma
        if torch.is_grad_enabled() and (out.requires_grad or beta.requires_grad):
            return out + beta
        return out.add_(beta)
    return torch.addcmul(beta, gamma, x)


def _scale_shift_backward(grad: Tensor, x: Tensor, gamma: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(grad_x, grad_gamma, grad_beta)`` of ``y = gamma * x + beta``, ``gamma`` ``(B, C, 1, 1)``.

    This affine is an inference batch norm over ``B * C`` channels (mean 0, variance 1), so for large
    NCHW maps ATen's ``native_batch_norm_backward`` computes all three in one pass.
    """
    batch, channels, height, width = x.shape
    if x.numel() < _FUSED_REDUCTION_MIN_ELEMENTS or not (x.is_contiguous() and grad.is_contiguous()):
        return grad * gamma, (grad * x).sum((2, 3)), grad.sum((2, 3))
    rows = batch * channels
    # Half-precision maps take float32 statistics and weights (the kernel's mixed-type mode).
    stats_dtype = torch.float32 if x.element_size() < 4 else x.dtype
    stats = x.new_zeros(rows, dtype=stats_dtype)
    # Arguments: grad_out, input, weight, running_mean, running_var, save_mean, save_invstd, train
    # (False: the running statistics, i.e. the plain affine), eps, output_mask (all three grads).
    grad_x, grad_gamma, grad_beta = torch.ops.aten.native_batch_norm_backward(
        grad.view(1, rows, height, width), x.view(1, rows, height, width), gamma.reshape(rows).to(stats_dtype),
        stats, torch.ones_like(stats), None, None, False, 0.0, [True, True, True],
    )
    return grad_x.view_as(x), grad_gamma.view(batch, channels), grad_beta.view(batch, channels)


class _ModulateTwice(torch.autograd.Function):
    """``lrelu(g2 * lrelu(g1 * x + b1) + b2)`` with ``(B, C)`` scales and shifts; ``slope >= 0``."""

    @staticmethod
    def forward(ctx, x, gamma1, beta1, gamma2, beta2, slope, use_triton):  # type: ignore[override]
        ctx.slope, ctx.use_triton = slope, use_triton
        ctx.param_dtypes = (gamma1.dtype, beta1.dtype, gamma2.dtype, beta2.dtype)
        if use_triton:
            params = torch.stack((gamma1, beta1, gamma2, beta2)).float().contiguous()
            ctx.save_for_backward(x, params)
            return modulate_twice_forward(x, params, slope)
        # Outside autograd here, so every op after the first overwrites its input.
        g1, b1, g2, b2 = (p.to(x.dtype)[:, :, None, None] for p in (gamma1, beta1, gamma2, beta2))
        hidden = F.leaky_relu_(scale_shift(x, g1, b1), slope)
        out = F.leaky_relu_(scale_shift(hidden, g2, b2), slope)
        ctx.save_for_backward(x, hidden, out, g1, g2)
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        slope = ctx.slope
        if ctx.use_triton:
            x, params = ctx.saved_tensors
            grad_x, grad_params = modulate_twice_backward(x, grad, params, slope)
            grads = grad_params.unbind(0)
        else:
            x, hidden, out, g1, g2 = ctx.saved_tensors
            # leaky_relu_backward with self_is_result=True reads the sign from the output: slope >= 0.
            d_out = torch.ops.aten.leaky_relu_backward(grad, out, slope, True)
            d_hidden, grad_gamma2, grad_beta2 = _scale_shift_backward(d_out, hidden, g2)
            d_hidden = torch.ops.aten.leaky_relu_backward(d_hidden, hidden, slope, True)
            grad_x, grad_gamma1, grad_beta1 = _scale_shift_backward(d_hidden, x, g1)
            grads = (grad_gamma1, grad_beta1, grad_gamma2, grad_beta2)
        grads = tuple(g.to(dt) for g, dt in zip(grads, ctx.param_dtypes))
        return (grad_x if ctx.needs_input_grad[0] else None, *grads, None, None)


def fused_modulate_twice(
    x: Tensor, gamma1: Tensor, beta1: Tensor, gamma2: Tensor, beta2: Tensor, negative_slope: float,
    *, use_triton: bool | None = None,
) -> Tensor:
    """The fused block body, for arguments :func:`~ratlip_layers.layers.modulate_twice` checked and
    ``negative_slope >= 0``; ``use_triton=None``: Triton, if installed, for NCHW-contiguous CUDA ``x``
    of at most float32 precision (the kernels compute in float32, which would round float64 down)."""
    if use_triton is None:
        use_triton = HAS_TRITON and x.is_cuda and x.is_contiguous() and x.dtype != torch.float64
    return _ModulateTwice.apply(x, gamma1, beta1, gamma2, beta2, float(negative_slope), use_triton)
