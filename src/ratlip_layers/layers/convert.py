"""Convert an existing CAT generator to RAT in one call, without touching the user's forward code.

The replacing blocks share their recurrent state through a :class:`RecurrentMemory` that hooks on
the model open and close: in DF-GAN the fusion blocks sit two calls below the model's forward, so an
explicit ``state`` (:class:`RATBlock`) would change every call on the way.
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

MEMORY_NAME = "rat_memory"  # the converted model's attribute holding its RecurrentMemory
BlockSelector = type[nn.Module] | tuple[type[nn.Module], ...] | Callable[[nn.Module], bool]


class RecurrentMemory(nn.Module):
    """The recurrent state shared by the :class:`ThreadedRATBlock` blocks of one model, built by
    :func:`convert_to_rat`. It is open only during a forward of its model, so a block called
    outside one raises rather than start from a stale state.

    Args:
        hidden_size: LSTM hidden size of the blocks that share the memory.
        init: module computing the initial state from the noise, or ``None`` for zeros.
        noise_index, noise_name: position and (if any) keyword name of the noise among the model's
            arguments (read with ``init``).

    Example:
        >>> memory = RecurrentMemory(8)
        >>> memory.open((torch.randn(2, 4),), {}), memory.read(2)   # None: h0 = c0 = 0
        (None, None)
        >>> memory.close()
        >>> memory.read(2)
        Traceback (most recent call last):
        ...
        RuntimeError: a converted RAT block was called outside a forward of the model it was converted in...
    """

    def __init__(
        self, hidden_size: int, init: StateFromNoise | None = None, *, noise_index: int = 0,
        noise_name: str | None = None,
    ) -> None:
        super().__init__()
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        if init is not None and not isinstance(init, StateFromNoise):
            raise TypeError(f"init must be None or a StateFromNoise, got {type(init).__name__}")
        if init is not None and init.hidden_size != hidden_size:
            raise ValueError(f"init must make states of hidden_size = {hidden_size}, got {init.hidden_size}")
        if noise_name is not None and not isinstance(noise_name, str):
            kind = type(noise_name).__name__
            raise TypeError(f"noise_name must be None or a str, got {kind} ({noise_name!r})")
        self.init, self.noise_name = init, noise_name
        self.noise_index = check_nonnegative_int("noise_index", noise_index)
        self._open, self._state = False, None  # runtime only, never in the state dict

    def open(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Start a forward: set the initial state from the model's positional and keyword arguments."""
        if self._open:
            raise RuntimeError("the converted model was called again from inside its own forward; its "
                               "recurrent memory cannot be shared by two nested forwards")
        if self.init is None:
            self._state = None
        elif self.noise_name in kwargs:
            self._state = self.init(kwargs[self.noise_name])
        elif self.noise_index < len(args):
            self._state = self.init(args[self.noise_index])
        else:
            name = f" or keyword argument {self.noise_name!r}" if self.noise_name else ""
            raise TypeError(
                f"state_init='noise' reads the noise from the model's positional argument {self.noise_index}"
                f"{name}, but the model got {len(args)} positional argument(s) and keywords {sorted(kwargs)}"
            )
        self._open = True

    def close(self, *hook_args: Any) -> None:
        """End a forward (also the model's forward hook): drop the state, so nothing carries over."""
        self._open, self._state = False, None

    # The model's pre-hook: a bound method, not a closure, so that a converted model pickles.
    def _open_hook(self, root: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.open(args, kwargs)

    def read(self, batch: int) -> LSTMState | None:
        """The state ``(h, c)`` for a block about to run on ``batch`` samples (``None``: zeros)."""
        if not self._open:
            raise RuntimeError(
                "a converted RAT block was called outside a forward of the model it was converted in; "
                "its state is set up by that model's hooks, so call the model (model(...), not "
                "model.forward(...) or the block), and without activation checkpointing of the blocks."
            )
        if self._state is not None and batch != len(self._state[0]):
            raise RuntimeError(
                f"the batch size changed during one forward: the recurrent state holds {len(self._state[0])} "
                f"samples but this block got {batch}; every converted block must see the same samples"
            )
        return self._state

    def write(self, state: LSTMState) -> None:
        """Store the state a block produced, for the next block in call order."""
        self._state = state

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, state_init={'zeros' if self.init is None else 'noise'}"


class ThreadedRATBlock(nn.Module):
    """A :class:`RATBlock` with a CAT block's signature, ``block(x, y) -> x``: each call reads the
    state from the shared :class:`RecurrentMemory` and writes the new one back.

    Shape:
        As :class:`DFBlock`: ``x`` :math:`(B, C, H, W)` and ``y`` :math:`(B, \\text{cond\\_dim})` in.

    Example:
        >>> memory = RecurrentMemory(16)
        >>> block, _ = ThreadedRATBlock(RATBlock(8, 4, hidden_size=16), memory), memory.open((), {})
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
            raise ValueError(f"block.hidden_size ({block.hidden_size}) must equal memory.hidden_size "
                             f"({memory.hidden_size})")
        self.rat = block
        # Not a submodule: its parameters appear once in the state dict, under the model's rat_memory.
        self.__dict__["memory"] = memory

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        out, state = self.rat(x, y, self.memory.read(x.shape[0]))
        self.memory.write(state)
        return out


def read_cat_dims(block: nn.Module) -> tuple[int, int]:
    """``(cond_dim, num_features)`` of a CAT fusion block: its int attributes of those names
    (:class:`DFBlock`), else its first ``nn.Linear``'s ``in_features`` and last one's ``out_features``
    (DF-GAN's and GALIP's ``DFBLK``); ``ValueError`` if neither applies.

    Example:
        >>> read_cat_dims(DFBlock(612, 64))
        (612, 64)
    """
    cond_dim, num_features = getattr(block, "cond_dim", None), getattr(block, "num_features", None)
    if isinstance(cond_dim, int) and isinstance(num_features, int):
        return cond_dim, num_features
    if linears := [m for m in block.modules() if isinstance(m, nn.Linear)]:
        return linears[0].in_features, linears[-1].out_features
    raise ValueError(
        f"cannot read the dimensions of {type(block).__name__}: it has neither int attributes "
        "cond_dim and num_features nor nn.Linear layers; pass dims=lambda block: (cond_dim, num_features)"
    )


@torch.no_grad()
def _copy_output_layers(source: nn.Module, target: RATBlock) -> None:
    """Copy the CAT affines' output layers (gamma's and beta's ``Linear(C, C)``) into the RAT heads."""
    if isinstance(source, DFBlock):
        layers = [(a.head.weight2, a.head.bias2) for a in (source.affine1, source.affine2)]
    else:  # DF-GAN's DFBLK: affine0/affine1, each with fc_gamma and fc_beta MLPs
        try:
            pairs = [(a.fc_gamma.linear2, a.fc_beta.linear2) for a in (source.affine0, source.affine1)]
        except AttributeError:
            raise ValueError(
                f"copy_weights=True copies the CAT output layers, but {type(source).__name__} has neither "
                "DFBlock's layout (affine1/affine2.head.weight2) nor DF-GAN's "
                "(affine0/affine1.fc_gamma.linear2); pass copy_weights=False"
            ) from None
        layers = [(torch.stack([g.weight, b.weight]), torch.stack([g.bias, b.bias])) for g, b in pairs]
    for (weight2, bias2), head in zip(layers, (target.affine1.head, target.affine2.head)):
        if weight2.shape != head.weight2.shape:
            raise ValueError(
                f"the output layers of {type(source).__name__} have shape {tuple(weight2.shape)} but the RAT "
                f"head's {tuple(head.weight2.shape)}: the dimensions were misread, pass dims="
            )
        head.weight2.copy_(weight2)
        head.bias2.copy_(bias2)


def _find_blocks(
    parent: nn.Module, select: Callable[[nn.Module], bool], prefix: str = "", seen: set[int] | None = None
) -> list[tuple[str, nn.Module, str, nn.Module]]:
    """``(qualified name, parent, name, block)`` for every selected module, not descending into one.

    A module registered in two places is walked once; a block registered twice is listed twice.
    """
    seen = set() if seen is None else seen
    found = []
    for name, child in parent.named_children():
        if select(child):
            found.append((prefix + name, parent, name, child))
        elif id(child) not in seen:
            seen.add(id(child))
            found += _find_blocks(child, select, f"{prefix}{name}.", seen)
    return found


def _selector(block_type: BlockSelector) -> Callable[[nn.Module], bool]:
    classes = block_type if isinstance(block_type, tuple) else (block_type,)
    if all(isinstance(c, type) for c in classes):
        return lambda module: isinstance(module, block_type)
    if callable(block_type):
        return block_type
    kind = type(block_type).__name__
    raise TypeError(f"block_type must be a module class, a tuple of classes or a predicate, got {kind}")


def _noise_position(model: nn.Module, noise_arg: int | str) -> tuple[int, str | None]:
    """Resolve ``noise_arg`` against ``model.forward``'s signature into ``(index, name)``."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # a scripted or C-implemented forward has no signature to read
        parameters = []
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if isinstance(noise_arg, str):
        if noise_arg not in names:
            raise ValueError(f"noise_arg {noise_arg!r} is not a parameter of the model's forward {names}")
        return names.index(noise_arg), noise_arg
    if isinstance(noise_arg, bool) or not isinstance(noise_arg, int) or noise_arg < 0:
        raise TypeError(f"noise_arg must be a non-negative int or a parameter name, got {noise_arg!r}")
    return noise_arg, names[noise_arg] if noise_arg < len(names) else None


def _factory(module: nn.Module) -> dict[str, Any]:
    """The device and dtype of ``module``'s first parameter, for the modules that replace it."""
    param = next(module.parameters(), None)
    return {"device": getattr(param, "device", None), "dtype": getattr(param, "dtype", None)}


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
    """Replace every CAT fusion block of ``model``, in place, by a RAT block sharing one recurrent memory.

    Each selected module becomes a :class:`ThreadedRATBlock` with its device, dtype,
    ``negative_slope`` and ``impl``. The state flows through the blocks in call order, afresh in each
    forward of ``model``; calling a block outside one (activation checkpointing included) raises. The
    guide "Converting an existing generator to RAT" weighs the options.

    Args:
        model: the generator to convert (not itself a fusion block).
        block_type: the CAT fusion block's class, a tuple of classes, or a predicate on modules.
        cell: ``"shared"`` (RAT-GAN: one ``nn.LSTMCell`` for every affine) or ``"per_affine"``.
        state_init: ``"zeros"`` (with ``"per_affine"``, the first cell's ``weight_hh`` never trains) or
            ``"noise"``, a trainable :class:`StateFromNoise` (``model.rat_memory.init``).
        noise_dim: size of the noise vector; required with ``state_init="noise"``.
        noise_arg: position or name of the noise among the arguments of ``model.forward``.
        copy_weights: copy each CAT affine's output layers (gamma's and beta's ``Linear(C, C)``) into
            the RAT head (the input layers read ``y``, RAT's read ``h_t``): the same output at init,
            close to a trained CAT's.
        dims: a function ``block -> (cond_dim, num_features)``; ``read_cat_dims`` by default.
        negative_slope: slope of the LeakyReLUs; ``None`` reads it from each block, else 0.2
            (DF-GAN's functional LeakyReLU cannot be read).

    Returns:
        ``model``, converted.

    Raises:
        ValueError: no module matches ``block_type``, options conflict, or ``model`` was converted.
        TypeError: ``block_type`` or ``noise_arg`` has the wrong type.

    Example:
        >>> class Gen(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fuse1, self.fuse2 = DFBlock(16, 8), DFBlock(16, 8)
        ...     def forward(self, x, y):
        ...         return self.fuse2(self.fuse1(x, y), y)
        >>> gen, x, y = Gen(), torch.randn(2, 8, 4, 4), torch.randn(2, 16)
        >>> before, gen = gen(x, y), convert_to_rat(gen, DFBlock, hidden_size=32)
        >>> type(gen.fuse1).__name__
        'ThreadedRATBlock'
        >>> torch.equal(gen(x, y), before)   # fresh CAT heads are copied: same output at init
        True
    """
    select = _selector(block_type)
    check_module("model", model)
    if cell not in ("shared", "per_affine"):
        raise ValueError(f"cell must be 'shared' or 'per_affine', got {cell!r}")
    if state_init not in ("zeros", "noise"):
        raise ValueError(f"state_init must be 'zeros' or 'noise', got {state_init!r}")
    if state_init == "noise" and noise_dim is None:
        raise ValueError("state_init='noise' needs noise_dim, the size of the model's noise vector")
    if state_init == "zeros" and noise_dim is not None:
        raise ValueError(f"noise_dim ({noise_dim}) is only used with state_init='noise'")
    if select(model):
        raise ValueError(f"the model itself ({type(model).__name__}) is a fusion block; pass its generator")
    if hasattr(model, MEMORY_NAME):
        raise ValueError(f"the model already has a {MEMORY_NAME!r} attribute: it was converted before")
    noise_index, noise_name = _noise_position(model, noise_arg)
    targets = _find_blocks(model, select)
    if not targets:
        raise ValueError(
            f"no module of {type(model).__name__} matches "
            f"block_type={getattr(block_type, '__name__', block_type)!r}; "
            "pass the class of the model's CAT fusion block (e.g. DF-GAN's DFBLK) or a predicate"
        )
    init = StateFromNoise(noise_dim, hidden_size, **_factory(targets[0][3])) if state_init == "noise" else None
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
            slope = float(getattr(child, "negative_slope", 0.2)) if negative_slope is None else negative_slope
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
    model.register_forward_pre_hook(memory._open_hook, with_kwargs=True)
    model.register_forward_hook(memory.close, with_kwargs=True, always_call=True)
    return model
