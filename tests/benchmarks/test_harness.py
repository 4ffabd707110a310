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
    EncodeText,
    ReferenceRATBlock,
)
from benchmarks.cases import REGISTRY, TRAIN_STEP, BlockStep, Plan, build_cases
from benchmarks.report import markdown, targets
from ratlip_layers import (
    CLIPTextAdapter,
    DFBlock,
    LSTMAffine,
    RATBlock,
    SAConv,
    ShuffleAttention,
    tiny_clip,
)

ROOT = Path(__file__).resolve().parents[2]
NETWORK_ROWS = {"MapperBlock", "GBlock", "CLIPTextAdapter", "CLIPDiscriminator", "Generator", "GANTrainStep"}


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
    first_affine = ours.affine1(x[:1], cond[:1], None)[0]
    torch.testing.assert_close(ref.affine1(x[:1], cond[:1]), first_affine)


def test_registry_covers_every_public_block_at_paper_shapes():
    assert set(REGISTRY) == {"LSTMAffine", "RATBlock", "DFBlock", "ShuffleAttention", "SAConv"} | NETWORK_ROWS
    cases, skipped = build_cases(Plan(), [name for name in REGISTRY if name not in NETWORK_ROWS])
    assert not skipped
    labels = {case.label for case in cases}
    assert "RATBlock B16 C32 px7" in labels and "RATBlock B64 C64 px7" in labels
    assert "DFBlock B64 C128 px224" in labels and "SAConv B16 Cin128 Cout64 px224" in labels
    cases, skipped = build_cases(Plan(max_elements=16 * 512 * 64 * 64), ["DFBlock"])
    assert "DFBlock B16 C128 px224" in skipped and all(case.block == "DFBlock" for case in cases)


def test_network_rows_cover_the_paper_network_and_their_baselines_agree():
    labels = {case.label for case in build_cases(Plan(model_batches=(2,)), sorted(NETWORK_ROWS))[0]}
    assert {
        "MapperBlock B16 C64 px7",
        "GBlock B2 Cin512 Cout512 px16",
        "GBlock B2 Cin256 Cout128 px128",
        "CLIPTextAdapter B2 L77",
        "CLIPDiscriminator B2 px224",
        "Generator B2 px224",
        "GANTrainStep B2 px224",
    } <= labels
    clip_model, tokenizer = tiny_clip()
    tokens = tokenizer(["a red bird", "a yellow flower on a table"])
    torch.testing.assert_close(
        EncodeText(clip_model)(tokens), CLIPTextAdapter(clip_model)(tokens).sentence, rtol=1e-5, atol=1e-6
    )
    # The network rows' baseline is the same network built with impl="ref".
    (generator_case,) = build_cases(Plan(model_preset="tiny", model_batches=(2,)), ["Generator"])[0]
    G, ref = generator_case.builders["ours"](), generator_case.builders["baseline"]()
    assert {m.impl for m in G.modules() if hasattr(m, "impl")} == {"fused"}
    assert {m.impl for m in ref.modules() if hasattr(m, "impl")} == {"ref"}
    G = _perturbed(G)
    ref.load_state_dict(G.state_dict())
    z, s = torch.randn(2, 16), torch.randn(2, 32)
    torch.testing.assert_close(ref(z, s), G(z, s), rtol=1e-3, atol=1e-3)
    # BlockStep runs a block as the generator does, the state passed as two tensors.
    block, cond = G.blocks[1], torch.cat((z, s), dim=1)
    x, state = torch.randn(2, block.in_channels, 8, 8), (torch.randn(2, 16), torch.randn(2, 16))
    torch.testing.assert_close(BlockStep(block)(x, cond, *state), block(x, cond, state)[0])
    (step_case,) = build_cases(Plan(model_preset="tiny", model_batches=(2,)), ["GANTrainStep"])[0]
    assert step_case.modes == (TRAIN_STEP,)


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
    step_rows = [row for row in rows if row["block"] == "GANTrainStep"]
    assert {(row["impl"], row["mode"]) for row in step_rows} == {
        ("ours", TRAIN_STEP),
        ("baseline", TRAIN_STEP),
    }
    assert all(
        row["median_s"] > 0 and row["images_per_s"] > 0 and row["peak_memory_bytes"] >= 0 for row in rows
    )
    variants = {(row["impl"], row["variant"]) for row in rows if row["block"] == "RATBlock"}
    assert {
        ("baseline", "eager"),
        ("reference", "eager"),
        ("ours", "eager"),
        ("ours", "ref"),
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
    assert any("GANTrainStep float32, GANTrainStep B2 px32, eager" in line for line in targets(results))
    assert (tmp_path / "smoke.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_step_benchmark_quick_run(tmp_path):
    from benchmarks import bench_train_step

    results = bench_train_step.main(["--quick", "--out", str(tmp_path), "--name", "smoke"])
    row = results["paper"]["2"]
    assert set(row) == {"baseline", "ours"} and all(v["median_s"] > 0 for v in row.values())
    assert {"g_forward", "clip_fake", "backward", "optimizer"} <= set(row["ours"]["phases_s"])
    assert (tmp_path / "smoke.md").read_text().startswith("# Training step benchmark")
