"""Writes a benchmark run as JSON, a markdown table and a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["markdown", "targets", "write_report"]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def _timed(rows: list[dict]) -> list[dict]:
    """The rows that were measured (a variant that failed to build or run carries an ``error``)."""
    return [row for row in rows if "error" not in row]


GENERATOR_GOAL = 1.5
"""Target speedup of the full D+G training step over the same networks built with ``impl="ref"``."""


def targets(results: dict) -> list[str]:
    """The issues' targets, read off the rows: ours speedup per RATBlock shape, the roofline, and the
    full training step against the same networks built with ``impl="ref"``."""
    lines = []
    device = results["device"]
    dtype = "float32" if device == "cpu" else "bfloat16"
    goal = 2.0 if device == "cpu" else 3.0
    for row in _timed(results["rows"]):
        if (
            row["block"] == "RATBlock"
            and row["mode"] == "forward+backward"
            and row["dtype"] == dtype
            and row["impl"] == "ours"
        ):
            met = "met" if row["speedup_vs_baseline"] >= goal else "missed"
            lines.append(
                f"- RATBlock forward+backward {dtype}, {row['label']}, {row['variant']}: "
                f"{row['speedup_vs_baseline']:.2f}x the baseline (target {goal:g}x: {met})"
            )
    for row in results["roofline"]["rows"]:
        if (
            row["op"].startswith("modulation (ours, fused) forward")
            and row["dtype"] == dtype
            and device == "cuda"
        ):
            met = "met" if row["fraction_of_copy"] >= 0.7 else "missed"
            lines.append(
                f"- {row['op']} {dtype}: {row['fraction_of_copy']:.0%} of copy bandwidth (target 70%: {met})"
            )
    for row in _timed(results["rows"]):
        if row["block"] == "GANTrainStep" and row["impl"] == "ours":
            met = "met" if row["speedup_vs_baseline"] >= GENERATOR_GOAL else "missed"
            lines.append(
                f"- GANTrainStep {row['dtype']}, {row['label']}, {row['variant']}: "
                f"{row['speedup_vs_baseline']:.2f}x the impl=\"ref\" networks "
                f"(target {GENERATOR_GOAL:g}x: {met})"
            )
    return lines


def markdown(results: dict) -> str:
    """The run as markdown: metadata, targets, one table per block, the roofline, skipped rows."""
    out = [
        f"# Block benchmarks: {results['device_name']} ({results['device']})",
        "",
        (
            f"- date: {results['date']}, commit `{results['commit']}`, torch {results['torch']}, "
            f"{results['threads']} intra-op threads{', quick smoke run' if results['quick'] else ''}"
        ),
        (
            "- speedup = baseline time / our time (the throughput ratio ours/baseline), the straightforward "
            "eager implementation timed in the same interleaved rounds; > 1 means ours is faster."
        ),
        "- `reference` is the reference code's RAT layer (its LSTM steps once per sample over the batch).",
        (
            "- network-level rows (MapperBlock, GBlock, CLIPDiscriminator, Generator, GANTrainStep): the "
            "baseline is the same module built with `impl=\"ref\"` (CLIPDiscriminator has no fused parts: "
            "its baseline is the same module); CLIPTextAdapter: open_clip's `encode_text`."
        ),
        (
            "- variants of ours: `eager` (the default implementation, `impl=\"fused\"`), "
            "`ref` (`impl=\"ref\"`), `channels_last`, "
            '`compile` (`torch.compile`), `compile+cudagraphs` (`mode="reduce-overhead"`, CUDA).'
        ),
        "",
        "## Targets",
        "",
        *(targets(results) or ["- (no target rows in this run)"]),
        "",
    ]
    blocks = list(dict.fromkeys(row["block"] for row in results["rows"]))
    for block in blocks:
        out += [
            f"## {block}",
            "",
            "| shape | mode | dtype | impl | variant | median ms | IQR ms | images/s | peak MiB | speedup |",
            "|---|---|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for row in results["rows"]:
            if row["block"] != block:
                continue
            if "error" in row:
                out.append(
                    f"| {row['label'].removeprefix(block + ' ')} | {row['mode']} | {row['dtype']} | {row['impl']} | "
                    f"{row['variant']} | failed: {row['error']} | | | | |"
                )
                continue
            out.append(
                f"| {row['label'].removeprefix(block + ' ')} | {row['mode']} | {row['dtype']} | {row['impl']} | "
                f"{row['variant']} | {_ms(row['median_s'])} | {_ms(row['iqr_s'])} | {row['images_per_s']:.1f} | "
                f"{row['peak_memory_bytes'] / 2**20:.2f} | {row['speedup_vs_baseline']:.2f}x |"
            )
        out.append("")
    roofline = results["roofline"]
    out += [
        "## Roofline (memory-bound parts)",
        "",
        (
            f"Copy bandwidth (`x.clone()` of {roofline['copy_tensor_bytes'] / 2**20:.0f} MiB): "
            f"{roofline['copy_bytes_per_s'] / 1e9:.1f} GB/s."
        ),
        "",
        "| op | dtype | shape | median ms | GB/s | of copy bandwidth |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in roofline["rows"]:
        out.append(
            f"| {row['op']} | {row['dtype']} | {'x'.join(map(str, row['shape']))} | {_ms(row['median_s'])} | "
            f"{row['bytes_per_s'] / 1e9:.1f} | {row['fraction_of_copy']:.0%} |"
        )
    if results["skipped"]:
        out += ["", "## Skipped rows", "", *(f"- {label}" for label in results["skipped"])]
    return "\n".join(out) + "\n"


def plot(results: dict, path: Path) -> None:
    """Images/s per row, one panel per (block, mode), bars per implementation and variant (float32)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in _timed(results["rows"]) if r["dtype"] == results["dtypes"][0]]
    blocks = list(dict.fromkeys(r["block"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    # One colour per implementation/variant across every panel, and one legend for the figure.
    series = list(dict.fromkeys(f"{r['impl']}/{r['variant']}" for r in rows))
    colours = {name: plt.get_cmap("tab10")(k % 10) for k, name in enumerate(series)}
    fig, axes = plt.subplots(len(modes), len(blocks), figsize=(4.2 * len(blocks), 7.5), squeeze=False)
    for col, block in enumerate(blocks):
        for row_index, mode in enumerate(modes):
            ax = axes[row_index][col]
            sel = [r for r in rows if r["block"] == block and r["mode"] == mode]
            if not sel:
                ax.axis("off")
                continue
            labels = list(dict.fromkeys(r["label"].removeprefix(block + " ") for r in sel))
            present = [name for name in series if any(f"{r['impl']}/{r['variant']}" == name for r in sel)]
            width = 0.8 / max(len(present), 1)
            for k, name in enumerate(present):
                values = {
                    r["label"].removeprefix(block + " "): r["images_per_s"]
                    for r in sel
                    if f"{r['impl']}/{r['variant']}" == name
                }
                xs = [i + k * width for i, label in enumerate(labels) if label in values]
                ax.bar(
                    xs,
                    [values[label] for label in labels if label in values],
                    width,
                    color=colours[name],
                    label=name,
                )
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))])
            ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
            ax.set_yscale("log")
            # Bars start well below the smallest value: log autoscaling of near-equal bars would cut
            # them to slivers, hiding which is taller.
            ax.set_ylim(bottom=min(r["images_per_s"] for r in sel) / 4)
            ax.set_title(f"{block}, {mode}", fontsize=9)
            ax.set_ylabel("images/s")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[name]) for name in series]
    fig.legend(handles, series, loc="upper right", fontsize=8, ncol=len(series))
    fig.suptitle(
        f"{results['device_name']}, {results['dtypes'][0]}, torch {results['torch']}, {results['date'][:10]}",
        x=0.3,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: dict, out_dir: Path, name: str) -> list[Path]:
    """Write ``name.json``, ``name.md`` and ``name.png`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.json", out_dir / f"{name}.md", out_dir / f"{name}.png"]
    paths[0].write_text(json.dumps(results, indent=1) + "\n")
    paths[1].write_text(markdown(results))
    plot(results, paths[2])
    return paths
