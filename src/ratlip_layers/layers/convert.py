"""Convert an existing CAT generator to RAT in one call, without touching the user's forward code.

:func:`convert_to_rat` works like ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``: it walks a
model, replaces every CAT fusion block (DF-GAN's ``DFBLK``, this library's :class:`DFBlock`, or any
block a predicate picks) by a :class:`ThreadedRATBlock`, which keeps the call signature
``block(x, y) -> x`` and reads and writes the recurrent state in one :class:`RecurrentMemory` that
the blocks share. A forward pre-hook on the converted model opens the memory at the start of every
forward (zeros, or a state computed from the noise) and a forward hook closes it at the end, so the
recurrence runs through the blocks in the order the model's own code calls them, and nothing
carries over from one forward to the next.

Why hooks rather than an explicit ``state`` argument: in a residual DF-GAN generator the fusion
blocks sit two calls below the model's forward (``NetG.forward -> G_Block.forward -> residual()``),
so passing the state explicitly changes the signature and the return of every function on the way.
The explicit-state API (:class:`RATBlock`) stays for code that prefers it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .._checks import check_module, check_nonnegative_int, check_positive_int
from .affine import DFBlock
from .rat import LSTMState, RATBlock, StateFromNoise

__all__ = ["RecurrentMemory", "ThreadedRATBlock", "convert_to_rat", "read_cat_dims"]

MEMORY_NAME = "rat_memory"
"""Attribute under which :func:`convert_to_rat` registers the :class:`RecurrentMemory` on the root."""

BlockSelector = type[nn.Module] | tuple[type[nn.Module], ...] | Callable[[nn.Module], bool]


class RecurrentMemory(nn.Module):
    """The one recurrent state that the converted blocks (:class:`ThreadedRATBlock`) of a model share.

    The memory is *open* only during a forward of the model it was registered on: it opens with the
    initial state (``None``, which the first RAT step reads as zeros, or ``init(noise)``) and closes
    at the end, dropping the state, so no tensor and no state survives the forward. A block called
    while the memory is closed raises instead of silently starting from a stale or zero state.

    :func:`convert_to_rat` builds it; building one by hand is only needed to wire blocks yourself.

    Args:
        hidden_size: LSTM hidden size of the blocks that share the memory.
        init: module computing the initial state from the noise, or ``None`` for zeros.
        noise_index: position of the noise among the root's positional arguments (used with ``init``).
        noise_name: name of the noise among the root's keyword arguments, if it has one.

    Example:
        >>> memory = RecurrentMemory(8)
        >>> memory.open((torch.randn(2, 4),), {})
        >>> memory.read(2) is None   # zeros: the first RAT step starts from h0 = c0 = 0
        True
        >>> memory.close()
        >>> memory.read(2)
        Traceback (most recent call last):
        ...
        RuntimeError: a converted RAT block was called outside a forward of the model it was converted in...
    """

    def __init__(
        self,
        hidden_size: int,
        init: StateFromNoise | None = None,
        *,
        noise_index: int = 0,
        noise_name: str | None = None,
    ) -> None:
        super().__init__()
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        if init is not None and not isinstance(init, StateFromNoise):
            raise TypeError(f"init must be None or a StateFromNoise, got {type(init).__name__}")
        noise_index = check_nonnegative_int("noise_index", noise_index)
        if noise_name is not None and not isinstance(noise_name, str):
            raise TypeError(
                f"noise_name must be None or a str, got {type(noise_name).__name__} ({noise_name!r})"
            )
        if init is not None and init.hidden_size != hidden_size:
            raise ValueError(
                f"init must produce states of hidden_size = {hidden_size}, got {init.hidden_size}"
            )
        self.init = init
        self.noise_index = noise_index
        self.noise_name = noise_name
        # Runtime state, set only between open() and close(); never part of the state dict.
        self._open = False
        self._state: LSTMState | None = None

    def open(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Start a forward: set the initial state from the root's call arguments.

        Args:
            args: the root's positional arguments.
            kwargs: the root's keyword arguments.

        Raises:
            RuntimeError: if the memory is already open (the model called from inside its own forward).
            TypeError: if ``init`` is set and the noise is not among the arguments.
        """
        if self._open:
            raise RuntimeError(
                "the converted model was called again from inside its own forward; its recurrent "
                "memory cannot be shared by two nested forwards"
            )
        self._state = None if self.init is None else self.init(self._find_noise(args, kwargs))
        self._open = True

    def _find_noise(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
        if self.noise_name is not None and self.noise_name in kwargs:
            noise = kwargs[self.noise_name]
        elif self.noise_index < len(args):
            noise = args[self.noise_index]
        else:
            where = f"positional argument {self.noise_index}" + (
                f" or keyword argument {self.noise_name!r}" if self.noise_name else ""
            )
            raise TypeError(
                f"state_init='noise' reads the noise from the model's {where}, but the model was "
                f"called with {len(args)} positional argument(s) and keywords {sorted(kwargs)}"
            )
        if not isinstance(noise, Tensor):
            raise TypeError(f"the noise argument must be a torch.Tensor, got {type(noise).__name__}")
        return noise

    def close(self) -> None:
        """End a forward: drop the state so that nothing carries over to the next one."""
        self._open, self._state = False, None

    def read(self, batch: int) -> LSTMState | None:
        """Return the current state for a block about to run on ``batch`` samples.

        Args:
            batch: batch size of the block's input.

        Returns:
            The state ``(h, c)``, or ``None`` before the first step of a zero-initialised forward.

        Raises:
            RuntimeError: if the memory is closed, or ``batch`` differs from the batch of the state.
        """
        if not self._open:
            raise RuntimeError(
                "a converted RAT block was called outside a forward of the model it was converted in "
                "(the model that convert_to_rat returned); its recurrent state is set up only by that "
                "model's forward hooks, so call the model (model(...), not model.forward(...) or the "
                "block). Activation checkpointing that re-runs a block during backward is not supported."
            )
        held = None if self._state is None else self._state[0].shape[0]
        if held is not None and batch != held:
            raise RuntimeError(
                f"the batch size changed during one forward: the recurrent state holds {held} "
                f"samples but this block got {batch}; every converted block must see the same samples"
            )
        return self._state

    def write(self, state: LSTMState) -> None:
        """Store the state a block produced, for the next block in call order."""
        self._state = state

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, state_init={'zeros' if self.init is None else 'noise'}"


class _OpenMemory:
    """Forward pre-hook of the converted root; a module-level class (not a closure) so it pickles."""

    def __init__(self, memory: RecurrentMemory) -> None:
        self.memory = memory

    def __call__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.memory.open(args, kwargs)


class _CloseMemory:
    """Forward hook of the converted root, registered ``always_call`` so an exception closes it too."""

    def __init__(self, memory: RecurrentMemory) -> None:
        self.memory = memory

    def __call__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        self.memory.close()


class ThreadedRATBlock(nn.Module):
    """A :class:`RATBlock` with a CAT block's signature, ``block(x, y) -> x``: the state lives in a memory.

    Each call reads the state the previous block (in call order) left in the shared
    :class:`RecurrentMemory`, runs the RAT block and writes the new state back. The memory is held
    as a plain reference, not a submodule, so its parameters appear once in the state dict, under
    the root's ``rat_memory``.

    Args:
        block: the RAT block doing the work.
        memory: the memory shared by all blocks of one converted model.

    Shape:
        - x: :math:`(B, C, H, W)`
        - y: :math:`(B, \\text{cond\\_dim})`
        - output: :math:`(B, C, H, W)`

    Example:
        >>> memory = RecurrentMemory(16)
        >>> block = ThreadedRATBlock(RATBlock(8, 4, hidden_size=16), memory)
        >>> memory.open((), {})
        >>> block(torch.randn(2, 4, 3, 3), torch.randn(2, 8)).shape
        torch.Size([2, 4, 3, 3])
        >>> memory.close()
    """

    def __init__(self, block: RATBlock, memory: RecurrentMemory) -> None:
        super().__init__()
        if not isinstance(block, RATBlock):
            raise TypeError(f"block must be a RATBlock, got {type(block).__name__}")
        if not isinstance(memory, RecurrentMemory):
            raise TypeError(f"memory must be a RecurrentMemory, got {type(memory).__name__}")
        if block.hidden_size != memory.hidden_size:
            raise ValueError(
                f"block.hidden_size ({block.hidden_size}) must equal "
                f"memory.hidden_size ({memory.hidden_size})"
            )
        self.rat = block
        # Bypass nn.Module.__setattr__: registering the memory here would list it once per block.
        self.__dict__["memory"] = memory

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        state = self.memory.read(x.shape[0])
        out, state = self.rat(x, y, state)
        self.memory.write(state)
        return out


def read_cat_dims(block: nn.Module) -> tuple[int, int]:
    """Read ``(cond_dim, num_features)`` from a CAT fusion block.

    Two rules, in order: integer attributes ``cond_dim`` and ``num_features`` (this library's
    :class:`DFBlock`); otherwise the block's ``nn.Linear`` layers in registration order, the first
    one's ``in_features`` being ``cond_dim`` and the last one's ``out_features`` being
    ``num_features`` (DF-GAN's and GALIP's ``DFBLK``: ``affine0.fc_gamma.linear1`` is
    ``Linear(cond_dim, C)`` and ``affine1.fc_beta.linear2`` is ``Linear(C, C)``). A block that fits
    neither needs ``dims=`` in :func:`convert_to_rat`; a wrong read is caught by the first forward,
    which checks the channels of ``x`` and the size of ``y``.

    Args:
        block: the block to read.

    Returns:
        ``(cond_dim, num_features)``.

    Raises:
        ValueError: if neither rule applies.

    Example:
        >>> read_cat_dims(DFBlock(612, 64))
        (612, 64)
    """
    cond_dim, num_features = getattr(block, "cond_dim", None), getattr(block, "num_features", None)
    if isinstance(cond_dim, int) and isinstance(num_features, int):
        return cond_dim, num_features
    linears = [m for m in block.modules() if isinstance(m, nn.Linear)]
    if linears:
        return linears[0].in_features, linears[-1].out_features
    raise ValueError(
        f"cannot read the dimensions of {type(block).__name__}: it has neither int attributes "
        "cond_dim and num_features nor nn.Linear layers; pass dims=lambda block: (cond_dim, num_features)"
    )


def _cat_output_layers(block: nn.Module) -> list[tuple[Tensor, Tensor]] | None:
    """The two CAT affines' output layers as ``(weight2 (2, C, C), bias2 (2, C))``, gamma then beta.

    Knows this library's :class:`DFBlock` and DF-GAN's ``DFBLK`` layout (``affine0``/``affine1``, each
    with ``fc_gamma.linear2`` and ``fc_beta.linear2``); returns ``None`` for anything else.
    """
    if isinstance(block, DFBlock):
        return [(a.head.weight2, a.head.bias2) for a in (block.affine1, block.affine2)]
    affines = [getattr(block, name, None) for name in ("affine0", "affine1")]
    try:
        layers = [(a.fc_gamma.linear2, a.fc_beta.linear2) for a in affines]
    except AttributeError:
        return None
    return [
        (torch.stack([g.weight, b.weight]), torch.stack([g.bias, b.bias]))
        for g, b in layers
    ]


@torch.no_grad()
def _copy_output_layers(source: nn.Module, target: RATBlock) -> None:
    layers = _cat_output_layers(source)
    if layers is None:
        raise ValueError(
            f"copy_weights=True copies the CAT output layers, but {type(source).__name__} has neither "
            "DFBlock's layout (affine1/affine2.head.weight2) nor DF-GAN's "
            "(affine0/affine1.fc_gamma.linear2); pass copy_weights=False"
        )
    for (weight2, bias2), affine in zip(layers, (target.affine1, target.affine2)):
        head = affine.head
        if weight2.shape != head.weight2.shape or bias2.shape != head.bias2.shape:
            raise ValueError(
                f"the output layers of {type(source).__name__} have shapes {tuple(weight2.shape)} and "
                f"{tuple(bias2.shape)}, but the RAT head's are {tuple(head.weight2.shape)} and "
                f"{tuple(head.bias2.shape)}; the dimensions were misread, pass dims="
            )
        head.weight2.copy_(weight2)
        head.bias2.copy_(bias2)


def _selector(block_type: BlockSelector) -> Callable[[nn.Module], bool]:
    if isinstance(block_type, type) or (
        isinstance(block_type, tuple) and all(isinstance(t, type) for t in block_type)
    ):
        return lambda module: isinstance(module, block_type)
    if callable(block_type):
        return block_type
    raise TypeError(
        "block_type must be a module class, a tuple of classes or a predicate, "
        f"got {type(block_type).__name__}"
    )


def _find_blocks(
    model: nn.Module, select: Callable[[nn.Module], bool]
) -> list[tuple[str, nn.Module, str, nn.Module]]:
    """``(qualified name, parent, name, block)`` for every selected module, not descending into one.

    Collected before any replacement: replacing while iterating the module tree would skip siblings.
    """
    found: list[tuple[str, nn.Module, str, nn.Module]] = []
    seen: set[int] = set()
    stack: list[tuple[str, nn.Module]] = [("", model)]
    while stack:
        prefix, parent = stack.pop()
        if id(parent) in seen:  # a module registered in two places is walked once
            continue
        seen.add(id(parent))
        children = list(parent.named_children())
        for name, child in children:
            if select(child):
                found.append((prefix + name, parent, name, child))
        stack.extend((f"{prefix}{name}.", child) for name, child in reversed(children) if not select(child))
    return found


def _factory(module: nn.Module) -> dict[str, Any]:
    """The device and dtype of ``module``'s first parameter, for the modules that replace it."""
    param = next(module.parameters(), None)
    if param is None:
        return {"device": None, "dtype": None}
    return {"device": param.device, "dtype": param.dtype}


def _noise_position(model: nn.Module, noise_arg: int | str) -> tuple[int, str | None]:
    """Resolve ``noise_arg`` against ``model.forward``'s signature into ``(index, name)``."""
    try:
        params = [
            p for p in inspect.signature(model.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
    except (TypeError, ValueError):  # builtins or C extensions without a signature
        params = []
    names = [p.name for p in params]
    if isinstance(noise_arg, str):
        if noise_arg not in names:
            raise ValueError(f"noise_arg {noise_arg!r} is not a parameter of the model's forward {names}")
        return names.index(noise_arg), noise_arg
    if isinstance(noise_arg, bool) or not isinstance(noise_arg, int) or noise_arg < 0:
        raise TypeError(f"noise_arg must be a non-negative int or a parameter name, got {noise_arg!r}")
    return noise_arg, names[noise_arg] if noise_arg < len(names) else None


def convert_to_rat(
    model: nn.Module,
    block_type: BlockSelector = DFBlock,
    *,
    hidden_size: int = 64,
    cell: Literal["shared", "per_affine"] = "shared",
    state_init: Literal["zeros", "noise"] = "zeros",
    noise_dim: int | None = None,
    noise_arg: int | str = 0,
    copy_weights: bool = True,
    dims: Callable[[nn.Module], tuple[int, int]] | None = None,
    negative_slope: float | None = None,
) -> nn.Module:
    """Replace every CAT fusion block of ``model`` by a RAT block sharing one recurrent memory.

    The model is converted in place and returned. Every module that ``block_type`` selects becomes a
    :class:`ThreadedRATBlock` with the same call signature, ``block(x, y) -> x``, so the model's own
    code does not change. The blocks share one :class:`RecurrentMemory`, registered as
    ``model.rat_memory``, which a forward pre-hook opens at the start of every forward of ``model``
    and a forward hook closes at its end: the state flows through the blocks in the order the
    forward calls them, and each forward starts afresh. Each sample has its own state.

    Dimensions: ``cond_dim`` and ``num_features`` come from ``read_cat_dims`` unless ``dims`` is
    given; ``negative_slope`` and ``impl`` from the block's attributes of that name when it has
    them (DF-GAN's functional LeakyReLU cannot be read: it is 0.2, the default); the new blocks take
    the device and dtype of the replaced block's first parameter.

    Weights (``copy_weights=True``): each RAT affine gets its CAT affine's *output* layer (the
    ``Linear(C -> C)`` of gamma and of beta). The input layer cannot be copied: the CAT's reads the
    condition (``cond_dim`` features), the RAT's reads the LSTM state ``h_t`` (``hidden_size``).
    Hence a converted model computes exactly what the CAT model computed whenever the CAT output
    weights are zero, the state at init (identity modulation) and also any trained CAT whose
    modulation is the constant ``bias2``; with trained output weights it applies them to the new,
    untrained ``relu(fc1(h_t))`` instead of ``relu(fc1(y))``, so it starts close to, not at, the
    pretrained model.

    Cells and initial state: ``cell="shared"`` (RAT-GAN) gives every affine of every block one
    ``nn.LSTMCell``; ``"per_affine"`` gives each affine its own. ``state_init="noise"`` starts the
    state from the model's noise argument through a :class:`StateFromNoise` (trainable, under
    ``model.rat_memory.init``); ``"zeros"`` starts it at zero. With zeros and ``"per_affine"`` the
    first cell always sees ``h_0 = 0``, so its ``weight_hh`` gets an exactly zero gradient and never
    trains; a shared cell or ``state_init="noise"`` avoids that.

    Not supported, and loud: calling a converted block outside a forward of ``model`` (including
    activation checkpointing that re-runs blocks during backward), a batch size that changes between
    blocks of one forward, and ``model`` called from inside its own forward.

    Args:
        model: the generator to convert (not itself a fusion block).
        block_type: the CAT fusion block's class, a tuple of classes, or a predicate on modules.
        hidden_size: LSTM hidden size.
        cell: ``"shared"`` or ``"per_affine"``.
        state_init: ``"zeros"`` or ``"noise"``.
        noise_dim: size of the noise vector; required with ``state_init="noise"``.
        noise_arg: position or name of the noise among the arguments of ``model.forward``.
        copy_weights: copy the CAT output layers into the RAT heads (see above).
        dims: a function ``block -> (cond_dim, num_features)`` for blocks ``read_cat_dims``
            cannot read.
        negative_slope: slope of the LeakyReLUs; ``None`` reads it from each block, else 0.2.

    Returns:
        ``model``, converted.

    Raises:
        ValueError: if no module matches ``block_type``, the options are invalid or inconsistent,
            the model is the fusion block itself, or it was converted before.
        TypeError: if ``block_type`` or ``noise_arg`` has the wrong type.

    Example:
        >>> class Stage(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fuse = DFBlock(16, 8)
        ...         self.conv = nn.Conv2d(8, 8, 3, padding=1)
        ...     def forward(self, x, y):
        ...         return x + self.conv(self.fuse(x, y))
        >>> class Gen(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.stages = nn.ModuleList([Stage(), Stage()])
        ...     def forward(self, x, y):
        ...         for stage in self.stages:
        ...             x = stage(x, y)
        ...         return x
        >>> gen = Gen()
        >>> x, y = torch.randn(2, 8, 4, 4), torch.randn(2, 16)
        >>> before = gen(x, y)
        >>> gen = convert_to_rat(gen, DFBlock, hidden_size=32)
        >>> type(gen.stages[0].fuse).__name__
        'ThreadedRATBlock'
        >>> torch.equal(gen(x, y), before)   # fresh CAT heads are copied: same output at init
        True
    """
    select = _selector(block_type)
    check_module("model", model)
    check_positive_int("hidden_size", hidden_size)
    if cell not in ("shared", "per_affine"):
        raise ValueError(f"cell must be 'shared' or 'per_affine', got {cell!r}")
    if state_init not in ("zeros", "noise"):
        raise ValueError(f"state_init must be 'zeros' or 'noise', got {state_init!r}")
    if state_init == "noise" and noise_dim is None:
        raise ValueError("state_init='noise' needs noise_dim, the size of the model's noise vector")
    if state_init == "zeros" and noise_dim is not None:
        raise ValueError(f"noise_dim ({noise_dim}) is only used with state_init='noise'")
    if select(model):
        raise ValueError(
            f"the model itself ({type(model).__name__}) is a fusion block; "
            "convert the generator that contains it"
        )
    if hasattr(model, MEMORY_NAME):
        raise ValueError(f"the model already has a {MEMORY_NAME!r} attribute: it was converted before")

    targets = _find_blocks(model, select)
    if not targets:
        raise ValueError(
            f"no module of {type(model).__name__} matches "
            f"block_type={getattr(block_type, '__name__', block_type)!r}; "
            "pass the class of the model's CAT fusion block (e.g. DF-GAN's DFBLK) or a predicate"
        )

    init = None
    if state_init == "noise":
        noise_dim = check_positive_int("noise_dim", noise_dim)
        init = StateFromNoise(noise_dim, hidden_size, **_factory(targets[0][3]))
    noise_index, noise_name = _noise_position(model, noise_arg)
    memory = RecurrentMemory(hidden_size, init, noise_index=noise_index, noise_name=noise_name)
    shared_cell: nn.LSTMCell | None = None

    converted: dict[int, ThreadedRATBlock] = {}  # a block registered twice stays one block
    for qualname, parent, name, child in targets:
        if id(child) not in converted:
            cond_dim, num_features = (dims or read_cat_dims)(child)
            if cell == "shared" and shared_cell is None:
                shared_cell = nn.LSTMCell(cond_dim, hidden_size, **_factory(child))
            elif cell == "shared" and shared_cell.input_size != cond_dim:
                raise ValueError(
                    f"cell='shared' needs one cond_dim for all blocks, but {qualname!r} has cond_dim = "
                    f"{cond_dim} and the first block {shared_cell.input_size}; use cell='per_affine'"
                )
            if negative_slope is None:
                slope = float(getattr(child, "negative_slope", 0.2))
            else:
                slope = negative_slope
            impl = getattr(child, "impl", None)
            rat = RATBlock(
                cond_dim, num_features, hidden_size, cell=shared_cell, negative_slope=slope,
                impl=impl if isinstance(impl, str) else None, **_factory(child),
            )
            if copy_weights:
                _copy_output_layers(child, rat)
            converted[id(child)] = ThreadedRATBlock(rat, memory)
        setattr(parent, name, converted[id(child)])

    model.add_module(MEMORY_NAME, memory)
    model.register_forward_pre_hook(_OpenMemory(memory), with_kwargs=True)
    model.register_forward_hook(_CloseMemory(memory), with_kwargs=True, always_call=True)
    return model
