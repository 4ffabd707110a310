"""Atomic file writes, and reads that report a bad file by its path, for every module with files."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors import SafetensorError


def write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_atomic(path: str | Path, write: Callable[[Path], None] | bytes) -> Path:
    """``write`` (a function of a path, or bytes to write synced) a temporary file beside ``path``,
    then rename it into place: a reader never sees half a file. Creates the parent folders."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file where a folder of the path should be
        raise ValueError(f"cannot write {path}: a file stands where its folder {path.parent} "
                         "should be") from None
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        if isinstance(write, bytes):
            write_synced(tmp, write)
        else:
            write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_reported(file: Path, reader: Callable[[Path], Any], error: type[Exception] = ValueError) -> Any:
    """``reader(file)``; a failure to read it is raised as ``error`` naming ``file``."""
    # What a reader of a truncated or corrupt file raises (json's and UTF-8's errors are ValueErrors).
    try:
        return reader(file)
    except (SafetensorError, pickle.UnpicklingError, EOFError, OSError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise error(f"{file} is unreadable: {first}") from None
