"""Timing, peak memory and copy bandwidth, with ``torch.utils.benchmark``.

The functions compared in one row group (ours in each variant, the baseline, the reference) are
timed in interleaved rounds, so a slow spell of a shared machine hits all of them alike, and every
block time of every round is pooled before taking the median and the interquartile range.
``torch.utils.benchmark`` synchronises the accelerator around each block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils import benchmark

__all__ = ["Timing", "copy_bandwidth", "peak_memory", "time_interleaved"]


class Timing(TypedDict):
    """Seconds per call of one function: median and interquartile range over ``blocks`` blocks."""

    median_s: float
    iqr_s: float
    blocks: int


def time_interleaved(
    fns: dict[str, Callable[[], object]], *, rounds: int, min_run_time: float, num_threads: int
) -> dict[str, Timing]:
    """Time every function in ``rounds`` interleaved rounds of ``blocked_autorange``.

    Args:
        fns: name -> function to time (already warmed up).
        rounds: number of rounds; each function is timed once per round.
        min_run_time: seconds per function per round.
        num_threads: intra-op threads ``torch.utils.benchmark`` runs with.

    Returns:
        name -> :class:`Timing` with the median and IQR (seconds per call) over all blocks.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=num_threads, label=name)
            times[name].extend(timer.blocked_autorange(min_run_time=min_run_time).times)
    out = {}
    for name, values in times.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        out[name] = Timing(median_s=float(median), iqr_s=float(q3 - q1), blocks=len(values))
    return out


def peak_memory(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated by one call of ``fn`` beyond what was live before it.

    CUDA reads the caching allocator's peak counter; CPU replays the profiler's allocation events.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # The profiler books an allocation on the op that made it (its self memory) and a free on a
    # standalone "[memory]" event; replaying both in start order gives the live-bytes curve.
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.cpu_memory_usage if event.name == "[memory]" else event.self_cpu_memory_usage
        peak = max(peak, live)
    return int(peak)


def copy_bandwidth(device: torch.device, nbytes: int, *, num_threads: int, min_run_time: float) -> float:
    """Measured device copy bandwidth in bytes/s: ``x.clone()`` reads and writes ``nbytes`` each."""
    x = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    timing = time_interleaved(
        {"copy": x.clone}, rounds=3, min_run_time=min_run_time, num_threads=num_threads
    )["copy"]
    return 2 * x.numel() * 4 / timing["median_s"]
