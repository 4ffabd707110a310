"""The registry of benchmark cases: what to build, with which inputs, at which shapes.

A case is one block at one shape. Its ``builders`` map an implementation name (``"ours"``,
``"baseline"``, optionally ``"reference"``) to a function returning a module; ``inputs`` makes the
call's arguments; ``call`` runs a module on them and returns the tensor that forward+backward
differentiates. Adding a block is one function decorated with :func:`register` that returns its
cases for a :class:`Plan` (phase 2 adds the generator-level rows this way).

Shapes are those of the ``paper`` preset (SPEC section 3): condition 612 (100 noise + 512 CLIP),
LSTM hidden 64, mapper RAT blocks at 7x7 with 32 and 64 channels, G-blocks from 8 to 224 px with
512..64 channels, batch 16 and 64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ratlip_layers import DFBlock, LSTMAffine, RATBlock, SAConv, ShuffleAttention

from .baselines import (
    BaselineDFBlock,
    BaselineLSTMAffine,
    BaselineRATBlock,
    BaselineSAConv,
    BaselineShuffleAttention,
    ReferenceLSTMAffine,
    ReferenceRATBlock,
)

__all__ = [
    "COND_DIM",
    "G_BLOCKS",
    "HIDDEN",
    "MAPPER_GRID",
    "REGISTRY",
    "Case",
    "Plan",
    "build_cases",
    "register",
]

COND_DIM = 612
HIDDEN = 64
MAPPER_GRID = 7
MAPPER_CHANNELS = (32, 64)
# (input channels, output channels, resolution) of the paper preset's six G-blocks.
G_BLOCKS = ((512, 512, 8), (512, 512, 16), (512, 512, 32), (512, 256, 64), (256, 128, 128), (128, 64, 224))
PAPER_BATCHES = (16, 64)


@dataclass(frozen=True)
class Plan:
    """Which shapes a run covers.

    Attributes:
        batches: batch sizes of the mapper rows (and of the G-block rows when they fit).
        g_blocks: G-block shapes ``(in, out, px)`` to cover.
        max_elements: rows whose feature map has more elements than this are skipped (and listed);
            ``None`` keeps everything.
        channel_scale: divides every channel count (``--quick`` uses tiny blocks).
    """

    batches: tuple[int, ...] = PAPER_BATCHES
    g_blocks: tuple[tuple[int, int, int], ...] = G_BLOCKS
    max_elements: int | None = None
    channel_scale: int = 1


@dataclass
class Case:
    """One block at one shape."""

    block: str
    batch: int
    shape: dict[str, int]
    builders: dict[str, Callable[[], nn.Module]]
    inputs: Callable[[torch.device, torch.dtype, torch.memory_format], tuple]
    call: Callable[[nn.Module, tuple], Tensor]
    elements: int
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        dims = " ".join(f"{k}{v}" for k, v in self.shape.items())
        return f"{self.block} B{self.batch} {dims}"


REGISTRY: dict[str, Callable[[Plan], list[Case]]] = {}


def register(name: str) -> Callable[[Callable[[Plan], list[Case]]], Callable[[Plan], list[Case]]]:
    """Register a function that returns the cases of block ``name`` for a plan."""

    def decorator(fn: Callable[[Plan], list[Case]]) -> Callable[[Plan], list[Case]]:
        REGISTRY[name] = fn
        return fn

    return decorator


def build_cases(plan: Plan, blocks: list[str] | None = None) -> tuple[list[Case], list[str]]:
    """All registered cases for ``plan`` (optionally only ``blocks``), and the labels of skipped rows."""
    cases, skipped = [], []
    for name, fn in REGISTRY.items():
        if blocks is not None and name not in blocks:
            continue
        for case in fn(plan):
            if plan.max_elements is not None and case.elements > plan.max_elements:
                skipped.append(case.label)
            else:
                cases.append(case)
    return cases, skipped


def _feature_inputs(batch: int, channels: int, size: int, with_cond: bool, with_state: bool):
    def make(device: torch.device, dtype: torch.dtype, memory_format: torch.memory_format) -> tuple:
        x = torch.randn(batch, channels, size, size, device=device, dtype=dtype)
        x = x.contiguous(memory_format=memory_format).requires_grad_()
        args: list[Tensor] = [x]
        if with_cond:
            args.append(torch.randn(batch, COND_DIM, device=device, dtype=dtype))
        if with_state:
            args.append(torch.randn(batch, HIDDEN, device=device, dtype=dtype))
            args.append(torch.randn(batch, HIDDEN, device=device, dtype=dtype))
        return tuple(args)

    return make


def _call_recurrent(module: nn.Module, args: tuple) -> Tensor:
    x, cond, h, c = args
    if isinstance(module, (ReferenceRATBlock, ReferenceLSTMAffine)):
        return module(x, cond)
    return module(x, cond, (h, c))[0]


def _call_conditioned(module: nn.Module, args: tuple) -> Tensor:
    return module(*args)


def _paired(ours: Callable[[], nn.Module], *others: tuple[str, Callable[[nn.Module], nn.Module]]):
    """Builders for ``ours`` and for implementations converted (weights copied) from a fresh ``ours``."""
    builders: dict[str, Callable[[], nn.Module]] = {"ours": ours}
    for name, convert in others:
        builders[name] = lambda convert=convert: convert(ours())
    return builders


def _mapper_rows(plan: Plan) -> list[tuple[int, int]]:
    return [(b, c // plan.channel_scale) for b in plan.batches for c in MAPPER_CHANNELS]


def _g_rows(plan: Plan, which: int) -> list[tuple[int, int, int]]:
    """``(batch, channels, px)`` per G-block; ``which`` picks the input (0) or output (1) channels."""
    return [(b, g[which] // plan.channel_scale, g[2]) for b in plan.batches for g in plan.g_blocks]


def _recurrent_case(block: str, ours_cls, baseline_cls, reference_cls, batch: int, channels: int) -> Case:
    ours = lambda: ours_cls(COND_DIM, channels, HIDDEN)
    return Case(
        block=block,
        batch=batch,
        shape={"C": channels, "px": MAPPER_GRID},
        builders=_paired(ours, ("baseline", baseline_cls.from_ours), ("reference", reference_cls.from_ours)),
        inputs=_feature_inputs(batch, channels, MAPPER_GRID, with_cond=True, with_state=True),
        call=_call_recurrent,
        elements=batch * channels * MAPPER_GRID**2,
    )


@register("LSTMAffine")
def lstm_affine_cases(plan: Plan) -> list[Case]:
    return [
        _recurrent_case("LSTMAffine", LSTMAffine, BaselineLSTMAffine, ReferenceLSTMAffine, b, c)
        for b, c in _mapper_rows(plan)
    ]


@register("RATBlock")
def rat_block_cases(plan: Plan) -> list[Case]:
    return [
        _recurrent_case("RATBlock", RATBlock, BaselineRATBlock, ReferenceRATBlock, b, c)
        for b, c in _mapper_rows(plan)
    ]


@register("DFBlock")
def df_block_cases(plan: Plan) -> list[Case]:
    cases = []
    for b, c, px in _g_rows(plan, 0):
        ours = lambda c=c: DFBlock(COND_DIM, c)
        cases.append(
            Case(
                block="DFBlock",
                batch=b,
                shape={"C": c, "px": px},
                builders=_paired(ours, ("baseline", BaselineDFBlock.from_ours)),
                inputs=_feature_inputs(b, c, px, with_cond=True, with_state=False),
                call=_call_conditioned,
                elements=b * c * px * px,
            )
        )
    return cases


@register("ShuffleAttention")
def shuffle_attention_cases(plan: Plan) -> list[Case]:
    rows = [(b, c * 2, MAPPER_GRID) for b, c in _mapper_rows(plan)[::2]] + _g_rows(plan, 1)
    cases = []
    for b, c, px in rows:
        ours = lambda c=c: ShuffleAttention(c)
        cases.append(
            Case(
                block="ShuffleAttention",
                batch=b,
                shape={"C": c, "px": px},
                builders=_paired(ours, ("baseline", BaselineShuffleAttention.from_ours)),
                inputs=_feature_inputs(b, c, px, with_cond=False, with_state=False),
                call=_call_conditioned,
                elements=b * c * px * px,
            )
        )
    return cases


@register("SAConv")
def sa_conv_cases(plan: Plan) -> list[Case]:
    mapper = [
        (b, MAPPER_CHANNELS[0] // plan.channel_scale, MAPPER_CHANNELS[1] // plan.channel_scale, MAPPER_GRID)
        for b in plan.batches
    ]
    g = [
        (b, i // plan.channel_scale, o // plan.channel_scale, px)
        for b in plan.batches
        for i, o, px in plan.g_blocks
    ]
    cases = []
    for b, cin, cout, px in mapper + g:
        ours = lambda cin=cin, cout=cout: SAConv(cin, cout)
        cases.append(
            Case(
                block="SAConv",
                batch=b,
                shape={"Cin": cin, "Cout": cout, "px": px},
                builders=_paired(ours, ("baseline", BaselineSAConv.from_ours)),
                inputs=_feature_inputs(b, cin, px, with_cond=False, with_state=False),
                call=_call_conditioned,
                # Counted as a feature map scaled by the 3x3 convolution's cost relative to the
                # element-wise blocks (9 * Cin multiply-adds per output element, against ~512).
                elements=b * cout * px * px * max(1, 9 * cin // 512),
            )
        )
    return cases
