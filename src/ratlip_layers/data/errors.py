"""Errors raised by the datasets: each names the path at fault and, for layouts, what was expected."""

from __future__ import annotations

import pickle

__all__ = ["PREPARE_DOCS", "DataFileError", "DatasetLayoutError", "UnsafePickleError"]

PREPARE_DOCS = "docs/training.rst, section 'Preparing the datasets'"
"""Where the dataset layouts and the steps to build them are documented."""


class DatasetLayoutError(FileNotFoundError):
    """A data directory lacks files the dataset needs, or holds them in the wrong shape."""


class DataFileError(OSError):
    """One image or caption file cannot be read; the message names its path."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something other than lists, tuples and strings."""
