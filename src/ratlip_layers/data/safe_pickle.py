"""Reading ``filenames.pickle`` split files without running code: lists, tuples and strings need no
global, so an unpickler that refuses every global (``os.system`` too) reads a split file and nothing else."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

from .._checks import check_path
from .errors import DataFileError, UnsafePickleError

__all__ = ["load_filenames"]

_ALLOWED = "split pickles may only hold lists, tuples and strings"


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that imports no global, so it can only build plain containers and scalars."""

    def find_class(self, module: str, name: str):
        raise UnsafePickleError(f"refusing to load {module}.{name}: {_ALLOWED}")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing a persistent id: {_ALLOWED}")


def load_filenames(path: str | Path) -> list[str]:
    """Read the image keys of a ``train|test/filenames.pickle`` split file (Python 2 ``str`` as Latin-1);
    :class:`DataFileError` if it is unreadable, :class:`UnsafePickleError` if it holds anything but strings.

    Example:
        >>> import pickle, tempfile, pathlib
        >>> from ratlip_layers.data import load_filenames
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "filenames.pickle"
        >>> _ = path.write_bytes(pickle.dumps(["001.A/a_1", "002.B/b_2"]))
        >>> load_filenames(path)
        ['001.A/a_1', '002.B/b_2']
    """
    path = Path(check_path("path", path))
    try:
        keys = _RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except OSError as err:
        raise DataFileError(f"cannot read split file {path}: {err.strerror or err}") from None
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError) as err:
        raise DataFileError(f"{path} is not a readable pickle: {err}") from None
    if not isinstance(keys, (list, tuple)):
        raise UnsafePickleError(f"{path}: expected a list or tuple of strings, got {type(keys).__name__}")
    for i, key in enumerate(keys):
        if not isinstance(key, str):
            raise UnsafePickleError(f"{path}: expected a list or tuple of strings, item {i} is "
                                    f"{type(key).__name__} ({key!r:.60})")
    return list(keys)
