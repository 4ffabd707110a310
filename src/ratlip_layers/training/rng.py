"""Capturing and restoring every random number generator a run uses, as plain tensors and ints.

The states are stored with ``torch.save`` and read back with ``torch.load(weights_only=True)``, so
NumPy arrays and Python tuples are converted to tensors and lists here.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["get_rng_state", "seed_everything", "set_rng_state"]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators.

    Example:
        >>> from ratlip_layers.training import seed_everything
        >>> seed_everything(3); a = torch.rand(2)
        >>> seed_everything(3); torch.equal(a, torch.rand(2))
        True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """The states of torch (CPU, and the current CUDA device if initialised), NumPy and Python, loadable with
    ``weights_only=True``.

    Example:
        >>> from ratlip_layers.training import get_rng_state, set_rng_state
        >>> state = get_rng_state(); a = torch.rand(2)
        >>> set_rng_state(state); torch.equal(a, torch.rand(2))
        True
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        # Only the current device's: each DDP rank drives one GPU.
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None,
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {
            "version": version,
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss_next,
        },
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured.

    Example:
        >>> import random
        >>> from ratlip_layers.training import get_rng_state, set_rng_state
        >>> state = get_rng_state(); first = random.random()
        >>> set_rng_state(state); random.random() == first
        True
    """
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss"]))
