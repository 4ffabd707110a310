"""Errors raised by the datasets: each names the path at fault and, for layouts, what was expected."""

from __future__ import annotations

import pickle

__all__ = ["PREPARE_DOCS", "DataFileError", "DatasetLayoutError", "UnsafePickleError"]

PREPARE_DOCS = "docs/training.rst, section 'Preparing the datasets'"
"""Where the dataset layouts and the steps to build them are documented."""


# Each is also a ValueError, so that ``except ValueError`` catches every bad input the library names.


class DatasetLayoutError(FileNotFoundError, ValueError):
    """A data directory lacks files the dataset needs, or holds them in the wrong shape
    (a ``FileNotFoundError`` and a ``ValueError``)."""


class DataFileError(OSError, ValueError):
    """One image or caption file cannot be read; the message names its path (an ``OSError`` and a
    ``ValueError``)."""


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for something other than lists, tuples and strings (an ``UnpicklingError``
    and a ``ValueError``)."""
