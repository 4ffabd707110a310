"""Keeping a shared CLIP frozen inside trainable networks, as a submodule so that ``.to(device)`` moves it."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from .build import freeze_clip

__all__ = ["FrozenCLIP", "WithFrozenCLIP"]


class FrozenCLIP(nn.Module):
    """Holds an open_clip ``model``, which several networks may share, frozen in place by
    :func:`freeze_clip`: no gradients, eval mode.

    Example:
        >>> from ratlip_layers.clip import FrozenCLIP
        >>> frozen = FrozenCLIP(nn.Linear(2, 2))
        >>> frozen.train().model.training, frozen.model.weight.requires_grad
        (False, False)
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = freeze_clip(model)

    def __repr__(self) -> str:
        # One line instead of CLIP's module tree, which would repeat in every holder's repr.
        num_params = sum(p.numel() for p in self.model.parameters())
        return f"FrozenCLIP({type(self.model).__name__}, {num_params:,} frozen parameters)"

    def train(self, mode: bool = True) -> FrozenCLIP:
        return super().train(False)  # a parent's .train() must not switch CLIP's dropout or norms


class WithFrozenCLIP(nn.Module):
    """Base class of the modules that hold a :class:`FrozenCLIP`: ``requires_grad_`` leaves CLIP frozen
    and the trainable state dict leaves CLIP's weights out.

    Example:
        >>> from ratlip_layers.clip import FrozenCLIP, WithFrozenCLIP
        >>> class Head(WithFrozenCLIP):
        ...     def __init__(self, clip_model):
        ...         super().__init__()
        ...         self.clip = FrozenCLIP(clip_model)
        ...         self.fc = nn.Linear(2, 1)
        >>> head = Head(nn.Linear(2, 2)).requires_grad_(True)
        >>> sorted(head.trainable_state_dict()), head.clip.model.weight.requires_grad
        (['fc.bias', 'fc.weight'], False)
    """

    def requires_grad_(self, requires_grad: bool = True):
        """Set ``requires_grad`` on this module's own parameters; the frozen CLIP stays frozen."""
        super().requires_grad_(requires_grad)
        for module in self.modules():
            if isinstance(module, FrozenCLIP):
                module.model.requires_grad_(False)
        return self

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """The state dict without the frozen CLIP's weights (parameters and buffers of this module)."""
        frozen = self.named_modules(remove_duplicate=False)
        prefixes = tuple(f"{name}." for name, module in frozen if isinstance(module, FrozenCLIP))
        return {k: v for k, v in self.state_dict().items() if not k.startswith(prefixes)}

    def load_trainable_state_dict(self, state_dict: Mapping[str, Tensor]) -> None:
        """Load what :meth:`trainable_state_dict` returned; ``ValueError`` on other keys or shapes."""
        expected = self.trainable_state_dict()
        missing = sorted(expected.keys() - state_dict.keys())
        unexpected = sorted(state_dict.keys() - expected.keys())
        if missing or unexpected:
            raise ValueError(f"state dict does not fit {type(self).__name__}: missing keys ({len(missing)}) "
                             f"{missing[:8]}, unexpected keys ({len(unexpected)}) {unexpected[:8]}")
        for key, value in state_dict.items():
            if value.shape != expected[key].shape:
                raise ValueError(f"state dict entry {key!r} must have shape {tuple(expected[key].shape)}, "
                                 f"got {tuple(value.shape)}")
        self.load_state_dict(dict(state_dict), strict=False)
