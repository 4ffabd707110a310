"""Recurrent affine transformation (RAT): an LSTM cell whose time axis is the layer index."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_float, check_size, check_tensor, factory_kwargs
from .affine import check_inputs
from .config import repr_of, resolve_impl, set_sizes
from .modulation import ModulationHead, modulate, modulate_twice

__all__ = ["LSTMAffine", "LSTMState", "RATBlock", "StateFromNoise"]

LSTMState = tuple[Tensor, Tensor]
"""An LSTM state ``(h, c)``, each of shape ``(B, hidden_size)``."""


class StateFromNoise(nn.Module):
    """The initial recurrent state from the noise, as in RAT-GAN: ``(h0, c0)`` = one ``Linear(z)`` split.

    Shape:
        - noise: :math:`(B, \\text{noise\\_dim})`
        - output: ``(h0, c0)``, each :math:`(B, \\text{hidden\\_size})`

    Example:
        >>> h0, c0 = StateFromNoise(100, 64)(torch.randn(4, 100))
        >>> h0.shape, c0.shape
        (torch.Size([4, 64]), torch.Size([4, 64]))
    """

    def __init__(
        self, noise_dim: int, hidden_size: int, *,
        device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        set_sizes(self, noise_dim=noise_dim, hidden_size=hidden_size)
        self.proj = nn.Linear(noise_dim, 2 * hidden_size, **factory_kwargs(device, dtype))

    def forward(self, noise: Tensor) -> LSTMState:
        check_tensor("noise", noise, 2, "(B, noise_dim)")
        check_size("noise", noise, 1, self.noise_dim, "noise_dim")
        return self.proj(noise.to(self.proj.weight.dtype)).chunk(2, dim=1)

    extra_repr = repr_of("noise_dim", "hidden_size")


class LSTMAffine(nn.Module):
    """Recurrent affine transformation: one LSTM step on ``cond``, then ``gamma(h_t) * x + beta(h_t)``.

    The new state is returned beside the output, so a chain of layers shares one memory of the text.
    Each sample has its own state (the reference ran its LSTM along the batch axis instead).

    Args:
        cond_dim, num_features, hidden_size: sizes of ``cond`` (the LSTM's input), of ``x``'s
            channels ``C`` and of the LSTM state.
        cell: an ``nn.LSTMCell(cond_dim, hidden_size)`` shared with other layers; by default a new one.

    Shape:
        - x: :math:`(B, C, H, W)`
        - cond: :math:`(B, \\text{cond\\_dim})`
        - state: required, so that forgetting it raises: ``None`` (zeros) or ``(h, c)``, each
          :math:`(B, \\text{hidden\\_size})`. From zeros, :math:`h_0 = 0` and the cell's ``weight_hh``
          never trains: start from :class:`StateFromNoise`, or share one cell.
        - output: ``(out, (h, c))`` with ``out`` :math:`(B, C, H, W)`

    Example:
        >>> layer = LSTMAffine(16, 8, hidden_size=32)
        >>> x = torch.randn(2, 8, 4, 4)
        >>> out, (h, c) = layer(x, torch.randn(2, 16), None)   # None: start from zeros
        >>> torch.equal(out, x), h.shape
        (True, torch.Size([2, 32]))
    """

    def __init__(
        self, cond_dim: int, num_features: int, hidden_size: int = 64, *, cell: nn.LSTMCell | None = None,
        device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        set_sizes(self, cond_dim=cond_dim, num_features=num_features, hidden_size=hidden_size)
        factory = factory_kwargs(device, dtype)
        if cell is None:
            cell = nn.LSTMCell(cond_dim, hidden_size, **factory)
        elif not isinstance(cell, nn.LSTMCell):
            raise TypeError(f"cell must be an nn.LSTMCell or None, got {type(cell).__name__}")
        elif (cell.input_size, cell.hidden_size) != (cond_dim, hidden_size):
            raise ValueError(
                f"cell must be nn.LSTMCell(cond_dim, hidden_size) = nn.LSTMCell({cond_dim}, {hidden_size}), "
                f"got nn.LSTMCell({cell.input_size}, {cell.hidden_size})"
            )
        self.cell = cell
        self.head = ModulationHead(hidden_size, num_features, **factory)

    def step(self, cond: Tensor, state: LSTMState | None) -> tuple[Tensor, Tensor, LSTMState]:
        """Step the LSTM once; return ``(gamma, beta, (h, c))``. Unchecked, unlike :meth:`forward`."""
        weight_dtype = self.cell.weight_ih.dtype
        state = None if state is None else tuple(t.to(weight_dtype) for t in state)
        h, c = self.cell(cond.to(weight_dtype), state)
        return (*self.head(h), (h, c))

    def forward(self, x: Tensor, cond: Tensor, state: LSTMState | None) -> tuple[Tensor, LSTMState]:
        check_inputs(self, x, cond, state)
        gamma, beta, state = self.step(cond, state)
        return modulate(x, gamma, beta), state

    extra_repr = repr_of("cond_dim", "num_features", "hidden_size")


class RATBlock(nn.Module):
    """RAT block: LSTMAffine, LeakyReLU, LSTMAffine, LeakyReLU, with the state threaded through.

    :class:`~ratlip_layers.layers.DFBlock` with an explicit state: ``h = block(h, cond)`` becomes
    ``h, state = block(h, cond, state)``; :func:`~ratlip_layers.layers.convert_to_rat` converts a
    generator without touching its code.

    Args:
        cond_dim, num_features, hidden_size: as in :class:`LSTMAffine`.
        cell: an ``nn.LSTMCell(cond_dim, hidden_size)`` both affines share (RAT-GAN); by default one each.
        impl: how the block body is computed, as for :class:`~ratlip_layers.layers.DFBlock`.

    Shape:
        As :class:`LSTMAffine`: ``(x, cond, state)`` in, ``(out, (h, c))`` out.

    Example:
        >>> block = RATBlock(16, 8, hidden_size=32)
        >>> out, state = block(torch.randn(2, 8, 4, 4), torch.randn(2, 16), None)
        >>> out, state = block(out, torch.randn(2, 16), state)
        >>> out.shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(
        self, cond_dim: int, num_features: int, hidden_size: int = 64, *, cell: nn.LSTMCell | None = None,
        negative_slope: float = 0.2, impl: str | None = None,
        device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        set_sizes(self, cond_dim=cond_dim, num_features=num_features, hidden_size=hidden_size)
        self.negative_slope = check_float("negative_slope", negative_slope)
        self.impl = resolve_impl(impl)
        self.affine1, self.affine2 = (
            LSTMAffine(cond_dim, num_features, hidden_size, cell=cell, device=device, dtype=dtype) for _ in range(2)
        )

    def modulation(self, cond: Tensor, state: LSTMState | None) -> tuple[tuple[Tensor, ...], LSTMState]:
        """Step both affines; return ``((gamma1, beta1, gamma2, beta2), state)``."""
        gamma1, beta1, state = self.affine1.step(cond, state)
        gamma2, beta2, state = self.affine2.step(cond, state)
        return (gamma1, beta1, gamma2, beta2), state

    def forward(self, x: Tensor, cond: Tensor, state: LSTMState | None) -> tuple[Tensor, LSTMState]:
        check_inputs(self, x, cond, state)
        params, state = self.modulation(cond, state)
        return modulate_twice(x, *params, self.negative_slope, impl=self.impl), state

    extra_repr = repr_of("cond_dim", "num_features", "hidden_size", "negative_slope", "impl")
