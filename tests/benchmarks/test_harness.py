"""The benchmark harness: its baselines compute the library's maths, and the --quick CLI run works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.baselines import (
    BaselineDFBlock,
    BaselineLSTMAffine,
    BaselineRATBlock,
    BaselineSAConv,
    BaselineShuffleAttention,
    ReferenceRATBlock,
)
from benchmarks.cases import REGISTRY, Plan, build_cases
from benchmarks.report import markdown, targets
from ratlip_layers import DFBlock, LSTMAffine, RATBlock, SAConv, ShuffleAttention

ROOT = Path(__file__).resolve().parents[2]


def _perturbed(module: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.3)
    return module


def test_baselines_compute_the_same_function():
    x, cond = torch.randn(3, 16, 5, 5), torch.randn(3, 12)
    state = (torch.randn(3, 6), torch.randn(3, 6))
    rat = _perturbed(RATBlock(12, 16, 6))
    for ours, base in [
        (rat, BaselineRATBlock.from_ours(rat)),
        (lstm := _perturbed(LSTMAffine(12, 16, 6)), BaselineLSTMAffine.from_ours(lstm)),
    ]:
        got, got_state = base(x, cond, state)
        want, want_state = ours(x, cond, state)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(got_state[0], want_state[0])
    df = _perturbed(DFBlock(12, 16))
    torch.testing.assert_close(BaselineDFBlock.from_ours(df)(x, cond), df(x, cond))
    sa = _perturbed(ShuffleAttention(16, 4))
    torch.testing.assert_close(BaselineShuffleAttention.from_ours(sa)(x), sa(x))
    conv = _perturbed(SAConv(16, 32)).eval()
    torch.testing.assert_close(BaselineSAConv.from_ours(conv).eval()(x), conv(x))


def test_reference_rat_block_reads_the_batch_as_one_sequence():
    # SPEC section 2: one gamma/beta for the whole batch, so sample 0 depends on the others.
    ref = ReferenceRATBlock.from_ours(_perturbed(RATBlock(12, 8, 6)))
    x, cond = torch.randn(4, 8, 3, 3), torch.randn(4, 12)
    other = cond.clone()
    other[1:] = torch.randn(3, 12)
    assert not torch.allclose(ref(x, cond)[0], ref(x, other)[0])
    # ...and it steps the same weights: with a batch of one it equals our block from a zero state.
    ours = _perturbed(RATBlock(12, 8, 6))
    ref = ReferenceRATBlock.from_ours(ours)
    first_affine = ours.affine1(x[:1], cond[:1])[0]
    torch.testing.assert_close(ref.affine1(x[:1], cond[:1]), first_affine)


def test_registry_covers_every_public_block_at_paper_shapes():
    assert set(REGISTRY) == {"LSTMAffine", "RATBlock", "DFBlock", "ShuffleAttention", "SAConv"}
    cases, skipped = build_cases(Plan())
    assert not skipped
    labels = {case.label for case in cases}
    assert "RATBlock B16 C32 px7" in labels and "RATBlock B64 C64 px7" in labels
    assert "DFBlock B64 C128 px224" in labels and "SAConv B16 Cin128 Cout64 px224" in labels
    cases, skipped = build_cases(Plan(max_elements=16 * 512 * 64 * 64), ["DFBlock"])
    assert "DFBlock B16 C128 px224" in skipped and all(case.block == "DFBlock" for case in cases)


@pytest.mark.slow
def test_quick_cli_run_writes_json_markdown_and_png(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_blocks.py"),
        "--device",
        "cpu",
        "--quick",
        "--out",
        str(tmp_path),
        "--name",
        "smoke",
    ]
    result = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "smoke.json").read_text())
    assert results["torch"] == torch.__version__ and results["device"] == "cpu" and results["quick"]
    assert len(results["commit"]) >= 40
    rows = [row for row in results["rows"] if "error" not in row]
    assert {row["block"] for row in rows} == set(REGISTRY)
    assert all(
        row["median_s"] > 0 and row["images_per_s"] > 0 and row["peak_memory_bytes"] >= 0 for row in rows
    )
    variants = {(row["impl"], row["variant"]) for row in rows if row["block"] == "RATBlock"}
    assert {
        ("baseline", "eager"),
        ("reference", "eager"),
        ("ours", "eager"),
        ("ours", "plain"),
        ("ours", "channels_last"),
        ("ours", "compile"),
    } <= variants
    for row in rows:
        if row["impl"] == "baseline":
            assert row["speedup_vs_baseline"] == 1.0
    ops = {row["op"] for row in results["roofline"]["rows"]}
    assert {"LeakyReLU", "SA gating (ours)", "modulation (ours, fused) forward"} <= ops
    assert results["roofline"]["copy_bytes_per_s"] > 0
    text = (tmp_path / "smoke.md").read_text()
    assert text == markdown(results) and "## RATBlock" in text and "## Roofline" in text
    assert any("RATBlock forward+backward float32" in line for line in targets(results))
    assert (tmp_path / "smoke.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
