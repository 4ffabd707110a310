"""Exponential moving average of a network's weights, the usual way to get a cleaner GAN generator."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .._checks import check_float, check_module
from ..clip.frozen import FrozenCLIP

__all__ = ["EMA", "trainable_state"]


def trainable_state(module: nn.Module) -> dict[str, Tensor]:
    """The state a network learns: its ``trainable_state_dict()`` if it has one (RATLIP networks
    leave their frozen CLIP out that way), else its full ``state_dict()``. Tensors share storage
    with the live parameters and buffers."""
    method = getattr(module, "trainable_state_dict", None)
    return dict(method() if callable(method) else module.state_dict())


class EMA:
    """One averaged copy of a network: ``average = decay * average + (1 - decay) * weights``.

    ``module`` is a copy of the network, in eval mode and without gradients, that holds the
    average: sample and evaluate with it directly. Only the learned state (the network's
    ``trainable_state_dict()``, else its ``state_dict()``) is copied and averaged: floating
    parameters and buffers such as BatchNorm statistics; integer buffers are copied. The frozen CLIP
    and any other tensor outside it stay shared with the network, so the copy costs the learned
    weights only. Early on, the decay is lowered to ``(1 + n) / (10 + n)`` after ``n`` updates, so
    the average is not dominated by the random initialisation. The pattern is timm's ``ModelEmaV3``.

    Args:
        module: the network to follow (the unwrapped module, not a DDP wrapper or a compiled one).
        decay: the decay, in ``[0, 1)``.
        warmup: use the lowered early decay.

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
        check_float("decay", decay)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        learned = trainable_state(module).keys()
        # deepcopy's memo maps an object to its copy: mapping the frozen tensors and CLIPs to
        # themselves makes the copy share them instead of duplicating them.
        shared = {id(t): t for name, t in module.state_dict(keep_vars=True).items() if name not in learned}
        shared.update({id(m): m for m in module.modules() if isinstance(m, FrozenCLIP)})
        self.module = copy.deepcopy(module, memo=dict(shared)).eval()
        for parameter in self.module.parameters():
            if id(parameter) not in shared:
                parameter.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Move the average towards ``module``'s current weights."""
        live, average = trainable_state(module), self.state_dict()
        if live.keys() != average.keys():
            raise ValueError(
                "module state keys differ from the EMA's: "
                f"missing {sorted(average.keys() - live.keys())[:5]}, "
                f"unexpected {sorted(live.keys() - average.keys())[:5]}"
            )
        floats = [name for name, t in average.items() if t.is_floating_point()]
        weight = 1.0 - self.current_decay()
        torch._foreach_lerp_([average[n] for n in floats], [live[n] for n in floats], weight)
        for name, tensor in average.items():
            if not tensor.is_floating_point():
                tensor.copy_(live[name])
        self.num_updates += 1

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged tensors, keyed like ``module``'s (trainable) state dict; they share storage
        with ``module``, so a :class:`ratlip_layers.models.RATLIPGenerator` loads them with
        ``load_trainable_state_dict``."""
        return trainable_state(self.module)

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Tensor], num_updates: int | None = None) -> None:
        """Restore averaged tensors (and, optionally, the update count that drives the warm-up)."""
        average = self.state_dict()
        if state.keys() != average.keys():
            raise ValueError(
                f"EMA state keys differ: missing {sorted(average.keys() - state.keys())[:5]}, "
                f"unexpected {sorted(state.keys() - average.keys())[:5]}"
            )
        for name, tensor in state.items():
            if tensor.shape != average[name].shape:
                raise ValueError(
                    f"EMA tensor {name!r} has shape {tuple(tensor.shape)}, "
                    f"expected {tuple(average[name].shape)}"
                )
            average[name].copy_(tensor)
        if num_updates is not None:
            self.num_updates = int(num_updates)

    def __repr__(self) -> str:
        return (
            f"EMA({type(self.module).__name__}, decay={self.decay}, warmup={self.warmup}, "
            f"updates={self.num_updates})"
        )
