"""``.. benchmark-results:: DIR``: the committed benchmark results, rendered at build time.

Every ``DIR/*.json`` becomes a section: its scalar entries (device, date, versions, settings)
a field list, each list of records (or mapping of records) a table, with the records' keys as
columns. Every ``DIR/*.png`` becomes a figure. ``DIR`` is relative to the source directory. With no
result files the directive says so plainly. The page is re-read whenever the folder or a result file
changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

_SCALARS = (str, int, float, bool, type(None))
_RST_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_|[]<>:"})


def format_value(value: Any) -> str:
    """A table cell: floats to four significant digits, everything escaped for reStructuredText."""
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif value is None:
        text = "–"
    else:
        text = str(value)
    return text.translate(_RST_SPECIAL)


def _is_record(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, (*_SCALARS, list)) for v in value.values())


def _records(value: Any) -> list[dict[str, Any]] | None:
    """A list of flat records, a mapping of name -> flat record (name becomes a column), or ``None``."""
    if isinstance(value, list) and value and all(_is_record(v) for v in value):
        return value
    if isinstance(value, dict) and value and all(_is_record(v) for v in value.values()):
        return [{"name": name, **record} for name, record in value.items()]
    return None


def _title(text: str, underline: str) -> list[str]:
    escaped = text.translate(_RST_SPECIAL)
    return [escaped, underline * len(escaped), ""]


def _table(records: list[dict[str, Any]]) -> list[str]:
    columns = list(dict.fromkeys(key for record in records for key in record))
    header = [format_value(column) for column in columns]
    rows = [[format_value(record.get(column)) for column in columns] for record in records]
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for cells in (header, *rows):
        lines.append(f"   * - {cells[0]}")
        lines.extend(f"     - {cell}" for cell in cells[1:])
    return [*lines, ""]


def render_result(name: str, data: dict[str, Any]) -> list[str]:
    """reStructuredText lines for one result file: a section with fields and tables."""
    lines = _title(str(data.get("title", name)), "-")
    fields = {k: v for k, v in data.items() if isinstance(v, _SCALARS) and k != "title"}
    for key, value in data.items():
        if _is_record(value) and _records(value) is None:
            fields.update({f"{key} {k}": v for k, v in value.items()})
    lines.extend(f":{format_value(key)}: {format_value(value)}" for key, value in fields.items())
    lines.append("")
    for key, value in data.items():
        records = _records(value)
        if records is not None:
            lines.extend([f"**{format_value(key)}**", "", *_table(records)])
    return lines


class BenchmarkResults(SphinxDirective):
    """Render every result file of a folder; the folder is the directive's argument."""

    required_arguments = 1
    option_spec = {"empty": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        folder = (Path(self.env.srcdir) / self.arguments[0]).resolve()
        self.env.note_dependency(str(folder))
        results = sorted(folder.glob("*.json"))
        plots = sorted(folder.glob("*.png"))
        lines: list[str] = []
        for path in results:
            self.env.note_dependency(str(path))
            lines.extend(render_result(path.stem, json.loads(path.read_text(encoding="utf-8"))))
        for path in plots:
            self.env.note_dependency(str(path))
            lines.extend([f".. figure:: /{Path(self.arguments[0]) / path.name}", "   :width: 100%", ""])
            lines.extend([f"   {format_value(path.stem)}", ""])
        if not lines:
            message = self.options.get("empty") or f"No benchmark results are committed yet ({self.arguments[0]} is empty)."
            lines = [message, ""]
        container = nodes.section() if results else nodes.container()
        nested_parse_with_titles(self.state, StringList(lines, source=str(folder)), container)
        return container.children


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("benchmark-results", BenchmarkResults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
