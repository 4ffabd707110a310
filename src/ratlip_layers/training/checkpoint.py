"""Atomic, resumable checkpoints: a directory ``step-00001234/`` of one ``<name>.safetensors`` per
network, ``state.pt`` (tensors and plain types, read with ``torch.load(weights_only=True)``) and
``config.json``, written under a temporary name, fsynced, then renamed into place, so that a crash
never leaves half a checkpoint where ``--resume`` would find it.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch import Tensor

from .._checks import check_device, check_path, check_positive_int
from .._io import read_reported, write_synced

__all__ = [
    "Checkpoint", "CheckpointError", "CheckpointManager", "get_rng_state", "load_checkpoint",
    "resolve_checkpoint", "save_checkpoint", "seed_everything", "set_rng_state",
]

STATE_FILE = "state.pt"
CONFIG_FILE = "config.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint file does not read back (the message names it), or no checkpoint of a run does."""


class Checkpoint(NamedTuple):
    """A loaded checkpoint: ``weights[name]`` per network, the training ``state`` and the ``config``.

    Example:
        >>> from ratlip_layers.training import CheckpointManager, load_checkpoint
        >>> import tempfile
        >>> path = CheckpointManager(tempfile.mkdtemp()).save(7, weights={"net": {"w": torch.ones(2)}},
        ...                                                   state={"step": 7}, config={"lr": 0.1})
        >>> ckpt = load_checkpoint(path)
        >>> ckpt.path.name, ckpt.weights["net"]["w"].tolist(), ckpt.state, ckpt.config
        ('step-00000007', [1.0, 1.0], {'step': 7}, {'lr': 0.1})
    """

    path: Path
    weights: dict[str, dict[str, Tensor]]
    state: dict[str, Any]
    config: dict[str, Any]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    path: str | Path, *, weights: Mapping[str, Mapping[str, Tensor]], state: Mapping[str, Any],
    config: Mapping[str, Any],
) -> Path:
    """Write the checkpoint directory ``path`` atomically: ``weights`` (network name -> state dict),
    ``state`` and ``config``; returns ``path``. A ``state`` that would not load back with
    ``weights_only=True`` (e.g. holding a ``Path``) or a ``config`` that is not JSON raises
    ``ValueError`` before anything is written."""
    path = Path(check_path("path", path))
    if path.exists() and not path.is_dir():
        raise ValueError(f"checkpoint path {path} exists and is not a directory; refusing to replace it")
    # Serialised and checked before touching the disk: refused now, not found at the next resume.
    for what, value in (("weights", weights), ("state", state), ("config", config)):
        if not isinstance(value, Mapping):
            raise TypeError(f"{what} must be a mapping, got {type(value).__name__}")
    files = {}
    for name, tensors in weights.items():
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", name) or name == "state":
            raise ValueError(f"weights name {name!r} must be a plain file stem other than 'state'")
        bad = type(tensors).__name__ if not isinstance(tensors, Mapping) else next(
            (f"{k!r} -> {type(t).__name__}" for k, t in tensors.items() if not isinstance(t, Tensor)), None
        )
        if bad is not None:
            raise TypeError(f"weights[{name!r}] must be a state dict of tensors, got {bad}")
        # Copies, so that tied or strided views serialise: safetensors refuses shared storage.
        files[f"{name}.safetensors"] = save(
            {k: t.detach().to("cpu", copy=True).contiguous() for k, t in tensors.items()}
        )
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    try:
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[-1]
        raise ValueError(f"state for {path} would not load back with weights_only=True: {reason}") from None
    files[STATE_FILE] = buffer.getvalue()
    try:
        files[CONFIG_FILE] = json.dumps(dict(config), indent=2, sort_keys=True).encode()
    except (TypeError, ValueError) as err:
        raise ValueError(f"config for {path} is not JSON-serialisable: {err}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, data in files.items():
            write_synced(tmp / name, data)
        _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed save leaves nothing behind
        raise
    old = path.parent / f".old-{path.name}-{os.getpid()}"
    if path.exists():
        os.rename(path, old)
    os.rename(tmp, path)
    _fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read the checkpoint directory ``path``, its tensors onto ``map_location``.

    Raises:
        CheckpointError: a file does not read back.

    Example:
        >>> from ratlip_layers.training import load_checkpoint
        >>> import tempfile
        >>> load_checkpoint(tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        ratlip_layers.training.checkpoint.CheckpointError: ... is not a checkpoint: it has no state.pt ...
    """
    path = Path(check_path("path", path))
    check_device("map_location", map_location)
    if not (path / STATE_FILE).is_file():
        raise CheckpointError(
            f"{path} is not a checkpoint: it has no {STATE_FILE} (a checkpoint directory holds "
            f"{STATE_FILE}, {CONFIG_FILE} and one .safetensors file per network)"
        )
    def read(file: Path, reader: Callable[[Path], Any]) -> Any:
        return read_reported(file, reader, CheckpointError)

    weights = {
        file.stem: read(file, lambda f: load_file(f, device=str(map_location)))
        for file in sorted(path.glob("*.safetensors"))
    }
    state = read(path / STATE_FILE, lambda f: torch.load(f, map_location=map_location, weights_only=True))
    config_file = path / CONFIG_FILE
    config = read(config_file, lambda f: json.loads(f.read_text())) if config_file.is_file() else {}
    return Checkpoint(path, weights, state, config)


def _step_of(path: Path) -> int | None:
    """The step of a complete checkpoint directory, else ``None``."""
    match = _STEP_DIR.match(path.name)
    if match is None or not (path / STATE_FILE).is_file() or not (path / CONFIG_FILE).is_file():
        return None
    return int(match.group(1))


class CheckpointManager:
    """Saves ``step-NNNNNNNN`` checkpoints atomically under ``root`` (``<run>/checkpoints``), keeping
    the newest ``keep``: older ones are deleted after each save.

    Example:
        >>> from ratlip_layers.training import CheckpointManager
        >>> import tempfile
        >>> manager = CheckpointManager(tempfile.mkdtemp(), keep=2)
        >>> for step in (1, 2, 3):
        ...     _ = manager.save(step, weights={}, state={"step": step}, config={})
        >>> [p.name for p in manager.checkpoints()]
        ['step-00000002', 'step-00000003']
    """

    def __init__(self, root: str | Path, *, keep: int = 3) -> None:
        self.root = Path(check_path("root", root))
        self.keep = check_positive_int("keep", keep)

    def path_for(self, step: int) -> Path:
        """Where the checkpoint of ``step`` goes."""
        return self.root / f"step-{step:08d}"

    def checkpoints(self) -> list[Path]:
        """The complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted((p for p in self.root.iterdir() if _step_of(p) is not None), key=_step_of)

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or ``None``."""
        return next(reversed(self.checkpoints()), None)

    def load_latest(
        self, *, on_skip: Callable[[str], None] = print, set_aside: bool = True
    ) -> Checkpoint | None:
        """Load the newest checkpoint that reads back (onto the CPU), ``None`` when there is none.

        A newer one that does not is renamed ``<name>.unreadable`` (kept, and ignored from then on)
        and ``on_skip`` is told why; under DDP only rank 0 renames (``set_aside=False`` elsewhere).
        Raises :class:`CheckpointError` when there are checkpoints but none reads back.
        """
        skipped = []
        for path in reversed(self.checkpoints()):
            try:
                return load_checkpoint(path)
            except CheckpointError as err:
                if not set_aside:
                    skipped.append(str(path))
                    continue
                aside, n = path.with_name(path.name + ".unreadable"), 1
                while aside.exists():
                    aside, n = path.with_name(f"{path.name}.unreadable-{n}"), n + 1
                path.rename(aside)
                skipped.append(str(aside))
                on_skip(f"skipped checkpoint {path} ({err}); kept it as {aside}")
        if skipped:
            unreadable = ", ".join(skipped)
            raise CheckpointError(f"no checkpoint in {self.root} reads back; unreadable: {unreadable}")
        return None

    def save(
        self, step: int, *, weights: Mapping[str, Mapping[str, Tensor]], state: Mapping[str, Any],
        config: Mapping[str, Any],
    ) -> Path:
        """Save the checkpoint of ``step``, then delete all but the newest ``keep`` and any temporary
        directory a killed run left."""
        path = save_checkpoint(self.path_for(step), weights=weights, state=state, config=config)
        for stale in self.checkpoints()[: -self.keep]:
            shutil.rmtree(stale)
        for leftover in self.root.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        return path

    def __repr__(self) -> str:
        return f"CheckpointManager(root={str(self.root)!r}, keep={self.keep})"


def resolve_checkpoint(path: str | Path) -> Path:
    """``path`` if it is a checkpoint directory, else the newest checkpoint of the run directory or
    ``checkpoints/`` directory ``path``."""
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    for root in (path / "checkpoints", path):
        latest = CheckpointManager(root).latest()
        if latest is not None:
            return latest
    raise CheckpointError(
        f"no checkpoint at {path}: expected a checkpoint directory (holding {STATE_FILE}) or a run "
        "directory with checkpoints/step-NNNNNNNN/ inside"
    )


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """The random states of torch (CPU, and the current CUDA device if initialised), NumPy and Python,
    as types that load with ``weights_only=True``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        # Only the current device's: each DDP rank drives one GPU.
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None,
        "numpy": {
            "kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached),
        },
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    numpy, python = state["numpy"], state["python"]
    keys = numpy["keys"].numpy().astype(np.uint32)
    np.random.set_state((numpy["kind"], keys, numpy["pos"], numpy["has_gauss"], numpy["cached"]))
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss"]))
