"""Exponential moving average of a network's weights, the usual way to get a cleaner GAN generator."""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .._checks import check_float, check_module

__all__ = ["EMA", "trainable_state"]


def trainable_state(module: nn.Module) -> dict[str, Tensor]:
    """The live tensors a network learns: its ``trainable_state_dict()`` (without a frozen CLIP) if it
    has one, else its ``state_dict()``."""
    method = getattr(module, "trainable_state_dict", None)
    return dict(method() if callable(method) else module.state_dict())


def _check_keys(expected: Mapping[str, Tensor], got: Mapping[str, Tensor], what: str) -> None:
    if got.keys() != expected.keys():
        raise ValueError(
            f"{what} keys differ from the EMA's: missing {sorted(expected.keys() - got.keys())[:5]}, "
            f"unexpected {sorted(got.keys() - expected.keys())[:5]}"
        )


class EMA:
    """One averaged copy of a network, ``average = decay * average + (1 - decay) * weights``, as timm's
    ``ModelEmaV3``.

    Follows ``module`` (the unwrapped network, not a DDP wrapper or a compiled one); the attribute
    ``module`` is the copy (eval mode, no gradients) to sample and evaluate with. Only the learned
    state is copied (floats averaged, integer buffers copied); the frozen CLIP stays shared. ``decay``
    is in ``[0, 1)``; with ``warmup`` it is at most ``(1 + n) / (10 + n)`` after ``n`` updates.

    Example:
        >>> from ratlip_layers.training import EMA
        >>> net = nn.Linear(2, 2)
        >>> ema = EMA(net, decay=0.5, warmup=False)
        >>> with torch.no_grad():
        ...     _ = net.weight.add_(1.0)
        >>> ema.update(net)
        >>> torch.allclose(ema.module.weight, net.weight - 0.5)
        True
    """

    def __init__(self, module: nn.Module, *, decay: float = 0.999, warmup: bool = True) -> None:
        check_module("module", module)
        if not 0.0 <= check_float("decay", decay) < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay, self.warmup, self.num_updates = float(decay), bool(warmup), 0
        learned = trainable_state(module).keys()
        # deepcopy's memo maps an object to its copy: mapped to themselves, frozen parts are shared.
        shared = {id(t): t for name, t in module.state_dict(keep_vars=True).items() if name not in learned}
        # Not imported: no FrozenCLIP exists before its module is loaded, and it loads open_clip.
        frozen = sys.modules.get("ratlip_layers.clip.frozen")
        if frozen is not None:
            shared.update({id(m): m for m in module.modules() if isinstance(m, frozen.FrozenCLIP)})
        self.module = copy.deepcopy(module, memo=dict(shared)).eval()
        for parameter in self.module.parameters():
            if id(parameter) not in shared:
                parameter.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        warm = (1 + self.num_updates) / (10 + self.num_updates) if self.warmup else 1.0
        return min(self.decay, warm)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Move the average towards ``module``'s current weights."""
        live, average = trainable_state(module), self.state_dict()
        _check_keys(average, live, "module")
        floats = [name for name, t in average.items() if t.is_floating_point()]
        weight = 1.0 - self.current_decay()
        torch._foreach_lerp_([average[n] for n in floats], [live[n] for n in floats], weight)
        for name, tensor in average.items():
            if not tensor.is_floating_point():
                tensor.copy_(live[name])
        self.num_updates += 1

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged tensors (``module``'s own), keyed like the network's learned state."""
        return trainable_state(self.module)

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Tensor], num_updates: int | None = None) -> None:
        """Restore averaged tensors and, optionally, the update count that drives the warm-up."""
        average = self.state_dict()
        _check_keys(average, state, "state")
        for name, tensor in state.items():
            if tensor.shape != average[name].shape:
                expected = tuple(average[name].shape)
                raise ValueError(f"EMA tensor {name!r} has shape {tuple(tensor.shape)}, expected {expected}")
            average[name].copy_(tensor)
        if num_updates is not None:
            self.num_updates = int(num_updates)

    def __repr__(self) -> str:
        name = type(self.module).__name__
        return f"EMA({name}, decay={self.decay}, warmup={self.warmup}, updates={self.num_updates})"
