"""Load DF-GAN (and GALIP) checkpoints into this library's CAT layers.

DF-GAN's and GALIP's ``Affine`` keeps gamma and beta in two MLPs, ``fc_gamma`` and ``fc_beta``, each
``linear1, relu1, linear2``; their ``DFBLK`` numbers its two affines ``affine0`` and ``affine1``.
This library's :class:`~ratlip_layers.layers.Affine` packs both MLPs into one
``ModulationHead`` (``head.fc1`` holds both first layers, gamma's rows
first; ``head.weight2``/``head.bias2`` stack both second layers, gamma at index 0), and
:class:`~ratlip_layers.layers.DFBlock` numbers its affines ``affine1`` and ``affine2``.
:func:`convert_dfgan_state_dict` rewrites every such affine and keeps every other key as it is,
so a model that has DF-GAN's structure with this library's fusion blocks (same attribute names)
loads the result with ``strict=True``. The maths is unchanged: packing is exact.

GALIP's whole ``NetG`` maps onto the ``galip`` preset (:func:`convert_galip_generator`), its
``NetD`` and ``NetC`` onto :class:`~ratlip_layers.models.CLIPDiscriminator`
(:func:`convert_galip_discriminator`). From the command line, a GALIP snapshot becomes a
:meth:`~ratlip_layers.models.RATLIPGenerator.save_pretrained` folder::

    python -m ratlip_layers.models.convert_checkpoints state_epoch_1480.pth galip_cub/
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .config import GeneratorConfig
from .generator import RATLIPGenerator

__all__ = [
    "KeyAccounting",
    "convert_dfgan_state_dict",
    "convert_galip_discriminator",
    "convert_galip_generator",
    "galip_to_pretrained",
    "read_checkpoint",
]

GALIP_CLIP = ("ViT-B-32-quickgelu", "openai")
"""The CLIP GALIP is trained on (OpenAI's ViT-B/32), as an open_clip model name and pretrained tag."""

# DF-GAN's and GALIP's Affine keys: <prefix>affine<k>.fc_<gamma|beta>.linear<1|2>.<weight|bias> inside
# a DFBLK, <prefix>fc_... for a standalone Affine; tried in that order.
_TAIL = r"fc_(?P<which>gamma|beta)\.linear(?P<layer>[12])\.(?P<kind>weight|bias)$"
_AFFINE_KEYS = (
    re.compile(r"^(?P<prefix>(?:.*\.)?)affine(?P<index>\d+)\." + _TAIL),
    re.compile(r"^(?P<prefix>(?:.*\.)?)" + _TAIL),
)
_PARTS = [(w, layer, kind) for layer in "12" for w in ("gamma", "beta") for kind in ("weight", "bias")]


@dataclass(frozen=True)
class KeyAccounting:
    """Where every key of a source state dict went.

    Attributes:
        mapped: target key -> the source keys it is made of: two for a packed affine layer
            (gamma's and beta's), one for a renamed key.
        kept: source keys copied unchanged (same name in the target).
        dropped: source key -> why it was deliberately left out.

    Example:
        >>> acc = KeyAccounting(mapped={"a.head.bias2": ("x", "y")}, kept=("c",), dropped={"d": "unused"})
        >>> acc.source_keys() == {"x", "y", "c", "d"}, str(acc)
        (True, '4 source keys: 2 mapped onto 1, 1 kept, 1 dropped')
    """

    mapped: dict[str, tuple[str, ...]] = field(default_factory=dict)
    kept: tuple[str, ...] = ()
    dropped: dict[str, str] = field(default_factory=dict)

    def source_keys(self) -> set[str]:
        """Every source key accounted for, once each."""
        return {k for sources in self.mapped.values() for k in sources} | set(self.kept) | set(self.dropped)

    def __str__(self) -> str:
        n_mapped = sum(len(s) for s in self.mapped.values())
        total = n_mapped + len(self.kept) + len(self.dropped)
        return (
            f"{total} source keys: {n_mapped} mapped onto {len(self.mapped)}, "
            f"{len(self.kept)} kept, {len(self.dropped)} dropped"
        )


def convert_dfgan_state_dict(
    state_dict: Mapping[str, Tensor],
    *,
    drop: Mapping[str, str] | None = None,
) -> tuple[dict[str, Tensor], KeyAccounting]:
    """Rewrite DF-GAN's/GALIP's affine keys into :class:`~ratlip_layers.layers.DFBlock`'s layout.

    For each affine at ``P`` (``P = <block>.affine<k>.`` inside a ``DFBLK``, ``k`` in ``{0, 1}``,
    becoming ``<block>.affine<k+1>.``; or a standalone ``Affine``), the eight keys
    ``P fc_{gamma,beta}.linear{1,2}.{weight,bias}`` become four:

    - ``head.fc1.weight`` = ``cat(gamma.linear1.weight, beta.linear1.weight)``, shape ``(2C, in)``;
    - ``head.fc1.bias`` = ``cat`` of the two ``linear1`` biases, ``(2C,)``;
    - ``head.weight2`` = ``stack(gamma.linear2.weight, beta.linear2.weight)``, ``(2, C, C)``;
    - ``head.bias2`` = ``stack`` of the two ``linear2`` biases, ``(2, C)``.

    Every other key is kept unchanged, except those in ``drop``.

    Args:
        state_dict: the source state dict (e.g. from :func:`read_checkpoint`).
        drop: source keys to leave out, each with the reason, recorded in the accounting.

    Returns:
        ``(converted, accounting)``; every source key is in exactly one of ``accounting.mapped``'s
        sources, ``accounting.kept`` and ``accounting.dropped``.

    Raises:
        ValueError: if no affine key is found (not a DF-GAN/GALIP state dict), an affine misses some
            of its eight keys, gamma's and beta's shapes differ, a ``DFBLK``'s affines are not
            numbered ``0, 1``, or a ``drop`` key is not in ``state_dict``.

    Example:
        >>> from ratlip_layers.layers import DFBlock
        >>> src = {}
        >>> for k in (0, 1):
        ...     for which in ("gamma", "beta"):
        ...         src[f"fuse.affine{k}.fc_{which}.linear1.weight"] = torch.randn(8, 16)
        ...         src[f"fuse.affine{k}.fc_{which}.linear1.bias"] = torch.randn(8)
        ...         src[f"fuse.affine{k}.fc_{which}.linear2.weight"] = torch.randn(8, 8)
        ...         src[f"fuse.affine{k}.fc_{which}.linear2.bias"] = torch.randn(8)
        >>> out, accounting = convert_dfgan_state_dict(src)
        >>> block = DFBlock(16, 8)
        >>> block.load_state_dict({k.removeprefix("fuse."): v for k, v in out.items()})
        <All keys matched successfully>
        >>> print(accounting)
        16 source keys: 16 mapped onto 8, 0 kept, 0 dropped
    """
    _check_state_dict("state_dict", state_dict)
    drop = dict(drop or {})
    unknown = sorted(set(drop) - set(state_dict))
    if unknown:
        raise ValueError(f"drop names keys that the state dict does not have: {unknown}")

    groups: dict[tuple[str, int | None], dict[tuple[str, str, str], str]] = {}
    kept: list[str] = []
    for key in state_dict:
        if key in drop:
            continue
        match = _AFFINE_KEYS[0].match(key) or _AFFINE_KEYS[1].match(key)
        if match is None:
            kept.append(key)
            continue
        index = int(match["index"]) if "index" in match.groupdict() else None
        groups.setdefault((match["prefix"], index), {})[(match["which"], match["layer"], match["kind"])] = key
    if not groups:
        raise ValueError(
            "found no DF-GAN/GALIP affine key (…fc_gamma.linear1.weight and the like) among "
            f"{len(state_dict)} keys (first ones: {list(state_dict)[:5]}); "
            "is this a DF-GAN or GALIP generator?"
        )
    _check_dfblk_numbering(groups)

    converted: dict[str, Tensor] = {}
    mapped: dict[str, tuple[str, ...]] = {}
    for (prefix, index), parts in groups.items():
        missing = [
            f"fc_{w}.linear{layer}.{kind}"
            for w, layer, kind in _PARTS if (w, layer, kind) not in parts
        ]
        where = prefix + ("" if index is None else f"affine{index}.")
        if missing:
            raise ValueError(f"the affine at {where!r} lacks {missing}")
        target = prefix + ("" if index is None else f"affine{index + 1}.") + "head."
        for name, layer, kind, join in (
            ("fc1.weight", "1", "weight", torch.cat),
            ("fc1.bias", "1", "bias", torch.cat),
            ("weight2", "2", "weight", torch.stack),
            ("bias2", "2", "bias", torch.stack),
        ):
            sources = (parts[("gamma", layer, kind)], parts[("beta", layer, kind)])
            gamma, beta = (state_dict[s] for s in sources)
            if gamma.shape != beta.shape:
                raise ValueError(
                    f"{sources[0]} has shape {tuple(gamma.shape)} but {sources[1]} has {tuple(beta.shape)}; "
                    "gamma's and beta's MLPs must have the same shapes"
                )
            converted[target + name] = join([gamma, beta])
            mapped[target + name] = sources
    for key in kept:
        if key in converted:
            raise ValueError(f"kept key {key!r} collides with a converted affine key")
        converted[key] = state_dict[key]
    accounting = KeyAccounting(mapped=mapped, kept=tuple(kept), dropped=drop)
    # Each source key lands in exactly one place: a failure here is a bug of this function.
    assert accounting.source_keys() == set(state_dict)
    return converted, accounting


# GALIP's NetG module paths -> RATLIPGenerator's, applied to the start of each key.
_GALIP_G_RENAMES = (
    (re.compile(r"^mapping\.FBlocks\.(\d+)\."), r"mapper_blocks.\1."),
    (re.compile(r"^mapping\.conv_fuse\."), "conv_fuse."),
    (re.compile(r"^mapping\.conv\."), "conv_mapped."),
    (re.compile(r"^mapping\.fc_prompt\."), "clip_mapper.fc_prompt."),
    (re.compile(r"^GBlocks\.(\d+)\.c1\."), r"blocks.\1.conv1."),
    (re.compile(r"^GBlocks\.(\d+)\.c2\."), r"blocks.\1.conv2."),
    (re.compile(r"^GBlocks\.(\d+)\.c_sc\."), r"blocks.\1.shortcut."),
    (re.compile(r"^GBlocks\.(\d+)\.(fuse[12])\."), r"blocks.\1.\2."),
)
_GALIP_G_UNCHANGED = re.compile(r"^(fc_code|to_rgb\.1)\.(weight|bias)$")
# A component naming CLIP (GALIP keeps its frozen CLIP inside NetG); fc_prompt is not one.
_CLIP_COMPONENT = re.compile(r"(^|\.)[^.]*clip[^.]*\.", re.IGNORECASE)


def convert_galip_generator(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], KeyAccounting]:
    """Map GALIP's ``NetG`` state dict onto the ``galip`` preset's :class:`RATLIPGenerator` keys.

    The modules correspond one to one (``GeneratorConfig.preset("galip")`` is GALIP's generator:
    same shapes, 51,830,211 trainable parameters on ViT-B/32): ``fc_code`` and ``to_rgb`` keep their
    names; ``mapping.FBlocks.<i>`` becomes ``mapper_blocks.<i>``, ``mapping.conv_fuse``
    ``conv_fuse``, ``mapping.conv`` (applied to ``fuse + 0.1 * mapped``) ``conv_mapped`` and
    ``mapping.fc_prompt`` ``clip_mapper.fc_prompt`` (both lay the prompts out as
    ``(B, prompts, width)`` rows of the output, prompt ``i`` for the ``i``-th prompted block);
    ``GBlocks.<i>.c1``/``c2``/``c_sc`` become ``blocks.<i>.conv1``/``conv2``/``shortcut``; every
    ``DFBLK`` is packed as :func:`convert_dfgan_state_dict` does (gamma rows first, affines numbered
    from 1, order kept). Keys under a module whose name contains ``clip`` (GALIP's frozen CLIP
    inside ``NetG``) are dropped: the preset uses the CLIP model it is built on.

    Args:
        state_dict: GALIP's ``NetG`` state dict (e.g. ``read_checkpoint(path, "netG")``).

    Returns:
        ``(converted, accounting)``, ``converted`` loadable by
        ``RATLIPGenerator.load_trainable_state_dict`` on the ``galip`` preset.

    Raises:
        ValueError: if a key is not one of GALIP's ``NetG`` keys, or its affines are incomplete.

    Example:
        >>> src = {"GBlocks.3.c_sc.weight": torch.zeros(4, 8, 1, 1)}
        >>> src["mapping.clip_mapper.ln.bias"] = torch.zeros(8)   # a frozen CLIP weight
        >>> for k in (0, 1):
        ...     for which in ("gamma", "beta"):
        ...         for layer, shape in (("linear1", (8, 20)), ("linear2", (8, 8))):
        ...             src[f"GBlocks.3.fuse1.affine{k}.fc_{which}.{layer}.weight"] = torch.zeros(shape)
        ...             src[f"GBlocks.3.fuse1.affine{k}.fc_{which}.{layer}.bias"] = torch.zeros(8)
        >>> out, accounting = convert_galip_generator(src)
        >>> sorted(out)[-2:]
        ['blocks.3.fuse1.affine2.head.weight2', 'blocks.3.shortcut.weight']
        >>> accounting.mapped["blocks.3.shortcut.weight"], list(accounting.dropped)
        (('GBlocks.3.c_sc.weight',), ['mapping.clip_mapper.ln.bias'])
    """
    _check_state_dict("state_dict", state_dict)
    renamed: dict[str, Tensor] = {}
    origin: dict[str, str] = {}  # renamed key -> source key
    dropped: dict[str, str] = {}
    for key, value in state_dict.items():
        new = _rename_galip_generator_key(key)
        if new is None:
            if _CLIP_COMPONENT.search(key) is None:
                raise ValueError(f"{key!r} is not one of GALIP's NetG keys")
            dropped[key] = "frozen CLIP weight: the galip preset uses the CLIP model it is built on"
            continue
        renamed[new], origin[new] = value, key
    converted, inner = convert_dfgan_state_dict(renamed)
    mapped = {target: tuple(origin[s] for s in sources) for target, sources in inner.mapped.items()}
    kept = tuple(origin[k] for k in inner.kept if origin[k] == k)
    mapped.update({k: (origin[k],) for k in inner.kept if origin[k] != k})
    return converted, KeyAccounting(mapped=mapped, kept=kept, dropped=dropped)


def _rename_galip_generator_key(key: str) -> str | None:
    if _GALIP_G_UNCHANGED.match(key):
        return key
    for pattern, replacement in _GALIP_G_RENAMES:
        new, count = pattern.subn(replacement, key)
        if count:
            return new
    return None


_D_BLOCK_KEY = re.compile(r"^(?:DBlocks\.(?P<index>\d+)|main)\.(?P<rest>.+)$")
# GALIP's D_Block parts -> DBlock's: conv_r is DBlock.res (same Sequential indices), conv_s its shortcut.
_D_BLOCK_PARTS = {
    "gamma": "gamma",
    "beta": "beta",
    "conv_r.0.weight": "res.0.weight",
    "conv_r.2.weight": "res.2.weight",
    "conv_s.weight": "shortcut.weight",
    "conv_s.bias": "shortcut.bias",
}
_C_PARTS = {"joint_conv.0.weight": "joint.0.weight", "joint_conv.2.weight": "joint.2.weight"}


def convert_galip_discriminator(
    net_d: Mapping[str, Tensor], net_c: Mapping[str, Tensor]
) -> tuple[dict[str, Tensor], KeyAccounting]:
    """Map GALIP's ``NetD`` and ``NetC`` state dicts onto :class:`CLIPDiscriminator`'s trainable keys.

    ``NetD``: ``DBlocks.<i>`` becomes ``net_d.blocks.<i>`` and ``main`` becomes ``net_d.main``, with
    ``conv_r`` -> ``res`` and ``conv_s`` -> ``shortcut``. GALIP builds ``conv_s`` in every D-block
    but applies it only where the channels change; the two ``DBlocks`` keep their channels, so their
    ``conv_s`` (a square 1x1 convolution) is never used, and is dropped, with that reason, in the
    accounting. ``NetC``: ``joint_conv`` becomes ``net_c.joint``. Nothing is packed; the maths is
    GALIP's (``shortcut(x) + gamma * res(x) + beta * feature``, then NetC on the concatenation of
    the image code and the tiled sentence, in that order).

    Args:
        net_d: GALIP's ``NetD`` state dict.
        net_c: GALIP's ``NetC`` state dict.

    Returns:
        ``(converted, accounting)``, ``converted`` loadable by
        ``CLIPDiscriminator.load_trainable_state_dict``; the accounting names source keys
        ``netD.<key>`` and ``netC.<key>``.

    Raises:
        ValueError: if a key is not one of GALIP's ``NetD``/``NetC`` keys.

    Example:
        >>> d = {"main.gamma": torch.zeros(1), "main.conv_r.0.weight": torch.zeros(4, 8, 3, 3)}
        >>> out, acc = convert_galip_discriminator(d, {"joint_conv.0.weight": torch.zeros(1, 12, 2, 2)})
        >>> sorted(out)
        ['net_c.joint.0.weight', 'net_d.main.gamma', 'net_d.main.res.0.weight']
    """
    _check_state_dict("net_d", net_d)
    _check_state_dict("net_c", net_c)
    converted: dict[str, Tensor] = {}
    mapped: dict[str, tuple[str, ...]] = {}
    dropped: dict[str, str] = {}
    for key, value in net_d.items():
        match = _D_BLOCK_KEY.match(key)
        part = _D_BLOCK_PARTS.get(match["rest"]) if match else None
        if part is None:
            raise ValueError(
                f"netD key {key!r} is not one of GALIP's NetD keys (DBlocks.<i>. or main. followed by "
                f"{sorted(_D_BLOCK_PARTS)})"
            )
        block = "net_d.main." if match["index"] is None else f"net_d.blocks.{match['index']}."
        source_block = key[: len(key) - len(match["rest"])]
        if part.startswith("shortcut.") and _is_square(net_d.get(source_block + "conv_s.weight")):
            dropped[f"netD.{key}"] = "GALIP builds this shortcut conv but never uses it (channels unchanged)"
            continue
        converted[block + part] = value
        mapped[block + part] = (f"netD.{key}",)
    for key, value in net_c.items():
        if key not in _C_PARTS:
            raise ValueError(f"netC key {key!r} is not one of GALIP's NetC keys {sorted(_C_PARTS)}")
        converted["net_c." + _C_PARTS[key]] = value
        mapped["net_c." + _C_PARTS[key]] = (f"netC.{key}",)
    return converted, KeyAccounting(mapped=mapped, dropped=dropped)


def _is_square(weight: Tensor | None) -> bool:
    """Whether a conv weight maps ``C`` channels to ``C`` (a D-block whose shortcut GALIP skips)."""
    return weight is not None and weight.dim() == 4 and weight.shape[0] == weight.shape[1]


def _check_dfblk_numbering(groups: Mapping[tuple[str, int | None], object]) -> None:
    """DF-GAN's DFBLK has ``affine0`` and ``affine1``; renumbering assumes exactly those two."""
    per_block: dict[str, set[int]] = {}
    for prefix, index in groups:
        if index is not None:
            per_block.setdefault(prefix, set()).add(index)
    for prefix, indices in per_block.items():
        if indices != {0, 1}:
            raise ValueError(
                f"the fusion block at {prefix!r} has affines {sorted(indices)}; DF-GAN's DFBLK has "
                "affine0 and affine1 (renumbered affine1 and affine2 here)"
            )


def _check_state_dict(name: str, value: object) -> None:
    """Raise ``TypeError`` unless ``value`` is a mapping of str keys to tensors."""
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{name} must be a state dict (a mapping of str to Tensor), got {type(value).__name__}"
        )
    for key, tensor in value.items():
        if not isinstance(key, str) or not isinstance(tensor, Tensor):
            raise TypeError(
                f"{name} must map str keys to tensors, got {type(key).__name__} key {key!r} "
                f"-> {type(tensor).__name__}"
            )


def read_checkpoint(source: str | PathLike[str] | Mapping[str, Any], part: str = "netG") -> dict[str, Tensor]:
    """Read one network's state dict from a DF-GAN or GALIP checkpoint.

    The file is read with ``torch.load(weights_only=True)``, so it cannot run code. Three nestings
    are understood: the training snapshots of DF-GAN and GALIP, ``{'model': {'netG': ..., 'netD':
    ..., 'netC': ...}, 'optimizers': ..., 'epoch': ...}``; ``{'netG': ...}``; and a bare state dict.
    A ``module.`` prefix on every key (a model saved inside ``DataParallel``/DDP) is removed.

    Args:
        source: a path to a ``.pth`` file, or the object ``torch.load`` returned.
        part: which network to take from a snapshot: ``"netG"``, ``"netD"`` or ``"netC"``.

    Returns:
        The state dict, on the CPU.

    Raises:
        ValueError: if the file is not a weights-only checkpoint, or holds no ``part`` state dict.

    Example:
        >>> snapshot = {"model": {"netG": {"module.fc.weight": torch.zeros(2, 3)}}, "epoch": 1}
        >>> list(read_checkpoint(snapshot))
        ['fc.weight']
    """
    if not isinstance(part, str):
        raise TypeError(f"part must be a str such as 'netG', got {type(part).__name__} ({part!r})")
    if isinstance(source, Mapping):
        obj: object = source
    elif not isinstance(source, (str, PathLike)):
        raise TypeError(
            "source must be a path to a .pth file or a loaded checkpoint mapping, "
            f"got {type(source).__name__}"
        )
    else:
        if not os.path.isfile(source):
            what = "is a directory" if os.path.isdir(source) else "does not exist"
            raise ValueError(f"checkpoint file {source} {what}; expected a DF-GAN or GALIP .pth file")
        try:
            obj = torch.load(source, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise ValueError(
                f"{source} is not a weights-only checkpoint (it pickles objects other than tensors "
                f"and containers), refused: {error}"
            ) from error
        except (EOFError, RuntimeError, OSError) as error:
            raise ValueError(
                f"{source} is not a readable checkpoint (empty, truncated or not a torch file): {error}"
            ) from error
    where = "the checkpoint"
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj, where = obj["model"], "checkpoint['model']"
    if isinstance(obj, Mapping) and part in obj:
        obj, where = obj[part], f"{where}[{part!r}]"
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        keys = sorted(map(str, obj))[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(
            f"{where} is not a state dict of {part}: expected {{'model': {{{part!r}: state_dict}}}}, "
            f"{{{part!r}: state_dict}} or a state dict of tensors, got {keys}"
        )
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def galip_to_pretrained(
    checkpoint: str | PathLike[str] | Mapping[str, Any],
    directory: str | PathLike[str],
    clip_model: nn.Module,
    *,
    config: GeneratorConfig | None = None,
) -> KeyAccounting:
    """Convert a GALIP generator checkpoint into a :meth:`RATLIPGenerator.save_pretrained` folder.

    Args:
        checkpoint: GALIP's snapshot or ``NetG`` state dict (a path or a loaded object, see
            :func:`read_checkpoint`).
        directory: the folder to write.
        clip_model: the CLIP model the generator is built on: GALIP's, OpenAI's ViT-B/32
            (``build_clip(*GALIP_CLIP)``), for GALIP's checkpoints.
        config: the generator config; ``GeneratorConfig.preset("galip")`` by default.

    Returns:
        The key accounting of :func:`convert_galip_generator`.

    Raises:
        ValueError: if the checkpoint is refused by :func:`read_checkpoint` or its keys do not fit
            the generator.
    """
    state, accounting = convert_galip_generator(read_checkpoint(checkpoint, "netG"))
    generator = RATLIPGenerator(config or GeneratorConfig.preset("galip"), clip_model)
    generator.load_trainable_state_dict(state)
    generator.save_pretrained(directory)
    return accounting


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m ratlip_layers.models.convert_checkpoints SNAPSHOT DIRECTORY``."""
    from ..clip.build import build_clip  # open_clip is needed only for this command

    parser = argparse.ArgumentParser(
        prog="python -m ratlip_layers.models.convert_checkpoints",
        description="Convert a GALIP generator checkpoint into a RATLIPGenerator.save_pretrained folder "
        "(galip preset).",
    )
    parser.add_argument("checkpoint", type=Path, help="GALIP's .pth snapshot or NetG state dict")
    parser.add_argument("directory", type=Path, help="the folder to write")
    parser.add_argument("--clip", default=GALIP_CLIP[0], help="open_clip model name (default: %(default)s)")
    parser.add_argument(
        "--pretrained",
        default=GALIP_CLIP[1],
        help="open_clip pretrained tag or weights file (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    state = read_checkpoint(args.checkpoint, "netG")  # refuse a wrong file before building CLIP
    clip_model, _ = build_clip(args.clip, args.pretrained)
    accounting = galip_to_pretrained(state, args.directory, clip_model)
    print(f"{args.checkpoint} -> {args.directory}: {accounting}")
    for key, reason in accounting.dropped.items():
        print(f"  dropped {key}: {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
