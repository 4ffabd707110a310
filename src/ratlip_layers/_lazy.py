"""PEP 562 lazy attributes, for the packages whose names pull in heavy imports (open_clip, torchvision)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any


def lazy_attributes(
    package: str, lazy: dict[str, str], namespace: dict[str, Any], exported: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: name ``n`` in ``lazy`` is imported from the
    submodule ``lazy[n]`` on first use and stored in ``namespace`` (the package's ``globals()``)."""

    def __getattr__(name: str) -> Any:
        if name in lazy:
            namespace[name] = getattr(importlib.import_module(f".{lazy[name]}", package), name)
            return namespace[name]  # stored: later lookups skip this function
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exported))

    return __getattr__, __dir__
