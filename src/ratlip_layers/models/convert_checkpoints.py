"""Load DF-GAN and GALIP checkpoints into this library's layers and models, by the key tables below.

From the command line, a GALIP snapshot becomes a
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
    "KeyAccounting", "convert_dfgan_state_dict", "convert_galip_discriminator", "convert_galip_generator",
    "galip_to_pretrained", "read_checkpoint",
]

GALIP_CLIP = ("ViT-B-32-quickgelu", "openai")
"""The CLIP GALIP is trained on (OpenAI's ViT-B/32), as an open_clip model name and pretrained tag."""

# A DF-GAN/GALIP affine key, inside a DFBLK (affines numbered from 0) or standalone:
# <prefix>[affine<k>.]<part>, the shortest prefix first so that k is read.
_AFFINE_KEY = re.compile(
    r"(?P<prefix>(?:.*?\.)??)(?:affine(?P<index>\d+)\.)?"
    r"(?P<part>fc_(?:gamma|beta)\.linear[12]\.(?:weight|bias))"
)
# Packed head key <- the DF-GAN layer of gamma and of beta, and how the pair is joined.
_HEAD_KEYS = {
    "fc1.weight": ("linear1.weight", torch.cat),
    "fc1.bias": ("linear1.bias", torch.cat),
    "weight2": ("linear2.weight", torch.stack),
    "bias2": ("linear2.bias", torch.stack),
}
_AFFINE_PARTS = [f"fc_{w}.{layer}" for layer, _ in _HEAD_KEYS.values() for w in ("gamma", "beta")]

# Key tables, source -> target: <i> stands for a block index, * for the rest of the key.
# GALIP's NetG -> the galip preset's RATLIPGenerator (its DFBLKs are then packed as above).
_GALIP_G_KEYS = {
    **{key: key for key in ("fc_code.weight", "fc_code.bias", "to_rgb.1.weight", "to_rgb.1.bias")},
    "mapping.FBlocks.<i>.*": "mapper_blocks.<i>.*",
    "mapping.conv_fuse.*": "conv_fuse.*",
    "mapping.conv.*": "conv_mapped.*",  # applied to fuse + 0.1 * mapped
    "mapping.fc_prompt.*": "clip_mapper.fc_prompt.*",
    **{f"GBlocks.<i>.{source}.*": f"blocks.<i>.{target}.*" for source, target in (
        ("c1", "conv1"), ("c2", "conv2"), ("c_sc", "shortcut"), ("fuse1", "fuse1"), ("fuse2", "fuse2"))},
}
# GALIP's NetD -> CLIPDiscriminator.net_d; a square conv_s (C -> C, as in the 768 -> 768 DBlocks) is dropped.
_UNUSED_REASON = "GALIP builds this shortcut conv but never uses it (channels unchanged)"
_D_BLOCK_PARTS = {"gamma": "gamma", "conv_r.0.weight": "res.0.weight", "conv_r.2.weight": "res.2.weight",
                  "conv_s.weight": "shortcut.weight", "conv_s.bias": "shortcut.bias"}
_GALIP_D_KEYS = {
    **{f"DBlocks.<i>.{source}": f"net_d.blocks.<i>.{target}" for source, target in
       {**_D_BLOCK_PARTS, "beta": "beta"}.items()},
    **{f"main.{source}": f"net_d.main.{target}" for source, target in _D_BLOCK_PARTS.items()},
}
# GALIP's NetC -> CLIPDiscriminator.net_c.
_GALIP_C_KEYS = {"joint_conv.0.weight": "net_c.joint.0.weight", "joint_conv.2.weight": "net_c.joint.2.weight"}
# A component naming CLIP (GALIP keeps its frozen CLIP inside NetG); fc_prompt is not one.
_CLIP_COMPONENT = re.compile(r"(^|\.)[^.]*clip[^.]*\.", re.IGNORECASE)


def _rename(key: str, table: Mapping[str, str]) -> str | None:
    """``key`` renamed by the first entry of a key table that matches it whole, or ``None``."""
    for source, target in table.items():
        pattern = re.escape(source).replace("<i>", r"(?P<i>\d+)").replace(r"\*", "(?P<rest>.+)")
        match = re.fullmatch(pattern, key)
        if match:
            return match.expand(target.replace("<i>", r"\g<i>").replace("*", r"\g<rest>"))
    return None


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
        n = sum(map(len, self.mapped.values()))
        return (f"{n + len(self.kept) + len(self.dropped)} source keys: {n} mapped onto {len(self.mapped)}, "
                f"{len(self.kept)} kept, {len(self.dropped)} dropped")


def _check_state_dict(name: str, value: object) -> None:
    if not isinstance(value, Mapping):
        kind = type(value).__name__
        raise TypeError(f"{name} must be a state dict (a mapping of str to Tensor), got {kind}")
    for key, v in value.items():
        if not isinstance(key, str) or not isinstance(v, Tensor):
            kinds = f"{type(key).__name__} key {key!r} -> {type(v).__name__}"
            raise TypeError(f"{name} must map str keys to tensors, got {kinds}")


def convert_dfgan_state_dict(
    state_dict: Mapping[str, Tensor], *, drop: Mapping[str, str] | None = None
) -> tuple[dict[str, Tensor], KeyAccounting]:
    """Rewrite DF-GAN's/GALIP's affine keys into :class:`~ratlip_layers.layers.DFBlock`'s layout.

    The eight keys ``fc_{gamma,beta}.linear{1,2}.{weight,bias}`` of each affine (a ``DFBLK``'s
    ``affine<k>`` becoming ``affine<k+1>``) become the four of its ``head``: ``fc1`` concatenates
    both ``linear1`` (gamma first), ``weight2`` and ``bias2`` stack both ``linear2``. Every other key
    is kept, except those in ``drop``.

    Args:
        state_dict: e.g. from :func:`read_checkpoint`.
        drop: source keys to leave out, each with the reason, recorded in the accounting.

    Returns:
        ``(converted, accounting)``, every source key accounted for once.

    Raises:
        ValueError: if no affine key is found, an affine lacks some of its keys, gamma's and beta's
            shapes differ, a ``DFBLK``'s affines are not ``0, 1``, or a ``drop`` key is unknown.

    Example:
        >>> from ratlip_layers.layers import DFBlock
        >>> src = {f"affine{k}.fc_{w}.linear{i}.{p}": torch.randn((8, 16 // i) if p == "weight" else 8)
        ...        for k in (0, 1) for w in ("gamma", "beta") for i in (1, 2) for p in ("weight", "bias")}
        >>> out, accounting = convert_dfgan_state_dict(src)
        >>> DFBlock(16, 8).load_state_dict(out)
        <All keys matched successfully>
        >>> print(accounting)
        16 source keys: 16 mapped onto 8, 0 kept, 0 dropped
    """
    _check_state_dict("state_dict", state_dict)
    drop = dict(drop or {})
    if unknown := sorted(set(drop) - set(state_dict)):
        raise ValueError(f"drop names keys that the state dict does not have: {unknown}")
    kept = [key for key in state_dict if key not in drop and not _AFFINE_KEY.fullmatch(key)]
    affines: dict[tuple[str, int | None], dict[str, str]] = {}  # (prefix, k) -> part -> source key
    for key in state_dict:
        if key not in drop and (match := _AFFINE_KEY.fullmatch(key)):
            index = None if match["index"] is None else int(match["index"])
            affines.setdefault((match["prefix"], index), {})[match["part"]] = key
    if not affines:
        raise ValueError(
            "found no DF-GAN/GALIP affine key (…fc_gamma.linear1.weight and the like) among "
            f"{len(state_dict)} keys (first ones: {list(state_dict)[:5]}); is this a DF-GAN or GALIP NetG?"
        )
    for block in {prefix for prefix, index in affines if index is not None}:
        indices = sorted(index for prefix, index in affines if prefix == block and index is not None)
        if indices != [0, 1]:
            raise ValueError(
                f"the fusion block at {block!r} has affines {indices}; DF-GAN's DFBLK has affine0 and "
                "affine1 (renumbered affine1 and affine2 here)"
            )
    converted: dict[str, Tensor] = {}
    mapped: dict[str, tuple[str, ...]] = {}
    for (prefix, index), parts in affines.items():
        source = prefix + ("" if index is None else f"affine{index}.")
        target = prefix + ("" if index is None else f"affine{index + 1}.") + "head."
        if missing := [part for part in _AFFINE_PARTS if part not in parts]:
            raise ValueError(f"the affine at {source!r} lacks {missing}")
        for name, (layer, join) in _HEAD_KEYS.items():
            sources = (parts[f"fc_gamma.{layer}"], parts[f"fc_beta.{layer}"])
            gamma, beta = (state_dict[s] for s in sources)
            if gamma.shape != beta.shape:
                raise ValueError(
                    f"{sources[0]} has shape {tuple(gamma.shape)} but {sources[1]} has {tuple(beta.shape)}; "
                    "gamma's and beta's MLPs must have the same shapes"
                )
            converted[target + name], mapped[target + name] = join([gamma, beta]), sources
    for key in kept:
        if key in converted:
            raise ValueError(f"kept key {key!r} collides with a converted affine key")
        converted[key] = state_dict[key]
    return converted, KeyAccounting(mapped=mapped, kept=tuple(kept), dropped=drop)


def convert_galip_generator(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], KeyAccounting]:
    """Map GALIP's ``NetG`` state dict onto the ``galip`` preset's :class:`RATLIPGenerator` keys.

    The modules correspond one to one: keys are renamed by the table ``_GALIP_G_KEYS``, every
    ``DFBLK`` is packed by :func:`convert_dfgan_state_dict`, and GALIP's frozen CLIP (a module named
    ``*clip*``) is dropped: the preset uses the CLIP model it is built on.

    Args:
        state_dict: GALIP's ``NetG`` state dict (e.g. ``read_checkpoint(path, "netG")``).

    Returns:
        ``(converted, accounting)``, ``converted`` loadable by ``load_trainable_state_dict`` of the
        ``galip`` preset; ``ValueError`` for a key not GALIP's ``NetG``'s or incomplete affines.

    Example:
        >>> src = {f"GBlocks.3.fuse1.affine{k}.fc_{w}.linear{i}.{p}": torch.zeros(8)
        ...        for k in (0, 1) for w in ("gamma", "beta") for i in (1, 2) for p in ("weight", "bias")}
        >>> src["GBlocks.3.c_sc.weight"] = torch.zeros(4, 8, 1, 1)
        >>> src["mapping.clip_mapper.ln.bias"] = torch.zeros(8)   # a frozen CLIP weight
        >>> out, accounting = convert_galip_generator(src)
        >>> sorted(out)[-2:]
        ['blocks.3.fuse1.affine2.head.weight2', 'blocks.3.shortcut.weight']
        >>> accounting.mapped["blocks.3.shortcut.weight"], list(accounting.dropped)
        (('GBlocks.3.c_sc.weight',), ['mapping.clip_mapper.ln.bias'])
    """
    _check_state_dict("state_dict", state_dict)
    origin: dict[str, str] = {}  # renamed key -> source key
    dropped: dict[str, str] = {}
    for key in state_dict:
        if (new := _rename(key, _GALIP_G_KEYS)) is not None:
            origin[new] = key
        elif _CLIP_COMPONENT.search(key):
            dropped[key] = "frozen CLIP weight: the galip preset uses the CLIP model it is built on"
        else:
            raise ValueError(f"{key!r} is not one of GALIP's NetG keys")
    converted, inner = convert_dfgan_state_dict({new: state_dict[key] for new, key in origin.items()})
    mapped = {target: tuple(origin[s] for s in sources) for target, sources in inner.mapped.items()}
    mapped.update({k: (origin[k],) for k in inner.kept if origin[k] != k})
    kept = tuple(k for k in inner.kept if origin[k] == k)
    return converted, KeyAccounting(mapped=mapped, kept=kept, dropped=dropped)


def convert_galip_discriminator(
    net_d: Mapping[str, Tensor], net_c: Mapping[str, Tensor]
) -> tuple[dict[str, Tensor], KeyAccounting]:
    """Map GALIP's ``NetD`` and ``NetC`` state dicts onto :class:`CLIPDiscriminator`'s trainable keys.

    Renamed by the tables ``_GALIP_D_KEYS`` and ``_GALIP_C_KEYS``; the ``conv_s`` that GALIP builds
    in its ``DBlocks`` but never applies is dropped, with that reason.

    Args:
        net_d, net_c: GALIP's ``NetD`` and ``NetC`` state dicts.

    Returns:
        ``(converted, accounting)``, ``converted`` loadable by ``load_trainable_state_dict``; the
        accounting names source keys ``netD.<key>`` and ``netC.<key>``. Other keys raise ``ValueError``.

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
    for net, state, table in (("netD", net_d, _GALIP_D_KEYS), ("netC", net_c, _GALIP_C_KEYS)):
        for key, value in state.items():
            if (new := _rename(key, table)) is None:
                raise ValueError(f"{net} key {key!r} is not one of GALIP's Net{net[3:]} keys {sorted(table)}")
            shortcut = state.get(key.rsplit(".", 1)[0] + ".weight") if ".conv_s." in key else None
            if shortcut is not None and shortcut.dim() == 4 and shortcut.shape[0] == shortcut.shape[1]:
                dropped[f"{net}.{key}"] = _UNUSED_REASON
            else:
                converted[new], mapped[new] = value, (f"{net}.{key}",)
    return converted, KeyAccounting(mapped=mapped, dropped=dropped)


def read_checkpoint(source: str | PathLike[str] | Mapping[str, Any], part: str = "netG") -> dict[str, Tensor]:
    """Read one network's state dict from a DF-GAN or GALIP checkpoint (``torch.load(weights_only=True)``).

    The checkpoint may be a snapshot ``{'model': {'netG': ..., 'netD': ...}, 'epoch': ...}``,
    ``{'netG': ...}`` or a bare state dict; a ``module.`` prefix on every key (DDP) is removed.

    Args:
        source: a path to a ``.pth`` file, or the object ``torch.load`` returned.
        part: which network to take from a snapshot: ``"netG"``, ``"netD"`` or ``"netC"``.

    Returns:
        The state dict, on the CPU; ``ValueError`` for a file not weights-only or without ``part``.

    Example:
        >>> snapshot = {"model": {"netG": {"module.fc.weight": torch.zeros(2, 3)}}, "epoch": 1}
        >>> list(read_checkpoint(snapshot))
        ['fc.weight']
    """
    if not isinstance(part, str):
        raise TypeError(f"part must be a str such as 'netG', got {type(part).__name__} ({part!r})")
    if not isinstance(source, (Mapping, str, PathLike)):
        kind = type(source).__name__
        raise TypeError(f"source must be a path to a .pth file or a loaded checkpoint mapping, got {kind}")
    obj: object = source
    if not isinstance(source, Mapping):
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
    if all(k.startswith("module.") for k in obj):
        return {k.removeprefix("module."): v for k, v in obj.items()}
    return dict(obj)


def galip_to_pretrained(
    checkpoint: str | PathLike[str] | Mapping[str, Any],
    directory: str | PathLike[str],
    clip_model: nn.Module,
    *,
    config: GeneratorConfig | None = None,
) -> KeyAccounting:
    """Convert a GALIP generator checkpoint into a :meth:`RATLIPGenerator.save_pretrained` folder.

    Args:
        checkpoint: GALIP's snapshot or ``NetG`` state dict, as :func:`read_checkpoint` takes it.
        directory: the folder to write.
        clip_model: the CLIP model to build on; for GALIP's checkpoints ``build_clip(*GALIP_CLIP)``.
        config: the generator config; ``GeneratorConfig.preset("galip")`` by default.

    Returns:
        :func:`convert_galip_generator`'s accounting; ``ValueError`` if the checkpoint does not fit.
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
        description="Convert a GALIP generator checkpoint into a RATLIPGenerator.save_pretrained folder.",
    )
    parser.add_argument("checkpoint", type=Path, help="GALIP's .pth snapshot or NetG state dict")
    parser.add_argument("directory", type=Path, help="the folder to write")
    parser.add_argument("--clip", default=GALIP_CLIP[0], help="open_clip model name (default: %(default)s)")
    parser.add_argument("--pretrained", default=GALIP_CLIP[1],
                        help="open_clip pretrained tag or weights file (default: %(default)s)")
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
