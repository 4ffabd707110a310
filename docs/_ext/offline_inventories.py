"""Intersphinx without a network: inventories kept as plain text in the repository.

An ``intersphinx_mapping`` entry whose inventory location ends in ``.txt`` names a plain-text
inventory: the four header lines of a Sphinx ``objects.inv`` (version 2) followed by its body, one
``name domain:role priority uri dispname`` line per object, exactly what ``sphobjinv convert plain``
prints. Before intersphinx reads its mapping, each such file is compressed into a real
``objects.inv`` in the build's doctree folder and the entry is pointed at it, so links resolve to the
projects' real URLs while the build never touches the network.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

_HEADER_LINES = 4


def compile_inventory(text: str) -> bytes:
    """Turn a plain-text inventory into the bytes of a version-2 ``objects.inv``.

    Raises:
        ValueError: the text does not start with the version-2 header.
    """
    lines = text.splitlines(keepends=True)
    header = "".join(lines[:_HEADER_LINES])
    if not header.startswith("# Sphinx inventory version 2\n") or "zlib" not in header:
        raise ValueError(
            "a plain-text inventory must start with the four lines of a version-2 objects.inv header "
            f"('# Sphinx inventory version 2', '# Project: ...', '# Version: ...', '# ... zlib.'), got {header!r}"
        )
    body = "".join(line for line in lines[_HEADER_LINES:] if line.strip())
    return header.encode() + zlib.compress(body.encode(), 9)


def _compile_text_inventories(app: Sphinx, config: Config) -> None:
    out_dir = Path(app.doctreedir) / "inventories"
    for name, (uri, location) in list(config.intersphinx_mapping.items()):
        if not (isinstance(location, str) and location.endswith(".txt")):
            continue
        source = Path(app.srcdir) / location
        target = out_dir / f"{name}.inv"
        data = compile_inventory(source.read_text(encoding="utf-8"))
        if not target.is_file() or target.read_bytes() != data:
            out_dir.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        config.intersphinx_mapping[name] = (uri, str(target))


def setup(app: Sphinx) -> dict[str, object]:
    app.setup_extension("sphinx.ext.intersphinx")
    # Before intersphinx normalises the mapping (priority 800).
    app.connect("config-inited", _compile_text_inventories, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
