"""Resolve Python references written under an object's defining path to its documented name.

Type hints name classes by where they are defined, not where users import them from:
``nn.LSTMCell`` in a signature becomes ``torch.nn.modules.rnn.LSTMCell``, and a class re-exported by
``ratlip_layers.clip`` becomes ``ratlip_layers.clip.text.TextEncoding``. Neither name is in PyTorch's
inventory or among this project's documented objects, so the link would be lost (and ``-n`` makes
that an error). When a Python reference is missing, this resolver imports its target and, if the
object is documented here or listed in an intersphinx inventory under another name, resolves the
reference to that name. Objects are matched by identity, never by a name guess.
"""

from __future__ import annotations

import builtins
import importlib
import sys
import weakref
from typing import Any

from docutils.nodes import Element
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.ext import intersphinx

_MISSING = object()

# One table per build environment: names -> objects, computed once all documents are read.
_TABLES: weakref.WeakKeyDictionary[BuildEnvironment, dict[int, str]] = weakref.WeakKeyDictionary()


def locate(name: str) -> Any:
    """The object that the dotted ``name`` denotes, or ``None`` when nothing by that name imports.

    The longest importable module prefix is imported and the rest looked up as attributes; unlike
    ``pydoc.locate`` this finds ``torch.optim.optimizer.Optimizer``, whose module its parent
    package deletes from its namespace.
    """
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                return None
        return obj
    return getattr(builtins, name, None)


def _known_names(env: BuildEnvironment) -> list[str]:
    """Documented Python objects first, then every Python object of the intersphinx inventories."""
    names = list(env.get_domain("py").objects)
    inventory = intersphinx.InventoryAdapter(env).main_inventory
    for objtype, items in inventory.items():
        if objtype.startswith("py:") and objtype != "py:module":
            names.extend(items)
    return names


def _canonical_table(env: BuildEnvironment) -> dict[int, str]:
    table = _TABLES.get(env)
    if table is None:
        table = {}
        for name in _known_names(env):
            obj = locate(name)
            # The first name wins: documented objects come before inventory entries.
            if obj is not None and id(obj) not in table:
                table[id(obj)] = name
        _TABLES[env] = table
    return table


def _defining_module(source: str) -> str | None:
    """The module whose docstring holds a reference: autodoc sets ``source`` to "...docstring of a.b.C.f"."""
    _, found, dotted = source.rpartition("docstring of ")
    parts = dotted.split(".") if found else []
    while parts and ".".join(parts) not in sys.modules:
        parts.pop()
    return ".".join(parts) or None


def _candidates(node: pending_xref) -> list[str]:
    """Where a reference's target may live, as Python would look a name up from the docstring.

    A short name (``ShuffleAttention`` in a docstring shown on a re-exporting package's page) is
    tried in the documented class, the page's module, the module defining the documented class and
    the module the docstring was written in.
    """
    target = node["reftarget"]
    module, cls = node.get("py:module"), node.get("py:class")
    candidates = []
    if module and cls:
        candidates.append(f"{module}.{cls}.{target}")
        defining = getattr(locate(f"{module}.{cls}"), "__module__", None)
        if isinstance(defining, str):
            candidates.append(f"{defining}.{target}")
    if module:
        candidates.append(f"{module}.{target}")
    defining = _defining_module(node.source or "")
    if defining:
        candidates.append(f"{defining}.{target}")
    return [*candidates, target]


def _resolve_alias(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: Element
) -> Element | None:
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    obj = next((found for found in map(locate, _candidates(node)) if found is not None), None)
    if obj is None:
        return None
    canonical = _canonical_table(env).get(id(obj))
    if canonical is None or canonical == target:
        return None
    alias = node.deepcopy()
    alias["reftarget"] = canonical
    resolved = env.get_domain("py").resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], canonical, alias, contnode
    )
    return resolved if resolved is not None else intersphinx.missing_reference(app, env, alias, contnode)


def setup(app: Sphinx) -> dict[str, object]:
    app.setup_extension("sphinx.ext.intersphinx")
    # After intersphinx's own lookup (500), before the Python domain silences built-ins (900).
    app.connect("missing-reference", _resolve_alias, priority=700)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
