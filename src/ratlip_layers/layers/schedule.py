"""Conditioning schedule: every LSTM step and every ``gamma``/``beta`` of many layers, up front.

RAT's LSTM steps and all the modulation heads depend only on the condition (and the recurrent
state), never on the image features. A network can therefore compute the modulations of all its
conditioned layers before its first convolution, in a handful of batched matmuls, instead of two
dozen tiny launches interleaved with the convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_state, check_tensor
from .affine import Affine, DFBlock
from .modulation import ModulationHead, modulate, modulate_twice
from .rat import LSTMAffine, LSTMState, RATBlock, lstm_pointwise

__all__ = ["ConditioningSchedule", "ScheduledModulations"]

_LAYER_TYPES = (Affine, DFBlock, LSTMAffine, RATBlock)


class ScheduledModulations(NamedTuple):
    """What :class:`ConditioningSchedule` returns.

    Attributes:
        modulations: one tuple per scheduled layer, in order: ``(gamma, beta)`` for
            :class:`Affine`/:class:`LSTMAffine`, ``(gamma1, beta1, gamma2, beta2)`` for
            :class:`DFBlock`/:class:`RATBlock`, each ``(B, C)``, exactly what the layer's own
            ``modulation``/``step`` would return.
        state: the LSTM state after the last recurrent layer (the input state when there is none).

    Example:
        >>> layers = [RATBlock(12, 8, hidden_size=4), DFBlock(12, 16)]
        >>> out = ConditioningSchedule(layers)(torch.randn(2, 12))
        >>> [len(m) for m in out.modulations], out.modulations[1][0].shape, out.state[0].shape
        ([4, 4], torch.Size([2, 16]), torch.Size([2, 4]))
    """

    modulations: tuple[tuple[Tensor, ...], ...]
    state: LSTMState | None


class _Unit(NamedTuple):
    """One affine of a scheduled layer: its head and, for RAT, its LSTM cell."""

    head: ModulationHead
    cell: nn.LSTMCell | None


def _units(layer: nn.Module) -> list[_Unit]:
    if isinstance(layer, Affine):
        return [_Unit(layer.head, None)]
    if isinstance(layer, DFBlock):
        return [_Unit(layer.affine1.head, None), _Unit(layer.affine2.head, None)]
    if isinstance(layer, LSTMAffine):
        return [_Unit(layer.head, layer.cell)]
    return [_Unit(layer.affine1.head, layer.affine1.cell), _Unit(layer.affine2.head, layer.affine2.cell)]


class ConditioningSchedule:
    """Computes the modulations of a sequence of conditioned layers in a few batched matmuls.

    Given the layers of a network in order (any mix of :class:`Affine`, :class:`DFBlock`,
    :class:`LSTMAffine` and :class:`RATBlock` sharing one condition), a call computes:

    1. one matmul of the condition with the input weights of every distinct LSTM cell and the
       first layer of every CAT head, packed together;
    2. the LSTM recurrence, one small step per recurrent affine in layer order (the state threads
       from each recurrent affine to the next, as it does between :class:`RATBlock` calls);
    3. one batched matmul per channel count for the first layers of the recurrent heads;
    4. one batched matmul per channel count for the output layers of every head.

    The results equal the layers' own ``modulation``/``step`` outputs (same parameters, same
    maths, different grouping of the matmuls); gradients flow to every parameter. The schedule
    holds references to the layers, not copies: it is not an ``nn.Module`` and adds nothing to
    a ``state_dict``; build it once, next to the layers, and call it every forward.

    Packing copies weights once per call (a few MB for a full generator): on GPUs that costs far
    less than the launches it saves; on a CPU it pays off at network scale, not for a single block.

    Args:
        layers: the conditioned layers, in the order their recurrent state flows.

    Example:
        >>> blocks = [RATBlock(16, 8, hidden_size=4), DFBlock(16, 8), RATBlock(16, 12, hidden_size=4)]
        >>> schedule = ConditioningSchedule(blocks)
        >>> cond, x = torch.randn(2, 16), torch.randn(2, 8, 5, 5)
        >>> mods, state = schedule(cond)
        >>> x = schedule.apply(0, x, mods[0])
        >>> len(mods), mods[2][0].shape, state[0].shape
        (3, torch.Size([2, 12]), torch.Size([2, 4]))
    """

    def __init__(self, layers: Sequence[nn.Module]) -> None:
        layers = tuple(layers)
        if not layers:
            raise ValueError("layers must hold at least one conditioned layer, got an empty sequence")
        for index, layer in enumerate(layers):
            if not isinstance(layer, _LAYER_TYPES):
                raise TypeError(
                    "layers must be Affine, DFBlock, LSTMAffine or RATBlock modules, "
                    f"got {type(layer).__name__} at index {index}"
                )
        cond_dims = {layer.cond_dim for layer in layers}
        if len(cond_dims) != 1:
            raise ValueError(f"all layers must share one cond_dim, got {sorted(cond_dims)}")
        hidden = {layer.hidden_size for layer in layers if isinstance(layer, (LSTMAffine, RATBlock))}
        if len(hidden) > 1:
            raise ValueError(f"all recurrent layers must share one hidden_size, got {sorted(hidden)}")
        self.layers = layers
        self.cond_dim = cond_dims.pop()
        self.hidden_size = hidden.pop() if hidden else None
        # The whole plan is fixed here, as lists of indices, so a call is straight-line tensor code
        # that torch.compile traces without graph breaks.
        units = [_units(layer) for layer in layers]
        flat = [unit for layer_units in units for unit in layer_units]
        self._cells: list[nn.LSTMCell] = []
        for unit in flat:
            if unit.cell is not None and not any(unit.cell is cell for cell in self._cells):
                self._cells.append(unit.cell)
        self._cat_heads = [unit.head for unit in flat if unit.cell is None]
        self._recurrent = [unit for unit in flat if unit.cell is not None]
        self._cell_index = [
            next(i for i, cell in enumerate(self._cells) if cell is unit.cell) for unit in self._recurrent
        ]
        # Heads in output order: CAT heads first, then recurrent heads in recurrence order.
        self._heads = self._cat_heads + [unit.head for unit in self._recurrent]
        self._layer_heads = [
            [next(k for k, head in enumerate(self._heads) if head is unit.head) for unit in layer_units]
            for layer_units in units
        ]
        self._recurrent_groups = _group_by_channels([unit.head for unit in self._recurrent])
        self._output_groups = _group_by_channels(self._heads)

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        names = ", ".join(type(layer).__name__ for layer in self.layers)
        return f"ConditioningSchedule([{names}])"

    def __call__(self, cond: Tensor, state: LSTMState | None = None) -> ScheduledModulations:
        """Compute every layer's modulation.

        Args:
            cond: the condition ``(B, cond_dim)``.
            state: the LSTM state entering the first recurrent layer; ``None`` means zeros.

        Returns:
            :class:`ScheduledModulations`.
        """
        check_tensor("cond", cond, 2, "(B, cond_dim)")
        if cond.shape[1] != self.cond_dim:
            raise ValueError(
                f"cond must have cond_dim = {self.cond_dim} features, got shape {tuple(cond.shape)}"
            )
        if state is not None and self.hidden_size is not None:
            check_state(state, cond.shape[0], self.hidden_size)
        cell_proj, cat_hidden = self._project(cond)
        hiddens = self._recur(cell_proj, state)
        if self._recurrent:
            state = hiddens[-1]
        first_layers = cat_hidden + self._recurrent_first_layers([h for h, _ in hiddens])
        outputs = _output_layers(self._heads, first_layers, self._output_groups)
        modulations = tuple(
            tuple(t for k in positions for t in outputs[k]) for positions in self._layer_heads
        )
        return ScheduledModulations(modulations, state)

    def apply(self, index: int, x: Tensor, modulation: tuple[Tensor, ...]) -> Tensor:
        """Apply layer ``index``'s scheduled ``modulation`` to the feature map ``x``.

        Equals that layer's forward with the same condition and state (the feature-map half of it).
        """
        layer = self.layers[index]
        if isinstance(layer, (DFBlock, RATBlock)):
            return modulate_twice(x, *modulation, layer.negative_slope)
        return modulate(x, *modulation)

    def _project(self, cond: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Step 1: the condition times every cell's input weights and every CAT head's first layer."""
        weights = [cell.weight_ih for cell in self._cells] + [head.fc1.weight for head in self._cat_heads]
        biases = [_cell_bias(cell) for cell in self._cells] + [head.fc1.bias for head in self._cat_heads]
        dtype = weights[0].dtype
        packed = F.linear(cond.to(dtype), torch.cat(weights), torch.cat(biases))
        sizes = [w.shape[0] for w in weights]
        cells = len(self._cells)
        cell_part, cat_part = packed.split([sum(sizes[:cells]), sum(sizes[cells:])], dim=1)
        return list(cell_part.split(sizes[:cells], dim=1)), list(F.relu(cat_part).split(sizes[cells:], dim=1))

    def _recur(self, cell_proj: list[Tensor], state: LSTMState | None) -> list[LSTMState]:
        """Step 2: the LSTM recurrence over the recurrent affines, in layer order."""
        states = []
        if state is None and self._recurrent:
            # Zeros, like nn.LSTMCell: W_hh then stays in the graph (DDP expects every parameter used).
            h = c = cell_proj[0].new_zeros(cell_proj[0].shape[0], self._cells[0].hidden_size)
        else:
            h, c = state if state is not None else (None, None)
        for unit, cell_index in zip(self._recurrent, self._cell_index):
            proj = cell_proj[cell_index]
            gates = torch.addmm(proj, h.to(proj.dtype), unit.cell.weight_hh.t())
            h, c = lstm_pointwise(gates, c.to(gates.dtype))
            states.append((h, c))
        return states

    def _recurrent_first_layers(self, hs: list[Tensor]) -> list[Tensor]:
        """Step 3: the recurrent heads' first layers, one batched matmul per channel count."""
        out: list[Tensor | None] = [None] * len(hs)
        for indices in self._recurrent_groups:
            heads = [self._recurrent[i].head for i in indices]
            if len(indices) == 1:
                hidden = F.linear(hs[indices[0]], heads[0].fc1.weight, heads[0].fc1.bias).unsqueeze(0)
            else:
                weight = torch.stack([head.fc1.weight for head in heads]).transpose(1, 2)
                bias = torch.stack([head.fc1.bias for head in heads]).unsqueeze(1)
                hidden = torch.baddbmm(bias, torch.stack([hs[i] for i in indices]), weight)
            for i, h in zip(indices, F.relu(hidden).unbind(0)):
                out[i] = h
        return out  # type: ignore[return-value]


def _cell_bias(cell: nn.LSTMCell) -> Tensor:
    """The cell's two biases folded into one, or zeros for a cell built with ``bias=False``."""
    if cell.bias_ih is None:
        return cell.weight_ih.new_zeros(cell.weight_ih.shape[0])
    return cell.bias_ih + cell.bias_hh


def _group_by_channels(heads: list[ModulationHead]) -> list[list[int]]:
    """Indices of ``heads`` grouped by channel count, groups in order of first appearance."""
    groups: dict[int, list[int]] = {}
    for i, head in enumerate(heads):
        groups.setdefault(head.num_features, []).append(i)
    return list(groups.values())


def _output_layers(
    heads: list[ModulationHead], hidden: list[Tensor], groups: list[list[int]]
) -> list[tuple[Tensor, Tensor]]:
    """Step 4: every head's ``gamma``/``beta`` output layer, one batched matmul per channel count."""
    out: list[tuple[Tensor, Tensor] | None] = [None] * len(heads)
    for indices in groups:
        channels = heads[indices[0]].num_features
        # Each head's hidden (B, 2C) holds its gamma and beta halves; (2K, B, C) after the cat.
        lhs = torch.cat([hidden[i].unflatten(1, (2, channels)).transpose(0, 1) for i in indices])
        weight = torch.cat([heads[i].weight2 for i in indices]).transpose(1, 2)
        bias = torch.cat([heads[i].bias2 for i in indices]).unsqueeze(1)
        result = torch.baddbmm(bias, lhs, weight).unbind(0)
        for k, i in enumerate(indices):
            out[i] = (result[2 * k], result[2 * k + 1])
    return out  # type: ignore[return-value]
