"""examples/drop_in.py runs, and what it prints holds: checked on its models, not on its words."""

from __future__ import annotations

import copy
import re
import runpy
from pathlib import Path

import pytest
import torch

from ratlip_layers import DFBlock, RATBlock, convert_to_rat
from ratlip_layers.layers import ThreadedRATBlock

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "drop_in.py"


@pytest.fixture(scope="module")
def example():
    namespace = runpy.run_path(str(EXAMPLE))
    return namespace, namespace["main"]()


def test_example_runs_as_a_script(capsys):
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "images (4, 3, 32, 32)" in out
    assert "at init, converted == DF-GAN: True" in out
    assert "explicit state: 15 lines changed (10 in GBlock, 5 in NetG), plus the import" in out
    assert "converted == explicit: True" in out
    assert "missing 1 required positional argument: 'state'" in out


def test_the_converted_model_is_the_dfgan_code_with_rat_blocks(example):
    ns, result = example
    converted = result["converted"]
    assert type(converted) is ns["NetG"] and all(type(b) is ns["GBlock"] for b in converted.GBlocks)
    fusions = [m for b in converted.GBlocks for m in (b.fuse1, b.fuse2)]
    assert len(fusions) == 6 and all(isinstance(m, ThreadedRATBlock) for m in fusions)
    assert not any(isinstance(m, DFBlock) for m in converted.modules())
    assert [b.c_sc.out_channels for b in converted.GBlocks] == list(ns["CHANNELS"][1:])


def test_at_init_the_converted_model_is_the_dfgan_one(example):
    ns, result = example
    dfgan = result["dfgan"]
    fresh = convert_to_rat(copy.deepcopy(dfgan), DFBlock, state_init="noise", noise_dim=ns["NZ"]).eval()
    noise, c = torch.randn(5, ns["NZ"]), torch.randn(5, ns["TEXT"])
    with torch.no_grad():
        assert torch.equal(fresh(noise, c), dfgan(noise, c))
    assert result["at_init"]


def test_converted_and_explicit_compute_the_same_on_the_same_weights(example):
    ns, result = example
    converted, explicit, dfgan = result["converted"], result["explicit"], result["dfgan"]
    mapped = {ns["to_explicit_keys"](k): v for k, v in converted.state_dict().items()}
    assert mapped.keys() == explicit.state_dict().keys()
    assert all(torch.equal(v, explicit.state_dict()[k]) for k, v in mapped.items())
    cells = {id(a.cell) for b in explicit.GBlocks for f in (b.fuse1, b.fuse2) for a in (f.affine1, f.affine2)}
    assert len(cells) == 1  # one LSTM cell shared by every affine, as convert_to_rat's default
    noise, c = torch.randn(5, ns["NZ"]), torch.randn(5, ns["TEXT"])
    with torch.no_grad():
        out = converted(noise, c)
        assert torch.equal(out, explicit(noise, c))
        assert not torch.allclose(out, dfgan(noise, c), atol=1e-3)  # the heads really moved
        other = c.clone()
        other[1:] = torch.randn(4, ns["TEXT"])
        changed = converted(noise, other)
    torch.testing.assert_close(changed[0], out[0], rtol=1e-5, atol=1e-6)  # per sample
    assert not torch.allclose(changed[1:], out[1:])
    assert result["same"]


def test_line_counts_are_measured_and_match_the_docs(example):
    ns, result = example
    assert result["counts"] == {"GBlock": 10, "NetG": 5}
    assert ns["changed_lines"]("GBlock", "GBlock") == 0 and ns["changed_lines"]("NetG", "NetG") == 0
    for old, new in (("GBlock", "RATGBlock"), ("NetG", "RATNetG")):  # the "# +" marks are the diff
        marked = sum(line.rstrip().endswith("# +") for line in ns["class_source"](new))
        assert marked == ns["changed_lines"](old, new)
        assert not any(line.rstrip().endswith("# +") for line in ns["class_source"](old))
    converting = (ROOT / "docs" / "concepts" / "converting.rst").read_text()
    assert re.search(r"15 \(10 in ``G_Block``, 5 in ``NetG``\)", converting)
    assert "2: one import, one call" in converting


def test_forgetting_the_state_is_loud(example):
    ns, result = example
    assert result["forgotten"].startswith("TypeError") and "'state'" in result["forgotten"]
    block = result["explicit"].GBlocks[0].fuse1
    assert isinstance(block, RATBlock)
    with pytest.raises(TypeError, match="state"):
        block(torch.randn(2, ns["CHANNELS"][0], 8, 8), torch.randn(2, ns["NZ"] + ns["TEXT"]))
