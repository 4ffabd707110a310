"""Roofline of the memory-bound parts: bytes moved per second against the measured copy bandwidth.

Each op's "bytes moved" is its compulsory traffic (every input element read once, every output
element written once), so the fraction of copy bandwidth says how close the op is to the best any
implementation could do on this device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ratlip_layers import ShuffleAttention
from ratlip_layers.layers import modulate_twice

from .baselines import BaselineShuffleAttention
from .timing import copy_bandwidth, time_interleaved

__all__ = ["roofline_shape", "run_roofline"]


def roofline_shape(device: torch.device, quick: bool) -> tuple[int, int, int, int]:
    """A G-block feature map far larger than the caches: the 224 px block's (CUDA), the 128 px one's (CPU)."""
    if quick:
        return (2, 64, 32, 32)
    if device.type == "cuda":
        return (16, 64, 224, 224)
    return (16, 128, 128, 128)


def _unfused_chain(x, g1, b1, g2, b2):
    def expand(p):
        return p.unsqueeze(-1).unsqueeze(-1).expand_as(x)

    h = F.leaky_relu(expand(g1) * x + expand(b1), 0.2)
    return F.leaky_relu(expand(g2) * h + expand(b2), 0.2)


def run_roofline(device: torch.device, dtype_names: list[str], *, quick: bool, threads: int) -> dict:
    """Copy bandwidth, then achieved bandwidth of modulation, LeakyReLU and SA gating per dtype."""
    min_run_time = 0.005 if quick else 0.1
    copy_bytes = (16 if quick else 256) * 2**20
    bandwidth = copy_bandwidth(device, copy_bytes, num_threads=threads, min_run_time=min_run_time)
    shape = roofline_shape(device, quick)
    rows = []
    for dtype_name in dtype_names:
        ops = _memory_bound_ops(torch.randn(shape, device=device, dtype=getattr(torch, dtype_name)))
        fns = {name: _grad_mode(name, fn) for name, (fn, _) in ops.items()}
        for fn in fns.values():
            fn()
        timings = time_interleaved(
            fns,
            rounds=2 if quick else 3,
            min_run_time=min_run_time,
            num_threads=threads,
        )
        for name, (_, moved) in ops.items():
            achieved = moved / timings[name]["median_s"]
            rows.append(
                {
                    "op": name,
                    "dtype": dtype_name,
                    "shape": list(shape),
                    "bytes_moved": moved,
                    "median_s": timings[name]["median_s"],
                    "iqr_s": timings[name]["iqr_s"],
                    "bytes_per_s": achieved,
                    "fraction_of_copy": achieved / bandwidth,
                }
            )
    return {"copy_bytes_per_s": bandwidth, "copy_tensor_bytes": copy_bytes, "rows": rows}


def _memory_bound_ops(x: torch.Tensor) -> dict[str, tuple[Callable[[], object], int]]:
    """name -> (function, compulsory bytes moved) for the memory-bound ops on feature map ``x``."""
    batch, channels = x.shape[:2]
    params = [torch.rand(batch, channels, device=x.device, dtype=x.dtype) for _ in range(4)]
    ours_sa = ShuffleAttention(channels, device=x.device, dtype=x.dtype)
    base_sa = BaselineShuffleAttention.from_ours(ours_sa)
    x_grad = x.clone().requires_grad_()
    grad = torch.randn_like(x)
    nbytes = x.numel() * x.element_size()

    def fused_train() -> None:
        torch.autograd.grad(modulate_twice(x_grad, *params, impl="fused"), x_grad, grad)

    return {
        "modulation (ours, fused) forward": (lambda: modulate_twice(x, *params, impl="fused"), 2 * nbytes),
        "modulation (baseline chain) forward": (lambda: _unfused_chain(x, *params), 2 * nbytes),
        # Forward reads x and writes out; backward reads x and the gradient and writes grad_x.
        "modulation (ours, fused) forward+backward": (fused_train, 5 * nbytes),
        "LeakyReLU": (lambda: F.leaky_relu(x, 0.2), 2 * nbytes),
        "SA gating (ours)": (lambda: ours_sa(x), 2 * nbytes),
        "SA gating (baseline)": (lambda: base_sa(x), 2 * nbytes),
    }


def _grad_mode(name: str, fn: Callable[[], object]) -> Callable[[], object]:
    """Forward-only ops run without autograd; the forward+backward op needs it."""
    if "backward" in name:
        return fn

    def no_grad() -> object:
        with torch.no_grad():
            return fn()

    return no_grad
