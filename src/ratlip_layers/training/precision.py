"""Mixed precision for the two networks: autocast plus, for fp16, one GradScaler per network."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["SCALE_FLOOR", "SCALE_RESET", "Precision"]

SCALE_FLOOR = 64.0
"""The reference's floor: a scale that falls below it is put back to :data:`SCALE_RESET`, since
MA-GP's sixth power keeps producing overflows that would otherwise drive the scale to zero."""
SCALE_RESET = 16384.0
"""The scale a GradScaler is put back to when it falls below :data:`SCALE_FLOOR`."""


class Precision:
    """``--amp off|bf16|fp16`` on one device type.

    ``bf16`` needs no loss scaling; ``fp16`` scales each network's loss with its own
    ``torch.amp.GradScaler`` (their state is checkpointed) and applies the reference's scale floor.

    Args:
        mode: ``"off"``, ``"bf16"`` or ``"fp16"``.
        device_type: ``"cuda"`` or ``"cpu"``.

    Example:
        >>> from ratlip_layers.training import Precision
        >>> p = Precision("bf16", "cpu")
        >>> with p.autocast():
        ...     y = nn.Linear(2, 2)(torch.ones(1, 2))
        >>> y.dtype, p.scaler_g.is_enabled()
        (torch.bfloat16, False)
    """

    def __init__(self, mode: str = "off", device_type: str = "cpu") -> None:
        dtypes = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
        if mode not in dtypes:
            raise ValueError(f"amp mode must be one of {tuple(dtypes)}, got {mode!r}")
        self.mode = mode
        self.device_type = device_type
        self.dtype = dtypes[mode]
        self.scaler_g = torch.amp.GradScaler(device_type, enabled=mode == "fp16")
        self.scaler_d = torch.amp.GradScaler(device_type, enabled=mode == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for forward passes (a no-op with ``"off"``)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    @staticmethod
    def step(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer, *, skip: bool = False) -> None:
        """``scaler.step`` and ``update``, with the scale floor.

        With ``skip`` (a non-finite loss) the optimiser does not step, but an fp16 scaler still backs
        off, as it would for non-finite gradients; otherwise a too-large scale would skip every step.
        """
        if not skip:
            scaler.step(optimizer)
            scaler.update()
        elif scaler.is_enabled():
            scaler.update(scaler.get_scale() * scaler.get_backoff_factor())
        if scaler.is_enabled() and scaler.get_scale() < SCALE_FLOOR:
            scaler.update(SCALE_RESET)

    def state_dict(self) -> dict[str, dict]:
        """Both scalers' states."""
        return {"scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict()}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        """Restore both scalers; states saved without fp16 (empty) leave fresh scalers."""
        for name in ("scaler_g", "scaler_d"):
            if state.get(name):
                getattr(self, name).load_state_dict(state[name])

    def __repr__(self) -> str:
        return f"Precision(mode={self.mode!r}, device_type={self.device_type!r})"
