"""Errors for bad files and layouts; each is also a ``ValueError``, as every bad input the library names."""

from __future__ import annotations

import pickle

__all__ = ["DataFileError", "DatasetLayoutError", "UnsafePickleError"]

PREPARE_DOCS = "docs/training.rst, section 'Preparing the datasets'"  # named by layout errors


class DatasetLayoutError(FileNotFoundError, ValueError):
    """A data directory lacks files the dataset needs, or holds them in the wrong shape."""


class DataFileError(OSError, ValueError):
    """A file (image, caption, split pickle, weights, statistics) named in the message is unreadable."""


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for something other than lists, tuples and strings."""
