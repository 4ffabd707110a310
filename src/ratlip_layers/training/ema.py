"""Exponential moving average of a network's weights, the usual way to get a cleaner GAN generator."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ["EMA", "trainable_state"]


def trainable_state(module: nn.Module) -> dict[str, Tensor]:
    """The state a network learns: its ``trainable_state_dict()`` if it has one (RATLIP networks
    leave their frozen CLIP out that way), else its full ``state_dict()``. Tensors share storage
    with the live parameters and buffers."""
    method = getattr(module, "trainable_state_dict", None)
    return dict(method() if callable(method) else module.state_dict())


class EMA:
    """Keeps ``shadow = decay * shadow + (1 - decay) * weights`` for a network's learned state.

    Floating tensors (parameters and buffers such as BatchNorm statistics) are averaged; integer
    buffers are copied. Early on, the decay is lowered to ``(1 + n) / (10 + n)`` after ``n``
    updates, so the average is not dominated by the random initialisation.

    Args:
        module: the network to follow (the unwrapped module, not a DDP wrapper).
        decay: the decay, in ``[0, 1)``.
        warmup: use the lowered early decay.

    Example:
        >>> from ratlip_layers.training import EMA
        >>> net = nn.Linear(2, 2)
        >>> ema = EMA(net, decay=0.5, warmup=False)
        >>> with torch.no_grad():
        ...     _ = net.weight.add_(1.0)
        >>> ema.update(net)
        >>> torch.allclose(ema.state_dict()["weight"], net.weight - 0.5)
        True
    """

    def __init__(self, module: nn.Module, *, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.shadow = {name: t.detach().clone() for name, t in trainable_state(module).items()}

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Move the average towards ``module``'s current weights."""
        live = trainable_state(module)
        if live.keys() != self.shadow.keys():
            raise ValueError(
                f"module state keys differ from the EMA's: missing {sorted(self.shadow.keys() - live.keys())[:5]}, "
                f"unexpected {sorted(live.keys() - self.shadow.keys())[:5]}"
            )
        weight = 1.0 - self.current_decay()
        floats = [name for name, t in self.shadow.items() if t.is_floating_point()]
        torch._foreach_lerp_([self.shadow[n] for n in floats], [live[n].detach() for n in floats], weight)
        for name, tensor in self.shadow.items():
            if not tensor.is_floating_point():
                tensor.copy_(live[name])
        self.num_updates += 1

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged tensors, keyed like ``module``'s (trainable) state dict."""
        return dict(self.shadow)

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Tensor], num_updates: int | None = None) -> None:
        """Restore averaged tensors (and, optionally, the update count that drives the warm-up)."""
        if state.keys() != self.shadow.keys():
            raise ValueError(
                f"EMA state keys differ: missing {sorted(self.shadow.keys() - state.keys())[:5]}, "
                f"unexpected {sorted(state.keys() - self.shadow.keys())[:5]}"
            )
        for name, tensor in state.items():
            if tensor.shape != self.shadow[name].shape:
                raise ValueError(
                    f"EMA tensor {name!r} has shape {tuple(tensor.shape)}, expected {tuple(self.shadow[name].shape)}"
                )
            self.shadow[name].copy_(tensor)
        if num_updates is not None:
            self.num_updates = int(num_updates)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Write the averaged weights into ``module`` (e.g. a copy of the generator used to sample)."""
        live = trainable_state(module)
        for name, tensor in self.shadow.items():
            live[name].copy_(tensor)

    def __repr__(self) -> str:
        return f"EMA(decay={self.decay}, warmup={self.warmup}, tensors={len(self.shadow)}, updates={self.num_updates})"
