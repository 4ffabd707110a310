"""The documentation's build extensions (docs/_ext): inventories, API plan, benchmark tables, figures.

The full build (``sphinx-build -W``) and its doctests run in ``test_docs_build.py``; these tests pin
the pieces that step relies on, on small inputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("matplotlib")

from sphinx.cmd.build import build_main
from sphinx.util.inventory import InventoryFile

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import api_reference
import benchmark_tables
import figures
from canonical_refs import locate
from offline_inventories import compile_inventory

import ratlip_layers

HEADER = "# Sphinx inventory version 2\n# Project: P\n# Version: 1\n# The remainder of this file is compressed using zlib.\n"
INVENTORIES = sorted((DOCS / "_inventories").glob("*.txt"))


# --- offline inventories ---------------------------------------------------------------------------


def test_compiled_inventory_loads_in_sphinx_with_expanded_uris():
    text = HEADER + "torch.Tensor py:class 1 tensors.html#$ -\nint py:class 1 library/functions.html#int -\n"
    inv = InventoryFile.loads(compile_inventory(text), uri="https://example.org/docs")
    assert inv["py:class", "torch.Tensor"].uri == "https://example.org/docs/tensors.html#torch.Tensor"
    assert inv["py:class", "int"].uri == "https://example.org/docs/library/functions.html#int"


def test_compile_inventory_rejects_text_without_the_header():
    with pytest.raises(ValueError, match="version-2 objects.inv header"):
        compile_inventory("torch.Tensor py:class 1 tensors.html#$ -\n")


@pytest.mark.parametrize("path", INVENTORIES, ids=[p.stem for p in INVENTORIES])
def test_every_inventory_entry_names_a_real_object(path):
    # A typo in an inventory would silently resolve a link to a page anchor that does not exist.
    inv = InventoryFile.loads(compile_inventory(path.read_text()), uri="https://example.org")
    names = [name for items in inv.data.values() for name in items]
    assert names, f"{path.name} lists no objects"
    for name in names:
        if name != "None":
            assert locate(name) is not None, f"{path.name}: {name} does not import"


# --- API reference plan ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan():
    packages = api_reference.public_packages("ratlip_layers")
    return {p.__name__: p for p in packages}, api_reference.plan(packages)


def test_root_and_layers_are_planned_root_first(plan):
    packages, _ = plan
    ordered = api_reference.order_packages(list(packages.values()), "ratlip_layers", ("layers",))
    assert ordered[0].__name__ == "ratlip_layers"
    assert ordered[1].__name__ == "ratlip_layers.layers"


def test_reexported_objects_are_documented_once_under_their_defining_package(plan):
    _, pages = plan
    root = {e.name: e for e in pages["ratlip_layers"]}
    assert root["RATBlock"].home == "ratlip_layers.layers"
    assert root["LSTMState"].home == "ratlip_layers.layers"
    assert root["LSTMState"].kind == "data"
    names_by_object: dict[int, set[str]] = {}
    for entries in pages.values():
        for e in entries:
            names_by_object.setdefault(id(e.obj), set()).add(e.fullname)
    assert all(len(names) == 1 for names in names_by_object.values())


def test_every_public_name_of_the_root_is_planned(plan):
    _, pages = plan
    planned = {e.name for e in pages["ratlip_layers"]}
    assert planned == {n for n in ratlip_layers.__all__ if not n.startswith("__")}


def test_constant_docstring_comes_from_the_defining_module():
    assert api_reference.attribute_doc("ratlip_layers.layers", "LSTMState").startswith("An LSTM state")


def test_generate_writes_pages_and_removes_stale_ones(tmp_path):
    stale = tmp_path / "api" / "generated" / "ratlip_layers.layers.Gone.rst"
    stale.parent.mkdir(parents=True)
    stale.write_text("stale")
    api_reference.generate(tmp_path, "api", "ratlip_layers", ("layers",))
    page = (tmp_path / "api" / "generated" / "ratlip_layers.layers.RATBlock.rst").read_text()
    assert ".. autoclass:: RATBlock" in page and "from ratlip_layers import RATBlock" in page
    assert "ratlip_layers.layers" in (tmp_path / "api" / "index.rst").read_text()
    assert not stale.exists()


# --- benchmark tables ------------------------------------------------------------------------------


def test_format_value_rounds_numbers_and_escapes_markup():
    assert benchmark_tables.format_value(3.14159265) == "3.142"
    assert benchmark_tables.format_value(52033.1) == "52,033"
    assert benchmark_tables.format_value("a*b_c") == "a\\*b\\_c"
    assert benchmark_tables.format_value([64, 256]) == "64, 256"
    assert benchmark_tables.format_value({"rounds": 5}) == "rounds = 5"


def _row(block: str, impl: str, ms: float) -> dict:
    return {
        "block": block,
        "shape": [64, 256, 16, 16],
        "impl": impl,
        "median_s": ms / 1e3,
        "speedup_vs_baseline": 1.0,
    }


# The shape of benchmarks/bench_blocks.py's output: metadata, records, a nested object with records.
RESULT = {
    "date": "2026-11-27T10:00:00+00:00",
    "device": "cuda",
    "device_name": "NVIDIA H100 80GB HBM3",
    "dtypes": ["float32", "bfloat16"],
    "rows": [
        _row("DFBlock", "baseline", 1.0),
        _row("DFBlock", "ours", 0.5),
        _row("RATBlock", "ours", 0.61234),
    ],
    "roofline": {
        "copy_bytes_per_s": 2.9e12,
        "rows": [{"op": "modulation forward", "fraction_of_copy": 0.72}],
    },
}


def test_results_become_fields_grouped_tables_and_subsections():
    text = "\n".join(benchmark_tables.render_result("blocks-h100", RESULT))
    assert text.index(":device\\_name: NVIDIA H100") < text.index(":date:")  # device and date come first
    assert ":dtypes: float32, bfloat16" in text
    assert ".. list-table:: rows\\: DFBlock" in text and ".. list-table:: rows\\: RATBlock" in text
    assert "612" in text
    assert "roofline\n^^^^^^^^" in text and ".. list-table:: rows\n" in text


def test_a_label_that_restates_other_columns_is_left_out_of_the_table():
    rows = [
        {"block": "RATBlock", "label": f"RATBlock B{b} C32 px7", "batch": b, "shape": "C32 px7",
         "impl": "ours", "median_s": 1e-3}
        for b in (16, 64)
    ]
    text = "\n".join(benchmark_tables.render_result("cpu", {"rows": rows}))
    assert "label" not in text and "RATBlock B16" not in text  # restated by block, batch and shape
    assert "- batch" in text and "- shape" in text and "C32 px7" in text
    rows[0]["label"] = "RATBlock, the first case"  # a label that says something else stays
    assert "- label" in "\n".join(benchmark_tables.render_result("cpu", {"rows": rows}))


def _build(tmp_path: Path, files: dict[str, bytes]) -> str:
    src = tmp_path / "src"
    (src / "results").mkdir(parents=True)
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\nextensions = ['benchmark_tables']\n"
    )
    (src / "index.rst").write_text(
        "Bench\n=====\n\n.. benchmark-results:: results\n   :empty: Nothing yet.\n"
    )
    for name, data in files.items():
        (src / "results" / name).write_bytes(data)
    assert build_main(["-W", "-q", "-b", "html", str(src), str(tmp_path / "out")]) == 0
    return (tmp_path / "out" / "index.html").read_text()


def test_benchmark_results_render_with_their_plot(tmp_path):
    import io

    import matplotlib.pyplot as plt

    png = io.BytesIO()
    plt.imsave(png, [[0.0, 1.0], [1.0, 0.0]], format="png")
    html = _build(tmp_path, {"blocks.json": json.dumps(RESULT).encode(), "blocks.png": png.getvalue()})
    for text in (
        "blocks",
        "NVIDIA H100 80GB HBM3",
        "2026-11-27",
        "RATBlock",
        "612",
        "<table",
        "blocks.png",
    ):
        assert text in html


def test_benchmark_results_say_so_when_there_are_none(tmp_path):
    assert "Nothing yet." in _build(tmp_path, {})


# --- figures ---------------------------------------------------------------------------------------


def test_figures_are_drawn_once_and_rewritten_only_on_change(tmp_path):
    written = figures.generate(tmp_path)
    assert {"cat_vs_rat.svg", "generator.svg", "shapes_data.png"} <= set(written)
    svg = (tmp_path / "generator.svg").read_text()
    assert "<svg" in svg
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    figures.generate(tmp_path)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes
