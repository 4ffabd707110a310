"""The generator's configuration and its named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .._checks import check_divisible, check_positive_int

__all__ = ["GeneratorConfig"]

FUSIONS = ("cat", "rat")
STATE_INITS = ("zeros", "noise")

_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "galip": {"mapper_fusion": "cat", "shuffle_attention": False},
    "galip+sa": {"mapper_fusion": "cat"},
    "galip+rat": {"shuffle_attention": False},
    "ratlip": {},
    "tiny": dict(image_size=32, ngf=8, z_dim=16, hidden_size=16, code_channels=16, mapper_mid_channels=8,
                 mapper_blocks=2, fusion="rat", sa_groups=2, state_init="noise"),
}


@dataclass(frozen=True)
class GeneratorConfig:
    """Shapes and switches of :class:`RATLIPGenerator`; the defaults are the ``"paper"`` preset.

    The CLIP-dependent shapes (width, grid ``g``, sentence size) come from the CLIP model.

    Args:
        image_size: output size ``S``; the G-blocks upsample the ``g x g`` map through the powers of
            two between ``g`` and ``S``, then to ``S``, so ``S`` must exceed ``g``.
        ngf: base channel count; the G-blocks run ``8 ngf`` down to ``ngf`` channels.
        hidden_size: LSTM hidden size of every RAT layer.
        code_channels: channels of the noise map ``fc_code`` makes and of the mapper blocks.
        mapper_mid_channels, mapper_blocks: inner channels of a mapper block; how many there are.
        mapper_fusion, fusion: ``"rat"`` (RATBlock) or ``"cat"`` (DFBlock) in the mapper blocks and
            in the G-blocks.
        shuffle_attention: SA convolutions instead of plain convolutions in the blocks.
        sa_groups: shuffle-attention groups; ``2 * sa_groups`` must divide ``ngf`` and ``code_channels``.
        share_cell: one LSTM cell for every RAT layer (RAT-GAN) instead of one per affine.
        state_init: ``"zeros"`` or ``"noise"`` (``StateFromNoise``) for the initial LSTM state.
        prompt_blocks: CLIP blocks given a prompt token; ``None``: as :class:`~ratlip_layers.CLIPMapper`.

    Example:
        >>> cfg = GeneratorConfig.preset("tiny")
        >>> cfg.image_size, cfg.fusion, GeneratorConfig.from_dict(cfg.to_dict()) == cfg
        (32, 'rat', True)
    """

    image_size: int = 224
    ngf: int = 64
    z_dim: int = 100
    hidden_size: int = 64
    code_channels: int = 64
    mapper_mid_channels: int = 32
    mapper_blocks: int = 4
    mapper_fusion: str = "rat"
    fusion: str = "cat"
    shuffle_attention: bool = True
    sa_groups: int = 8
    share_cell: bool = False
    state_init: str = "zeros"
    prompt_blocks: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("image_size", "ngf", "z_dim", "hidden_size", "code_channels", "mapper_mid_channels",
                     "mapper_blocks", "sa_groups"):
            check_positive_int(name, getattr(self, name))
        for name in ("shuffle_attention", "share_cell"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name, allowed in (("mapper_fusion", FUSIONS), ("fusion", FUSIONS), ("state_init", STATE_INITS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not self.uses_rat and (self.share_cell or self.state_init != "zeros"):
            raise ValueError(
                "share_cell=True and state_init='noise' need a RAT fusion (mapper_fusion or fusion = 'rat'), "
                f"got mapper_fusion={self.mapper_fusion!r}, fusion={self.fusion!r}, "
                f"share_cell={self.share_cell}, state_init={self.state_init!r}"
            )
        if self.shuffle_attention:
            check_divisible("ngf", self.ngf, 2 * self.sa_groups, "2 * sa_groups")
            check_divisible("code_channels", self.code_channels, 2 * self.sa_groups, "2 * sa_groups")
        if self.prompt_blocks is not None:
            blocks = self.prompt_blocks
            if isinstance(blocks, (str, bytes)) or not hasattr(blocks, "__iter__"):
                raise TypeError(f"prompt_blocks must be None or a sequence of ints, got {blocks!r}")
            # A tuple, so that a config read back from JSON (a list) compares equal.
            object.__setattr__(self, "prompt_blocks", tuple(blocks))

    @property
    def uses_rat(self) -> bool:
        """Whether any block uses RAT fusion (and so an LSTM state is threaded)."""
        return "rat" in (self.mapper_fusion, self.fusion)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GeneratorConfig:
        """A named configuration, with ``overrides`` replacing fields: ``"paper"`` (= ``"ratlip"``),
        the paper's ablation rows ``"galip"``, ``"galip+sa"`` and ``"galip+rat"``, and ``"tiny"``, every
        feature on at toy sizes, for tests and CPU runs."""
        if name not in _PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {sorted(_PRESETS)}")
        return dataclasses.replace(cls(**_PRESETS[name]), **overrides)

    @staticmethod
    def presets() -> tuple[str, ...]:
        """The names :meth:`preset` accepts."""
        return tuple(_PRESETS)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict."""
        out = dataclasses.asdict(self)
        return {**out, "prompt_blocks": list(self.prompt_blocks)} if self.prompt_blocks is not None else out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        """Rebuild a config from :meth:`to_dict`'s output; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(data) - known):
            raise ValueError(f"unknown GeneratorConfig fields {unknown}; expected some of {sorted(known)}")
        return cls(**data)
