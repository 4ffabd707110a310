"""``.. benchmark-results:: DIR``: the committed benchmark results, rendered at build time.

Every ``DIR/*.json`` becomes a section, read without assumptions about its schema beyond "a JSON
object": scalars, lists of scalars and flat objects become a field list (device and date first);
every list of flat records becomes a table, split into one table per value of the records' first
key when that key groups them (one table per block); every other nested object becomes a
subsection, read the same way. Every ``DIR/*.png`` becomes a figure. ``DIR`` is relative to the
source directory. With no result files the directive says so plainly. The page is re-read whenever
the folder or a result file changes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

_SCALARS = (str, int, float, bool, type(None))
_RST_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_|[]<>:"})
_FIRST_FIELDS = ("device_name", "device", "date")
_UNDERLINES = "-~^"


def format_value(value: Any) -> str:
    """A field or table cell: numbers to four significant digits (large ones with thousands
    separators), lists and objects inline, everything escaped for reStructuredText."""
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{format_value(k)} = {format_value(v)}" for k, v in value.items())
    if isinstance(value, bool) or value is None:
        text = "–" if value is None else str(value)
    elif isinstance(value, (int, float)) and abs(value) >= 1e4:
        text = f"{value:,.0f}"  # throughputs and byte counts: digits, not an exponent
    elif isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return text.translate(_RST_SPECIAL)


def _is_plain(value: Any) -> bool:
    """A scalar, or a list of scalars."""
    return isinstance(value, _SCALARS) or (
        isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value)
    )


def _is_record(value: Any) -> bool:
    return isinstance(value, dict) and all(_is_plain(v) for v in value.values())


def _records(value: Any) -> list[dict[str, Any]] | None:
    """A non-empty list of flat records, or ``None``."""
    if isinstance(value, list) and value and all(_is_record(v) for v in value):
        return value
    return None


def _title(text: str, level: int) -> list[str]:
    escaped = text.translate(_RST_SPECIAL)
    return [escaped, _UNDERLINES[min(level, len(_UNDERLINES) - 1)] * len(escaped), ""]


def _time_unit(seconds: list[float]) -> tuple[str, float]:
    """A readable unit for a column of times: the one the middle value reads best in."""
    values = sorted(abs(v) for v in seconds if isinstance(v, (int, float)) and not isinstance(v, bool))
    middle = values[len(values) // 2] if values else 1.0
    if middle < 1e-3:
        return "µs", 1e6
    if middle < 1.0:
        return "ms", 1e3
    return "s", 1.0


def _is_time(column: str) -> bool:
    return column.endswith("_s") and not column.endswith("per_s")


def _is_speedup(column: str) -> bool:
    return column.startswith("speedup")


def _sig3(value: float) -> str:
    text = f"{value:.3g}"
    return f"{float(text):,.0f}" if "e" in text else text


def _cell(column: str, value: Any, scale: float) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if _is_time(column):
            return _sig3(value * scale)
        if _is_speedup(column):
            return f"{_sig3(value)}×"
    return format_value(value)


def _header(column: str, unit: str) -> str:
    if _is_time(column):
        return format_value(f"{column[:-2]} ({unit})")
    if _is_speedup(column):
        return format_value(column.replace("_", " "))
    return format_value(column)


def _restates(column: str, records: list[dict[str, Any]], others: list[str]) -> bool:
    """Whether every value of ``column`` is a label pieced together from two or more of the
    record's cells in ``others``: each word of it is a word of one of them, or one with a letter
    in front (``"LSTMAffine B16 C32 px7"`` beside block ``LSTMAffine``, batch 16 and shape
    ``C32 px7``). A cell that merely repeats part of such a label is kept."""
    for record in records:
        value = record.get(column)
        if not isinstance(value, str) or not value.strip():
            return False
        words = {
            key: set(str(record[key]).split())
            for key in others
            if isinstance(record.get(key), (str, int)) and not isinstance(record.get(key), bool)
        }
        sources = set()
        for word in value.split():
            found = {key for key, cell in words.items() if word in cell or word[1:] in cell}
            if not found:
                return False
            sources |= found
        if len(sources) < 2:
            return False
    return True


def _table(title: str, records: list[dict[str, Any]], drop: str | None = None) -> list[str]:
    """A table with the speedup columns first and times in a readable unit, 3 significant figures.

    A label column that only restates other columns is left out: at a laptop's width it pushed
    the times off the side of the page."""
    every = list(dict.fromkeys(key for record in records for key in record))
    columns = [c for c in every if c != drop]
    for column in list(columns):
        if _restates(column, records, [c for c in every if c != column and (c in columns or c == drop)]):
            columns.remove(column)
    columns = [c for c in columns if _is_speedup(c)] + [c for c in columns if not _is_speedup(c)]
    unit, scale = _time_unit([r.get(c) for r in records for c in columns if _is_time(c)])
    header = [_header(column, unit) for column in columns]
    rows = [[_cell(column, record.get(column), scale) for column in columns] for record in records]
    lines = [f".. list-table:: {format_value(title)}", "   :header-rows: 1", ""]
    for cells in (header, *rows):
        lines.append(f"   * - {cells[0]}")
        lines.extend(f"     - {cell}" for cell in cells[1:])
    return [*lines, ""]


def _tables(key: str, records: list[dict[str, Any]]) -> list[str]:
    """One table, or one per value of the first key when that key groups the records."""
    first = next(iter(records[0]))
    groups = list(dict.fromkeys(record.get(first) for record in records))
    if not 1 < len(groups) < len(records) or not all(isinstance(g, str) for g in groups):
        return _table(key, records)
    lines = []
    for group in groups:
        lines.extend(_table(f"{key}: {group}", [r for r in records if r.get(first) == group], drop=first))
    return lines


# The headline compares our eager layer with the straightforward re-statement ("baseline") and with
# the reference implementation's layer ("reference"), case by case (same label, mode and dtype).
_RIVALS = (("baseline", "the straightforward re-statement"), ("reference", "the reference's layer"))


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def headline(records: list[dict[str, Any]]) -> list[str]:
    """Bullets: per block, how much faster (or slower) ours is than each rival; empty when the
    records are not timings of implementations."""
    if not all({"impl", "median_s"} <= record.keys() for record in records):
        return []
    def case(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r.get("block"), r.get("label"), r.get("mode"), r.get("dtype"))
    ours = {case(r): r["median_s"] for r in records if r["impl"] == "ours" and r.get("variant", "eager") == "eager"}
    lines = []
    for block in dict.fromkeys(r.get("block") for r in records):
        parts = []
        for impl, name in _RIVALS:
            ratios = [
                r["median_s"] / ours[case(r)]
                for r in records
                if r.get("block") == block and r["impl"] == impl and case(r) in ours
                and r["median_s"] > 0 and ours[case(r)] > 0
            ]
            if not ratios:
                continue
            mean = _geomean(ratios)
            verdict = f"**{_sig3(mean)}× faster**" if mean >= 1 else f"**{_sig3(1 / mean)}× slower**"
            spread = (f", {_sig3(min(ratios))}–{_sig3(max(ratios))}× across {len(ratios)} cases"
                      if len(ratios) > 1 else ", 1 case")
            parts.append(f"{verdict} than {name} (geometric mean{spread})")
        if parts:
            lines.append(f"* ``{block}``: ours is " + "; ".join(parts) + ".")
    if not lines:
        return []
    return ["Speedup of the eager layers of this package, measured as the ratio of median times:", "",
            *lines, ""]


def render_mapping(data: dict[str, Any], level: int, skip: tuple[str, ...] = ()) -> list[str]:
    """Fields for the plain entries of ``data``, tables for its records, subsections for the rest."""
    order = [k for k in _FIRST_FIELDS if k in data] + [
        k for k in data if k not in _FIRST_FIELDS and k != "title"
    ]
    order = [k for k in order if k not in skip]
    fields = [k for k in order if _is_plain(data[k]) or _is_record(data[k])]
    lines = [f":{format_value(k)}: {format_value(data[k])}" for k in fields]
    lines.append("")
    for key in order:
        value = data[key]
        records = _records(value)
        if records is not None:
            lines.extend(_tables(key, records))
        elif isinstance(value, dict) and key not in fields:
            lines.extend([*_title(key, level + 1), *render_mapping(value, level + 1)])
    return lines


def render_result(name: str, data: dict[str, Any], figure: list[str] = ()) -> list[str]:
    """reStructuredText lines for one result file, a section titled by its ``title`` or file name:
    the headline ratios, the plot, the result tables, and the run's metadata last."""
    device = data.get("device_name") or data.get("device")
    title = str(data.get("title") or (f"{name}: {device}" if device and device != name else name))
    lines = _title(title, 0)
    results = {k: v for k, v in data.items() if _records(v) is not None}
    for records in results.values():
        lines.extend(headline(records))
    lines.extend(figure)
    for key, records in results.items():
        lines.extend(_tables(key, records))
    details = [k for k in data if k not in results and k != "title"]
    if details:
        lines.extend(_title(f"Run details ({name})", 1))
        lines.extend(render_mapping({k: data[k] for k in details}, 1))
    return lines


class BenchmarkResults(SphinxDirective):
    """Render every result file of a folder; the folder is the directive's argument."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {"empty": directives.unchanged}

    def _figure(self, path: Path) -> list[str]:
        self.env.note_dependency(str(path))
        # The scripts' plots are wide (one panel per block and mode): the page shows them scaled
        # to its width, linked to the full-size image (Sphinx links every scaled image).
        return [
            f".. figure:: /{Path(self.arguments[0]) / path.name}",
            "   :width: 100%",
            f"   :alt: {format_value(path.stem)}: the benchmark script's plot of these results,"
            " one panel per block and mode",
            "",
            f"   {format_value(path.stem)}: the benchmark script's plot of these results"
            f" (``{path.name}``); open the image for its full size.",
            "",
        ]

    def run(self) -> list[nodes.Node]:
        folder = (Path(self.env.srcdir) / self.arguments[0]).resolve()
        # The folder's own time stamp changes when a result file is added or removed.
        self.env.note_dependency(str(folder))
        results = sorted(folder.glob("*.json"))
        plots = sorted(folder.glob("*.png"))
        lines: list[str] = []
        for path in results:
            self.env.note_dependency(str(path))
            # A run's plot (same file stem) goes in its section, after the headline; other plots follow.
            figure = [line for plot in plots if plot.stem == path.stem for line in self._figure(plot)]
            lines.extend(render_result(path.stem, json.loads(path.read_text(encoding="utf-8")), figure))
        stems = {path.stem for path in results}
        lines.extend(line for plot in plots if plot.stem not in stems for line in self._figure(plot))
        if not lines:
            message = (
                self.options.get("empty")
                or f"No benchmark results are committed yet ({self.arguments[0]} is empty)."
            )
            lines = [message, ""]
        container = nodes.section()
        nested_parse_with_titles(self.state, StringList(lines, source=str(folder)), container)
        return container.children


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("benchmark-results", BenchmarkResults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
