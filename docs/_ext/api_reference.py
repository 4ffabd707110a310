"""The API reference, generated at build time from each package's ``__all__``.

Every public (sub)package of the configured root package gets a page listing its ``__all__``, and
every public object a page of its own, so nothing is maintained by hand: a name added to an
``__all__`` appears at the next build, a package that does not exist yet simply has no page. An
object exported by several packages (``RATBlock`` by ``ratlip_layers`` and ``ratlip_layers.layers``)
is documented once, under its *home*: the deepest exporting package that contains its defining
module; the other packages link to it.

The pages are written into ``<srcdir>/<api_reference_dir>/`` (ignored by git) before Sphinx looks for
documents, and a page is rewritten only when its text changes, so incremental builds stay
incremental. Every public class and function must carry a runnable example (a ``>>>`` doctest) and every
public constant a docstring; a missing one is reported as a warning, which ``-W`` makes an error.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.typing import stringify_annotation

logger = logging.getLogger(__name__)

_SECTIONS = (("class", "Classes"), ("function", "Functions"), ("data", "Constants and types"))


@dataclass(frozen=True)
class Entry:
    """One public object: its public ``name``, the package documenting it and its kind."""

    name: str
    home: str
    kind: str  # "class", "exception", "function" or "data"
    obj: object

    @property
    def fullname(self) -> str:
        return f"{self.home}.{self.name}"


def public_packages(root: str) -> list[types.ModuleType]:
    """``root`` and its public subpackages (no ``_private`` part) that define ``__all__``, root first."""
    found = []
    pending = [importlib.import_module(root)]
    while pending:
        package = pending.pop(0)
        if hasattr(package, "__all__"):
            found.append(package)
        for info in pkgutil.iter_modules(package.__path__, prefix=package.__name__ + "."):
            if info.ispkg and not info.name.rpartition(".")[2].startswith("_"):
                # Imported without a safety net: a package that fails to import must fail the build.
                pending.append(importlib.import_module(info.name))
    return found


def order_packages(
    packages: list[types.ModuleType], root: str, order: tuple[str, ...]
) -> list[types.ModuleType]:
    """Root first, then the subpackages named in ``order`` (relative names), then the rest by name."""
    rank = {f"{root}.{name}": i for i, name in enumerate(order)}
    return sorted(packages, key=lambda p: (p.__name__ != root, rank.get(p.__name__, len(rank)), p.__name__))


def _kind(obj: object) -> str | None:
    if inspect.ismodule(obj):
        return None  # subpackages get pages of their own
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if inspect.isroutine(obj):
        return "function"
    return "data"


def _home(obj: object, exporters: list[str]) -> str:
    """The deepest exporting package that contains the object's defining module."""
    defining = getattr(obj, "__module__", None) if (inspect.isclass(obj) or inspect.isroutine(obj)) else None
    containing = [p for p in exporters if isinstance(defining, str) and f"{defining}.".startswith(f"{p}.")]
    return max(containing or exporters, key=lambda p: p.count("."))


def plan(packages: list[types.ModuleType]) -> dict[str, list[Entry]]:
    """Map each package name to the entries of its ``__all__``, every entry carrying its home."""
    exporters: dict[int, list[str]] = {}
    for package in packages:
        for name in package.__all__:
            exporters.setdefault(id(getattr(package, name)), []).append(package.__name__)
    pages: dict[str, list[Entry]] = {}
    for package in packages:
        entries = []
        for name in package.__all__:
            if name.startswith("__"):
                continue  # __version__ and friends are not API objects
            obj = getattr(package, name)
            kind = _kind(obj)
            if kind is not None:
                entries.append(Entry(name, _home(obj, exporters[id(obj)]), kind, obj))
        pages[package.__name__] = entries
    return pages


def _title(text: str, underline: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("_", "\\_").replace("*", "\\*")
    return f"{escaped}\n{underline * len(escaped)}\n"


def _indent(text: str, prefix: str = "   ") -> str:
    return "\n".join(prefix + line if line.strip() else "" for line in text.splitlines())


@functools.cache
def attribute_doc(home: str, name: str) -> str | None:
    """The docstring that follows the assignment of the data object ``home.name``, if any."""
    obj = getattr(importlib.import_module(home), name)
    # The defining module was imported by the package that exports the object; nothing new is imported.
    modules = [
        module_name
        for module_name, module in sorted(sys.modules.items())
        if f"{module_name}.".startswith(f"{home}.") and getattr(module, name, None) is obj
    ]
    for module_name in modules:
        lines = ModuleAnalyzer.for_module(module_name).find_attr_docs().get(("", name))
        if lines:
            return "\n".join(lines).strip()
    return None


def _summary(doc: str) -> str:
    """The first sentence of a docstring's first paragraph."""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    sentence, dot, _ = paragraph.partition(". ")
    return sentence + "." if dot else paragraph


def _is_type_alias(obj: object) -> bool:
    return isinstance(obj, (types.GenericAlias, types.UnionType)) or type(obj).__module__ == "typing"


def render_object_page(entry: Entry, import_from: str) -> str:
    """The page of one object: an import line and its autodoc (or data) directive."""
    parts = [
        _title(entry.name, "="),
        f".. currentmodule:: {entry.home}\n",
        f"``from {import_from} import {entry.name}``\n",
    ]
    if entry.kind in ("class", "exception"):
        parts.append(f".. auto{entry.kind}:: {entry.name}\n   :members:\n   :show-inheritance:\n")
    elif entry.kind == "function":
        parts.append(f".. autofunction:: {entry.name}\n")
    else:
        doc = attribute_doc(entry.home, entry.name) or ""
        value = stringify_annotation(entry.obj) if _is_type_alias(entry.obj) else None
        directive = f".. py:data:: {entry.name}\n"
        if value is not None:
            directive += f"   :value: {value}\n"
        parts.append(directive + "\n" + _indent(doc) + "\n")
    return "\n".join(parts)


def _check_documented(entry: Entry) -> None:
    if entry.kind == "data" and attribute_doc(entry.home, entry.name) is None:
        logger.warning("public constant %s has no docstring", entry.fullname, type="api_reference")
    # Exceptions are exempt: how they arise is shown by the examples of what raises them.
    if entry.kind in ("class", "function") and ">>>" not in (entry.obj.__doc__ or ""):
        logger.warning(
            "public %s %s has no runnable Example (a '>>>' doctest) in its docstring",
            entry.kind,
            entry.fullname,
            type="api_reference",
        )


_ROLES = {"class": "class", "exception": "exc", "function": "func", "data": "data"}


def _doc(entry: Entry) -> str:
    return (attribute_doc(entry.home, entry.name) if entry.kind == "data" else entry.obj.__doc__) or ""


def _link_table(entries: list[Entry]) -> str:
    """A two-column table, name and first sentence, for objects autosummary cannot summarise.

    autosummary would describe a constant by its type's docstring (dict's, tuple's), so constants
    and re-exports (linked to their home pages) get this table instead.
    """
    rows = "\n".join(
        f"   * - :py:{_ROLES[e.kind]}:`~{e.fullname}`\n     - {_summary(inspect.cleandoc(_doc(e)))}"
        for e in entries
    )
    return f".. list-table::\n   :widths: 30 70\n\n{rows}\n"


def render_package_page(package: types.ModuleType, entries: list[Entry]) -> str:
    """A package's page: its docstring, tables of the objects it is home to, links to re-exports."""
    name = package.__name__
    parts = [_title(name, "="), f".. automodule:: {name}\n", f".. currentmodule:: {name}\n"]
    own = [e for e in entries if e.home == name]
    for kind, heading in _SECTIONS:
        section = [e for e in own if e.kind == kind or (kind == "class" and e.kind == "exception")]
        if not section:
            continue
        parts.append(_title(heading, "-"))
        if kind == "data":
            toc = "\n".join(f"   generated/{e.fullname}" for e in section)
            parts.append(f"{_link_table(section)}\n.. toctree::\n   :hidden:\n\n{toc}\n")
        else:
            table = "\n".join(f"   {e.name}" for e in section)
            parts.append(f".. autosummary::\n   :toctree: generated\n   :nosignatures:\n\n{table}\n")
    others = [e for e in entries if e.home != name]
    if others:
        parts.append(
            f"{_title('Re-exported', '-')}\n"
            f"Importable from ``{name}``, documented with the package that defines them.\n\n"
            f"{_link_table(others)}"
        )
    return "\n".join(parts)


def render_index(packages: list[types.ModuleType]) -> str:
    toc = "\n".join(f"   {p.__name__}" for p in packages)
    return (
        f"{_title('API reference', '=')}\n"
        "Every public class and function, one page per package, generated at build time from each\n"
        "package's ``__all__``. Each entry lists its arguments, return value and tensor shapes, and ends\n"
        "with a runnable example that CI executes as a doctest. The examples assume\n"
        "``import torch``, ``from torch import nn`` and ``from ratlip_layers import *``; names of the\n"
        "subpackages are imported where they are used.\n\n"
        f".. toctree::\n   :maxdepth: 1\n\n{toc}\n"
    )


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def generate(srcdir: Path, out_name: str, root: str, order: tuple[str, ...]) -> None:
    """Write the reference under ``srcdir / out_name``, removing pages of objects that are gone."""
    out = srcdir / out_name
    packages = order_packages(public_packages(root), root, order)
    pages = plan(packages)
    pages_by_object = {}
    for package in packages:
        for entry in pages[package.__name__]:
            pages_by_object.setdefault(entry.fullname, (entry, package.__name__))
    written = {out / "index.rst": render_index(packages)}
    for package in packages:
        written[out / f"{package.__name__}.rst"] = render_package_page(package, pages[package.__name__])
    # The first package to list an object is the shallowest: the shortest import line.
    for fullname, (entry, import_from) in pages_by_object.items():
        _check_documented(entry)
        written[out / "generated" / f"{fullname}.rst"] = render_object_page(entry, import_from)
    for path, text in written.items():
        _write_if_changed(path, text)
    for stale in set(out.rglob("*.rst")) - set(written):
        stale.unlink()


def _skip_member(app: Sphinx, what: str, name: str, obj: object, skip: bool, options: object) -> bool | None:
    if type(obj).__name__ == "_tuplegetter":
        return True  # a NamedTuple field: the class's Attributes section documents it
    if name == "forward" and inspect.isfunction(obj):
        return False  # shown even undocumented: its signature is the module's call signature
    return None


def _generate(app: Sphinx, config: Config) -> None:
    generate(
        Path(app.srcdir),
        config.api_reference_dir,
        config.api_reference_package,
        tuple(config.api_reference_order),
    )


def setup(app: Sphinx) -> dict[str, object]:
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.autosummary")
    app.add_config_value("api_reference_package", "", "env", types=frozenset({str}))
    app.add_config_value("api_reference_dir", "api", "env", types=frozenset({str}))
    app.add_config_value("api_reference_order", (), "env", types=frozenset({tuple, list}))
    app.connect("config-inited", _generate)
    app.connect("autodoc-skip-member", _skip_member)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
