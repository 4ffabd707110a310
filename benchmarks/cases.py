"""The registry of benchmark cases: what to build, with which inputs, at which shapes.

A case is one block at one shape. Its ``builders`` map an implementation name (``"ours"``,
``"baseline"``, optionally ``"reference"``) to a function returning a module (``"ours"`` takes an
optional ``impl``, for the ``ref`` variant, where the block has a fused implementation); ``inputs`` makes the
call's arguments; ``call`` runs a module on them and returns the tensor that forward+backward
differentiates. Adding a block is one function decorated with :func:`register` that returns its
cases for a :class:`Plan`.

Shapes are those of the ``paper`` preset (SPEC section 3): condition 612 (100 noise + 512 CLIP),
LSTM hidden 64, mapper RAT blocks at 7x7 with 32 and 64 channels, G-blocks from 8 to 224 px with
512..64 channels, batch 16 and 64. The network-level rows (a mapper block and G-blocks of the
generator, the CLIP text adapter, the discriminator, the generator, one D+G training step) build
the ``paper`` preset on a randomly initialised ViT-B/32 (the ``tiny`` preset on ``tiny_clip`` for
``--quick``) and compare against the same module built with ``impl="ref"``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ratlip_layers import (
    CLIPDiscriminator,
    CLIPTextAdapter,
    DFBlock,
    GeneratorConfig,
    LSTMAffine,
    RATBlock,
    RATLIPGenerator,
    SAConv,
    ShuffleAttention,
    build_clip,
    tiny_clip,
)
from ratlip_layers.layers.config import REF
from ratlip_layers.models.blocks import ConditionedBlock
from ratlip_layers.training import GANTrainStep

from .baselines import (
    BaselineDFBlock,
    BaselineLSTMAffine,
    BaselineRATBlock,
    BaselineSAConv,
    BaselineShuffleAttention,
    EncodeText,
    ReferenceLSTMAffine,
    ReferenceRATBlock,
)

__all__ = [
    "ALL_VARIANTS",
    "CHANNELS_LAST",
    "COMPILE",
    "COND_DIM",
    "CUDA_GRAPHS",
    "EAGER",
    "FORWARD",
    "G_BLOCKS",
    "HIDDEN",
    "MAPPER_GRID",
    "NO_REF",
    "REF",
    "REGISTRY",
    "TRAIN",
    "TRAIN_STEP",
    "BlockStep",
    "Case",
    "Plan",
    "TrainStep",
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
CLIP_MODEL = "ViT-B-32"

# Modes: what one timed call does.
FORWARD = "forward"
TRAIN = "forward+backward"
TRAIN_STEP = "train step"
"""One whole D+G update (forward, backward and optimizer steps of both networks)."""
# Variants of ours: the default implementation (fused) eager; ``REF`` (``impl="ref"``, imported
# above) eager; the default in channels_last; torch.compile (which traces the reference ops).
EAGER, CHANNELS_LAST, COMPILE, CUDA_GRAPHS = ("eager", "channels_last", "compile", "compile+cudagraphs")
ALL_VARIANTS = (EAGER, REF, CHANNELS_LAST, COMPILE, CUDA_GRAPHS)
NO_REF = tuple(v for v in ALL_VARIANTS if v != REF)
"""The variants of a block without a fused implementation (its ``ref`` would repeat ``eager``)."""


@dataclass(frozen=True)
class Plan:
    """Which shapes a run covers.

    Attributes:
        batches: batch sizes of the mapper rows (and of the G-block rows when they fit).
        g_blocks: G-block shapes ``(in, out, px)`` to cover.
        max_elements: rows whose feature map has more elements than this are skipped (and listed);
            ``None`` keeps everything.
        channel_scale: divides every channel count (``--quick`` uses tiny blocks).
        model_preset: generator preset of the network-level rows: ``"paper"`` (on ViT-B/32) or
            ``"tiny"`` (on ``tiny_clip``).
        model_batches: batch sizes of the network-level rows.
    """

    batches: tuple[int, ...] = PAPER_BATCHES
    g_blocks: tuple[tuple[int, int, int], ...] = G_BLOCKS
    max_elements: int | None = None
    channel_scale: int = 1
    model_preset: str = "paper"
    model_batches: tuple[int, ...] = PAPER_BATCHES[:1]


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
    modes: tuple[str, ...] = (FORWARD, TRAIN)
    dtypes: tuple[str, ...] | None = None
    """The dtypes this case runs in (``None``: every dtype of the run)."""
    variants: tuple[str, ...] | None = None
    """Ours' variants this case may run (``None``: every variant the run's settings allow)."""

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


def _feature_inputs(
    batch: int,
    channels: int,
    size: int,
    with_cond: bool,
    with_state: bool,
    *,
    cond_dim: int = COND_DIM,
    hidden: int = HIDDEN,
):
    def make(device: torch.device, dtype: torch.dtype, memory_format: torch.memory_format) -> tuple:
        x = torch.randn(batch, channels, size, size, device=device, dtype=dtype)
        x = x.contiguous(memory_format=memory_format).requires_grad_()
        args: list[Tensor] = [x]
        if with_cond:
            args.append(torch.randn(batch, cond_dim, device=device, dtype=dtype))
        if with_state:
            args.append(torch.randn(batch, hidden, device=device, dtype=dtype))
            args.append(torch.randn(batch, hidden, device=device, dtype=dtype))
        return tuple(args)

    return make


def _call_recurrent(module: nn.Module, args: tuple) -> Tensor:
    x, cond, h, c = args
    if isinstance(module, (ReferenceRATBlock, ReferenceLSTMAffine)):
        return module(x, cond)
    return module(x, cond, (h, c))[0]


def _call_conditioned(module: nn.Module, args: tuple) -> Tensor:
    return module(*args)


def _paired(ours: Callable[..., nn.Module], *others: tuple[str, Callable[[nn.Module], nn.Module]]):
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


def _recurrent_case(
    block: str, ours, baseline_cls, reference_cls, batch: int, channels: int, **kwargs
) -> Case:
    return Case(
        block=block,
        batch=batch,
        shape={"C": channels, "px": MAPPER_GRID},
        builders=_paired(ours, ("baseline", baseline_cls.from_ours), ("reference", reference_cls.from_ours)),
        inputs=_feature_inputs(batch, channels, MAPPER_GRID, with_cond=True, with_state=True),
        call=_call_recurrent,
        elements=batch * channels * MAPPER_GRID**2,
        **kwargs,
    )


@register("LSTMAffine")
def lstm_affine_cases(plan: Plan) -> list[Case]:
    # LSTMAffine's one modulation has only the reference implementation.
    return [
        _recurrent_case(
            "LSTMAffine",
            lambda c=c: LSTMAffine(COND_DIM, c, HIDDEN),
            BaselineLSTMAffine,
            ReferenceLSTMAffine,
            b,
            c,
            variants=NO_REF,
        )
        for b, c in _mapper_rows(plan)
    ]


@register("RATBlock")
def rat_block_cases(plan: Plan) -> list[Case]:
    return [
        _recurrent_case(
            "RATBlock",
            lambda impl=None, c=c: RATBlock(COND_DIM, c, HIDDEN, impl=impl),
            BaselineRATBlock,
            ReferenceRATBlock,
            b,
            c,
        )
        for b, c in _mapper_rows(plan)
    ]


def _feature_map_case(
    block: str, ours, baseline_cls, batch: int, channels: int, px: int, *, with_cond: bool
) -> Case:
    """A block that maps one feature map (plus, with ``with_cond``, a condition) to another."""
    return Case(
        block=block,
        batch=batch,
        shape={"C": channels, "px": px},
        builders=_paired(ours, ("baseline", baseline_cls.from_ours)),
        inputs=_feature_inputs(batch, channels, px, with_cond=with_cond, with_state=False),
        call=_call_conditioned,
        elements=batch * channels * px * px,
    )


@register("DFBlock")
def df_block_cases(plan: Plan) -> list[Case]:
    return [
        _feature_map_case(
            "DFBlock",
            lambda impl=None, c=c: DFBlock(COND_DIM, c, impl=impl),
            BaselineDFBlock,
            b,
            c,
            px,
            with_cond=True,
        )
        for b, c, px in _g_rows(plan, 0)
    ]


@register("ShuffleAttention")
def shuffle_attention_cases(plan: Plan) -> list[Case]:
    rows = [(b, c * 2, MAPPER_GRID) for b, c in _mapper_rows(plan)[::2]] + _g_rows(plan, 1)
    return [
        _feature_map_case(
            "ShuffleAttention",
            lambda impl=None, c=c: ShuffleAttention(c, impl=impl),
            BaselineShuffleAttention,
            b,
            c,
            px,
            with_cond=False,
        )
        for b, c, px in rows
    ]


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
        ours = lambda impl=None, cin=cin, cout=cout: SAConv(cin, cout, impl=impl)
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


# Network-level rows. Every builder makes its own CLIP model (frozen, shared inside the networks it
# builds), so the implementations of a row never share weights or caches.


def _clip(plan: Plan) -> tuple[nn.Module, object]:
    if plan.model_preset == "tiny":
        return tiny_clip()
    return build_clip(CLIP_MODEL)


def _generator(plan: Plan, impl: str | None = None) -> RATLIPGenerator:
    clip_model, tokenizer = _clip(plan)
    config = GeneratorConfig.preset(plan.model_preset)
    return RATLIPGenerator(config, clip_model, tokenizer=tokenizer, impl=impl)


def _vs_ref(ours: Callable[[str | None], nn.Module]) -> dict[str, Callable[[], nn.Module]]:
    """Builders of a network row: ours with the default implementation against ours with ``impl="ref"``."""
    return {"ours": lambda: ours(None), "baseline": lambda: ours(REF)}


class BlockStep(nn.Module):
    """A generator block called as the generator calls it, with the LSTM state as two tensors."""

    def __init__(self, block: ConditionedBlock) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: Tensor, cond: Tensor, h: Tensor, c: Tensor) -> Tensor:
        return self.block(x, cond, (h, c))[0]


class TrainStep(nn.Module):
    """One :class:`~ratlip_layers.training.GANTrainStep` update of a generator and a discriminator
    that share one frozen CLIP model (an ``nn.Module`` so the harness can move and switch it)."""

    def __init__(self, plan: Plan, impl: str | None = None) -> None:
        super().__init__()
        self.generator = _generator(plan, impl)
        clip_model = self.generator.clip_model
        self.discriminator = CLIPDiscriminator(clip_model)
        self.step = GANTrainStep(self.generator, self.discriminator, self.generator.text)

    def forward(self, images: Tensor, tokens: Tensor) -> Tensor:
        self.step(images, tokens, step=1)
        return images


class _Shapes(NamedTuple):
    """The shapes of a preset's generator that the network-level rows need."""

    grid: int
    cond_dim: int
    z_dim: int
    sentence_dim: int
    hidden: int
    image_size: int
    context_length: int
    mapper_channels: int
    g_blocks: tuple[tuple[int, int, int, int], ...]
    """``(in channels, out channels, input px, output px)`` per G-block."""


@functools.cache
def _shapes(preset: str) -> _Shapes:
    G = _generator(Plan(model_preset=preset))
    sizes = [G.grid] + [block.size for block in G.blocks]
    return _Shapes(
        grid=G.grid,
        cond_dim=G.cond_dim,
        z_dim=G.z_dim,
        sentence_dim=G.sentence_dim,
        hidden=G.config.hidden_size,
        image_size=G.config.image_size,
        context_length=G.text.context_length,
        mapper_channels=G.mapper_blocks[0].in_channels,
        g_blocks=tuple(
            (block.in_channels, block.out_channels, size_in, block.size)
            for block, size_in in zip(G.blocks, sizes)
        ),
    )


def _tokens(batch: int, length: int, device: torch.device) -> Tensor:
    tokens = torch.randint(1, 1000, (batch, length), device=device)
    # open_clip's end-of-text token, where the sentence is pooled.
    tokens[:, length // 2] = 49407
    return tokens


def _images_and(batch: int, size: int, second: Callable[[torch.device, torch.dtype], Tensor]):
    def make(device: torch.device, dtype: torch.dtype, memory_format: torch.memory_format) -> tuple:
        images = torch.rand(batch, 3, size, size, device=device, dtype=dtype) * 2 - 1
        return images.contiguous(memory_format=memory_format).requires_grad_(), second(device, dtype)

    return make


def _call_sentence(module: nn.Module, args: tuple) -> Tensor:
    out = module(*args)
    return out if isinstance(out, Tensor) else out.sentence


def _network_case(
    block: str, batch: int, shape: dict[str, int], builders, inputs, elements: int, **kwargs
) -> Case:
    """A network-level row: float32, ours eager against its baseline (no compile: whole networks
    take minutes to compile, and ``ref`` would repeat the ``impl="ref"`` baseline)."""
    return Case(
        block=block,
        batch=batch,
        shape=shape,
        builders=builders,
        inputs=inputs,
        call=kwargs.pop("call", _call_conditioned),
        elements=elements,
        dtypes=("float32",),
        variants=(EAGER,),
        **kwargs,
    )


@register("MapperBlock")
def mapper_block_cases(plan: Plan) -> list[Case]:
    shapes = _shapes(plan.model_preset)
    c, grid = shapes.mapper_channels, shapes.grid
    ours = lambda impl: BlockStep(_generator(plan, impl).mapper_blocks[0])
    return [
        _network_case(
            "MapperBlock",
            b,
            {"C": c, "px": grid},
            _vs_ref(ours),
            _feature_inputs(b, c, grid, True, True, cond_dim=shapes.cond_dim, hidden=shapes.hidden),
            b * c * grid**2,
        )
        for b in plan.batches
    ]


@register("GBlock")
def g_block_cases(plan: Plan) -> list[Case]:
    shapes = _shapes(plan.model_preset)
    # A small map with many channels and a large one with few: the two regimes of the G-blocks.
    picked = sorted({1, len(shapes.g_blocks) - 2})
    cases = []
    for b in plan.model_batches:
        for i in picked:
            c_in, c_out, px_in, px = shapes.g_blocks[i]
            ours = lambda impl, i=i: BlockStep(_generator(plan, impl).blocks[i])
            inputs = _feature_inputs(
                b, c_in, px_in, True, True, cond_dim=shapes.cond_dim, hidden=shapes.hidden
            )
            shape = {"Cin": c_in, "Cout": c_out, "px": px}
            cases.append(
                _network_case("GBlock", b, shape, _vs_ref(ours), inputs, b * c_out * px**2)
            )
    return cases


@register("CLIPTextAdapter")
def text_adapter_cases(plan: Plan) -> list[Case]:
    length = _shapes(plan.model_preset).context_length
    builders = {
        "ours": lambda: CLIPTextAdapter(_clip(plan)[0]),
        "baseline": lambda: EncodeText(_clip(plan)[0]),
    }

    def inputs(batch: int):
        return lambda device, dtype, memory_format: (_tokens(batch, length, device),)

    # The text tower is frozen: inference only.
    return [
        _network_case(
            "CLIPTextAdapter",
            b,
            {"L": length},
            builders,
            inputs(b),
            b * length,
            call=_call_sentence,
            modes=(FORWARD,),
        )
        for b in plan.model_batches
    ]


@register("CLIPDiscriminator")
def discriminator_cases(plan: Plan) -> list[Case]:
    shapes = _shapes(plan.model_preset)
    size = shapes.image_size
    # The discriminator has no fused parts: its baseline is the same module (a control row).
    ours = lambda: CLIPDiscriminator(_clip(plan)[0])

    def sentence(batch: int):
        return lambda device, dtype: torch.randn(batch, shapes.sentence_dim, device=device, dtype=dtype)

    return [
        _network_case(
            "CLIPDiscriminator",
            b,
            {"px": size},
            {"ours": ours, "baseline": ours},
            _images_and(b, size, sentence(b)),
            b * 3 * size**2,
        )
        for b in plan.model_batches
    ]


@register("Generator")
def generator_cases(plan: Plan) -> list[Case]:
    shapes = _shapes(plan.model_preset)
    size = shapes.image_size

    def inputs(batch: int):
        def make(device: torch.device, dtype: torch.dtype, memory_format: torch.memory_format) -> tuple:
            noise = torch.randn(batch, shapes.z_dim, device=device, dtype=dtype).requires_grad_()
            return noise, torch.randn(batch, shapes.sentence_dim, device=device, dtype=dtype)

        return make

    return [
        _network_case(
            "Generator",
            b,
            {"px": size},
            _vs_ref(lambda impl: _generator(plan, impl)),
            inputs(b),
            b * 3 * size**2,
        )
        for b in plan.model_batches
    ]


@register("GANTrainStep")
def train_step_cases(plan: Plan) -> list[Case]:
    shapes = _shapes(plan.model_preset)
    size, length = shapes.image_size, shapes.context_length

    def token_batch(batch: int):
        return lambda device, dtype: _tokens(batch, length, device)

    return [
        _network_case(
            "GANTrainStep",
            b,
            {"px": size},
            _vs_ref(lambda impl: TrainStep(plan, impl)),
            _images_and(b, size, token_batch(b)),
            b * 3 * size**2,
            modes=(TRAIN_STEP,),
        )
        for b in plan.model_batches
    ]
