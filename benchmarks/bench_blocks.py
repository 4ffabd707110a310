"""Per-block throughput of ratlip-layers against a straightforward implementation of the same maths.

Usage::

    python benchmarks/bench_blocks.py --device cpu|cuda [--quick] [--out DIR] [--name NAME]

By default the outputs go to benchmarks/results/ as cpu.* or <gpu-name>.* (``-quick`` added for a
smoke run), the files the docs' "Benchmarks" page renders.

Every row group (one block, shape, mode and dtype) times the library in each variant (eager with
the default implementation, eager with ``impl="ref"``, channels_last, ``torch.compile``) side by
side with the straightforward baseline (eager, see ``baselines.py``) and, for RAT, the reference
code's batch-as-sequence LSTM. It writes ``NAME.json`` (commit, torch version, device, every
measurement), ``NAME.md`` (tables) and ``NAME.png`` (throughput per block and variant) to ``DIR``.
``--quick`` is the CI smoke run: tiny shapes, few repeats, no speed thresholds.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Before torch is imported: back large CPU allocations with transparent huge pages. Without it,
# every fresh output of a big op page-faults its way into memory at a fifth of the copy bandwidth
# (measured on the CPU suite's machine), and that, not the kernels, would be what the rows compare.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import torch

if __package__ in (None, ""):
    # Run as a script: make the repository root importable so ``benchmarks`` resolves as a package.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cases import (
    ALL_VARIANTS,
    CHANNELS_LAST,
    COMPILE,
    CUDA_GRAPHS,
    EAGER,
    FORWARD,
    REF,
    TRAIN_STEP,
    Case,
    Plan,
    build_cases,
)
from benchmarks.report import write_report
from benchmarks.roofline import run_roofline
from benchmarks.timing import peak_memory, time_interleaved

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def make_fn(
    case: Case, impl: str, device: torch.device, dtype: torch.dtype, variant: str, mode: str
) -> Callable[[], object]:
    """Build ``impl`` for ``case`` in ``variant`` and return the function one timed call runs.

    Variants: ``eager`` (the library's default implementation, ``impl="fused"``), ``ref`` (built
    with ``impl="ref"``), ``channels_last``, ``compile`` (``torch.compile``) and, on CUDA,
    ``compile+cudagraphs`` (``mode="reduce-overhead"``, which captures CUDA graphs). Modes:
    ``forward`` (without autograd), ``forward+backward`` (gradients of every trainable parameter and
    of the first input) and ``train step`` (the case's call is a whole update).
    """
    memory_format = torch.channels_last if variant == CHANNELS_LAST else torch.contiguous_format
    build = case.builders[impl]
    module = build(impl=REF) if variant == REF else build()
    module = module.to(device=device, dtype=dtype, memory_format=memory_format)
    module.train(mode != FORWARD)
    if variant == COMPILE:
        runner = torch.compile(module, dynamic=False)
    elif variant == CUDA_GRAPHS:
        runner = torch.compile(module, dynamic=False, mode="reduce-overhead")
    else:
        runner = module
    args = case.inputs(device, dtype, memory_format)
    if mode == FORWARD:

        def run() -> None:
            with torch.no_grad():
                case.call(runner, args)

    elif mode == TRAIN_STEP:

        def run() -> None:
            case.call(runner, args)

    else:
        wrt = [p for p in module.parameters() if p.requires_grad] + [args[0]]
        grad_out = torch.randn_like(case.call(module, args))

        def run() -> None:
            torch.autograd.grad(case.call(runner, args), wrt, grad_out)

    return run


def plan_for(device: torch.device, quick: bool) -> tuple[Plan, dict]:
    """The shapes and the run settings for a device and a mode."""
    if quick:
        plan = Plan(
            batches=(2,), g_blocks=((512, 256, 8),), channel_scale=4, model_preset="tiny", model_batches=(2,)
        )
        return plan, {
            "rounds": 2,
            "min_run_time": 0.005,
            "compile_blocks": ("RATBlock",),
            "compile_dtypes": ("float32",),
            "max_compile_elements": 2 * 8 * 7 * 7,
        }
    if device.type == "cpu":
        # Two cores cannot run the 128/224 px G-block rows (and 64 px at batch 64) in a 10-minute
        # suite; they are listed as skipped in the outputs. torch.compile (seconds per graph on a
        # CPU) covers the mapper's RAT blocks and the smallest DF block. The network-level rows run
        # at paper shapes with batch 1 (a D+G step of the paper network takes seconds on one core).
        plan = Plan(max_elements=16 * 512 * 64 * 64, model_batches=(1,))
        return plan, {
            "rounds": 3,
            "min_run_time": 0.05,
            "compile_blocks": ("RATBlock", "DFBlock"),
            "compile_dtypes": ("float32",),
            "max_compile_elements": 16 * 512 * 8 * 8,
        }
    # CUDA: every paper shape; the compile variants (seconds of Triton compilation each) cover the
    # RAT blocks in bfloat16, the subject of the CUDA target, so the suite fits in about 8 minutes.
    return Plan(), {
        "rounds": 2,
        "min_run_time": 0.02,
        "compile_blocks": ("RATBlock",),
        "compile_dtypes": ("bfloat16",),
        "max_compile_elements": 10**12,
    }


def variants_for(case: Case, dtype: torch.dtype, device: torch.device, settings: dict) -> list[str]:
    """Ours in every variant for float32 (every dtype on CUDA), eager only for the others on CPU.

    The compile variants run for the plan's ``compile_blocks`` and ``compile_dtypes`` only; a case's
    own ``variants`` restrict the list further.
    """
    allowed = case.variants or ALL_VARIANTS
    return [variant for variant in _variants(case, dtype, device, settings) if variant in allowed]


def _variants(case: Case, dtype: torch.dtype, device: torch.device, settings: dict) -> list[str]:
    if dtype != torch.float32 and device.type == "cpu":
        return [EAGER]
    variants = [EAGER, REF, CHANNELS_LAST]
    blocks = settings["compile_blocks"]
    wanted = (blocks is None or case.block in blocks) and str(dtype).removeprefix("torch.") in settings[
        "compile_dtypes"
    ]
    if wanted and case.elements <= settings["max_compile_elements"]:
        variants.append(COMPILE)
        if device.type == "cuda":
            variants.append(CUDA_GRAPHS)
    return variants


def run_group(
    case: Case, mode: str, dtype_name: str, device: torch.device, settings: dict, threads: int
) -> list[dict]:
    """Time one (case, mode, dtype) group: ours in each variant, the baseline and the reference."""
    dtype = DTYPES[dtype_name]
    torch._dynamo.reset()
    wanted = [("baseline", EAGER)] + [("reference", EAGER)] * ("reference" in case.builders)
    wanted += [("ours", variant) for variant in variants_for(case, dtype, device, settings)]
    fns: dict[tuple[str, str], Callable[[], object]] = {}
    errors = {}
    for key in wanted:
        try:  # build and warm up (compiles the compile variants)
            fn = make_fn(case, key[0], device, dtype, key[1], mode)
            fn()
            fn()
            fns[key] = fn
        except Exception as error:
            if key == ("baseline", EAGER):
                raise
            errors[key] = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200]}"
    timings = time_interleaved(
        {f"{impl}/{variant}": fn for (impl, variant), fn in fns.items()},
        rounds=settings["rounds"],
        min_run_time=settings["min_run_time"],
        num_threads=threads,
    )
    base = timings[f"baseline/{EAGER}"]["median_s"]
    common = {
        "block": case.block,
        "label": case.label,
        "batch": case.batch,
        "shape": " ".join(f"{k}{v}" for k, v in case.shape.items()),
        "mode": mode,
        "dtype": dtype_name,
    }
    rows = [
        {**common, "impl": impl, "variant": variant, "error": error}
        for (impl, variant), error in errors.items()
    ]
    for (impl, variant), fn in fns.items():
        timing = timings[f"{impl}/{variant}"]
        rows.append(
            {
                **common,
                "impl": impl,
                "variant": variant,
                "median_s": timing["median_s"],
                "iqr_s": timing["iqr_s"],
                "blocks": timing["blocks"],
                "images_per_s": case.batch / timing["median_s"],
                "peak_memory_bytes": peak_memory(fn, device),
                "speedup_vs_baseline": base / timing["median_s"],
            }
        )
    return rows


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        if match:
            model = match.group(1).strip()
    return model


def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty.strip() else "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: tiny shapes, few repeats")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument(
        "--name", default="auto", help="file stem of the outputs; auto: cpu, or the GPU's name"
    )
    parser.add_argument("--blocks", nargs="*", default=None, help="only these blocks (registry names)")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds; cases not started by then are skipped and listed",
    )
    parser.add_argument(
        "--dtypes",
        nargs="*",
        default=None,
        choices=sorted(DTYPES),
        help="default: float32 bfloat16 (+ float16 on CUDA)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op CPU threads (default 1: on a shared or busy machine, more threads measure contention)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for, but torch.cuda.is_available() is False")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    plan, settings = plan_for(device, args.quick)
    dtype_names = args.dtypes or (["float32", "bfloat16"] + (["float16"] if device.type == "cuda" else []))
    if args.quick:
        dtype_names = dtype_names[:1]
    cases, skipped = build_cases(plan, args.blocks)
    skipped_reasons = [f"{label} (skipped: over the CPU suite's size limit)" for label in skipped]
    rows = []
    start = time.perf_counter()
    for i, case in enumerate(cases):
        if args.time_budget is not None and time.perf_counter() - start > args.time_budget:
            skipped_reasons += [
                f"{c.label} (skipped: past the {args.time_budget:g} s time budget)" for c in cases[i:]
            ]
            break
        for mode in case.modes:
            for dtype_name in dtype_names:
                if case.dtypes is not None and dtype_name not in case.dtypes:
                    continue
                rows.extend(run_group(case, mode, dtype_name, device, settings, args.threads))
        print(f"[{i + 1}/{len(cases)}] {case.label} ({time.perf_counter() - start:.0f} s)", flush=True)
    name = args.name
    if name == "auto":
        name = (
            "cpu"
            if device.type == "cpu"
            else re.sub(r"[^a-z0-9]+", "-", device_name(device).lower()).strip("-")
        )
        # A smoke run must not replace the committed full results.
        name += "-quick" if args.quick else ""
    results = {
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": args.device,
        "device_name": device_name(device),
        "threads": args.threads,
        "cpu_allocator": f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '')}",
        "quick": args.quick,
        "dtypes": dtype_names,
        "plan": {
            "batches": plan.batches,
            "g_blocks": plan.g_blocks,
            "max_elements": plan.max_elements,
            "channel_scale": plan.channel_scale,
            "model_preset": plan.model_preset,
            "model_batches": plan.model_batches,
        },
        "settings": settings,
        "skipped": skipped_reasons,
        "rows": rows,
        "roofline": run_roofline(device, dtype_names, quick=args.quick, threads=args.threads),
    }
    paths = write_report(results, args.out, name)
    for path in paths:
        print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
