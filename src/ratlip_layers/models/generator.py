"""RATLIP's generator for any open_clip ViT: z, s -> LSTM state -> gamma/beta -> image, in one forward."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .._checks import check_nonnegative_int, check_same_batch, check_same_device, check_size, check_tensor
from .._checks import factory_kwargs
from .._io import read_reported, write_atomic
from .._modes import eval_mode
from ..clip._vit import vision_tower
from ..clip.build import CLIP_SPEC_ATTR, build_clip, clip_spec
from ..clip.frozen import WithFrozenCLIP
from ..clip.mapper import CLIPMapper
from ..clip.text import CLIPTextAdapter
from ..layers import StateFromNoise
from .blocks import GBlock, MapperBlock
from .config import GeneratorConfig

__all__ = ["GeneratorConfig", "RATLIPGenerator", "upsample_sizes"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CLIP_WEIGHTS_FILE = "clip.safetensors"
FORMAT = "ratlip-generator"

MAPPED_SCALE = 0.1
"""Weight of CLIP's output in ``fuse + 0.1 * mapped`` (GALIP's and the reference's constant)."""


def upsample_sizes(grid: int, image_size: int) -> tuple[int, ...]:
    """The G-blocks' output sizes: the powers of two between ``grid`` and ``image_size``, then it.

    Example:
        >>> upsample_sizes(7, 224), upsample_sizes(4, 32)
        ((8, 16, 32, 64, 128, 224), (8, 16, 32))
    """
    if image_size <= grid:
        raise ValueError(
            f"image_size must be larger than the CLIP grid ({grid}x{grid}), got image_size={image_size}"
        )
    powers = (2**k for k in range(1, image_size.bit_length()))
    return (*(p for p in powers if grid < p < image_size), image_size)


class RATLIPGenerator(WithFrozenCLIP):
    """RATLIP's text-to-image generator, built on (and sharing) a frozen open_clip ViT.

    :meth:`forward` reads top to bottom: noise and sentence make the condition and the LSTM state,
    which goes per sample through every RAT fusion in network order; mapper blocks, CLIP (through
    :class:`CLIPMapper`) and upsampling G-blocks turn the noise into an unbounded image.

    Args:
        config: the shapes and switches, e.g. ``GeneratorConfig.preset("paper")``.
        clip_model: an open_clip CLIP model with a ViT image tower (shared, frozen in place).
        tokenizer: tokenizer for :meth:`generate` with captions; open_clip's CLIP tokenizer by default.
        impl: implementation of the fusions and shuffle attention, ``"ref"``, ``"fused"`` or
            ``None`` (:func:`~ratlip_layers.layers.default_impl`).

    Shape:
        - noise: :math:`(B, \\text{z\\_dim})`
        - sentence: :math:`(B, E)`, CLIP sentence embeddings
        - output: :math:`(B, 3, S, S)`

    Example:
        >>> clip_model, tokenizer = tiny_clip()
        >>> G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)
        >>> G(torch.randn(2, 16), torch.randn(2, 32)).shape
        torch.Size([2, 3, 32, 32])
        >>> G.generate(["a red bird"], seed=0).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self, config: GeneratorConfig, clip_model: nn.Module, *, tokenizer: Any = None,
        impl: str | None = None, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        if not isinstance(config, GeneratorConfig):
            raise TypeError(f"config must be a GeneratorConfig, got {type(config).__name__}")
        _, geometry = vision_tower(clip_model)
        factory = factory_kwargs(device, dtype)
        self.config, self.z_dim, self.grid = config, config.z_dim, geometry.grid
        self.sentence_dim = geometry.embed_dim
        self.cond_dim = cond = config.z_dim + geometry.embed_dim
        sizes = upsample_sizes(geometry.grid, config.image_size)
        if config.shuffle_attention and geometry.grid < 2:
            raise ValueError(
                "shuffle attention in the mapper blocks needs a CLIP grid of at least 2x2, got "
                f"{geometry.grid}x{geometry.grid}; use shuffle_attention=False or a smaller patch size"
            )
        channels = [config.ngf * min(2**i, 8) for i in range(len(sizes) + 1)][::-1]
        code, hidden = config.code_channels, config.hidden_size
        cell = nn.LSTMCell(cond, hidden, **factory) if config.share_cell else None
        kwargs = dict(hidden_size=hidden, cell=cell, shuffle_attention=config.shuffle_attention,
                      sa_groups=config.sa_groups, impl=impl, **factory)
        self.state_init = StateFromNoise(config.z_dim, hidden, **factory) if config.state_init == "noise" else None
        self.fc_code = nn.Linear(config.z_dim, code * self.grid**2, **factory)
        self.mapper_blocks = nn.ModuleList(
            MapperBlock(cond, code, config.mapper_mid_channels, code, fusion=config.mapper_fusion, **kwargs)
            for _ in range(config.mapper_blocks)
        )
        self.conv_fuse = nn.Conv2d(code, geometry.width, 5, 1, 2, **factory)
        self.clip_mapper = CLIPMapper(clip_model, cond, prompt_blocks=config.prompt_blocks, **factory)
        self.conv_mapped = nn.Conv2d(geometry.width, channels[0], 5, 1, 2, **factory)
        self.blocks = nn.ModuleList(
            GBlock(cond, c_in, c_out, size, fusion=config.fusion, **kwargs)
            for c_in, c_out, size in zip(channels[:-1], channels[1:], sizes)
        )
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(channels[-1], 3, 3, 1, 1, **factory))
        self.text = CLIPTextAdapter(clip_model, tokenizer=tokenizer)

    @property
    def clip_model(self) -> nn.Module:
        """The frozen open_clip model this generator is built on."""
        return self.clip_mapper.clip.model

    def _check_inputs(self, noise: Tensor, sentence: Tensor) -> None:
        check_tensor("noise", noise, 2, "(B, z_dim)")
        check_size("noise", noise, 1, self.z_dim, "z_dim")
        check_tensor("sentence", sentence, 2, "(B, embed_dim)")
        check_size("sentence", sentence, 1, self.sentence_dim, "the CLIP model's embed_dim")
        check_same_batch((("noise", noise), ("sentence", sentence)))
        if noise.shape[0] == 0:
            raise ValueError(f"noise and sentence need at least one sample, got shape {tuple(noise.shape)}")
        check_same_device((("the generator", self.fc_code.weight), ("noise", noise), ("sentence", sentence)))

    def forward(self, noise: Tensor, sentence: Tensor) -> Tensor:
        self._check_inputs(noise, sentence)
        cond = torch.cat((noise, sentence.to(noise.dtype)), dim=1)
        state = self.state_init(noise) if self.state_init is not None else None
        x = self.fc_code(noise.to(self.fc_code.weight.dtype)).view(noise.shape[0], -1, self.grid, self.grid)
        for block in self.mapper_blocks:
            x, state = block(x, cond, state)
        fuse = self.conv_fuse(x)
        mapped = self.clip_mapper(fuse, cond)
        x = self.conv_mapped(fuse + MAPPED_SCALE * mapped)
        for block in self.blocks:
            x, state = block(x, cond, state)
        return self.to_rgb(x)

    @torch.no_grad()
    def generate(
        self, captions_or_sentences: Sequence[str] | Tensor, *, noise: Tensor | None = None,
        seed: int | None = None
    ) -> Tensor:
        """Images in [-1, 1], computed in eval mode without grad (the mode is restored afterwards).

        Args:
            captions_or_sentences: a list of B captions, (B, L) token ids or (B, E) sentence embeddings.
            noise: (B, z_dim) noise; drawn from N(0, I) when not given.
            seed: seed of the noise draw; not allowed together with ``noise``.

        Returns:
            (B, 3, S, S) images.
        """
        if seed is not None:
            if noise is not None:
                raise ValueError(f"give either noise or seed, not both (got seed={seed} and noise)")
            seed = check_nonnegative_int("seed", seed)
        if isinstance(captions_or_sentences, Tensor) and captions_or_sentences.is_floating_point():
            sentence = check_tensor("sentence", captions_or_sentences, 2, "(B, embed_dim)")
            if len(sentence) == 0:
                raise ValueError("generate needs at least one sentence embedding, got shape (0, ...)")
        else:
            sentence = self.text(captions_or_sentences).sentence
        if noise is None:
            w = self.fc_code.weight
            rng = torch.Generator(w.device).manual_seed(seed) if seed is not None else None
            noise = torch.randn(len(sentence), self.z_dim, generator=rng, device=w.device, dtype=w.dtype)
        with eval_mode(self):
            return self(noise, sentence).clamp(-1.0, 1.0)

    def save_pretrained(self, directory: str | Path, *, include_clip: bool | None = None) -> None:
        """Write ``config.json`` (the config and how to rebuild CLIP) and ``model.safetensors``
        (:meth:`trainable_state_dict`) to ``directory``, created if missing.

        Args:
            include_clip: also store CLIP's weights in ``clip.safetensors``; by default only when its
                spec cannot restore them (a random CLIP, as in tests).
        """
        spec = clip_spec(self.clip_model)
        if include_clip is None:
            include_clip = spec is not None and spec["pretrained"] is None
        path = Path(directory)
        # Each file atomically, config.json last: a reader never loads half a file.
        write_atomic(path / WEIGHTS_FILE, lambda f: save_file(_unshared(self.trainable_state_dict()), str(f)))
        if include_clip:
            write_atomic(path / CLIP_WEIGHTS_FILE, lambda f: save_file(_unshared(self.clip_model.state_dict()), str(f)))
        meta = {"format": FORMAT, "version": 1, "generator": self.config.to_dict(), "clip": spec,
                "clip_weights": CLIP_WEIGHTS_FILE if include_clip else None}
        write_atomic(path / CONFIG_FILE, json.dumps(meta, indent=2).encode())

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, clip_model: nn.Module | None = None, *, impl: str | None = None,
        device: torch.device | str | None = None
    ) -> RATLIPGenerator:
        """Load a generator written by :meth:`save_pretrained` (safetensors only, nothing unpickled).

        Args:
            clip_model: the CLIP model to build on; by default rebuilt from the saved spec (and weights).
            impl, device: as in the constructor (``device`` also for a rebuilt CLIP).
        """
        path = Path(directory)
        for file in (path / CONFIG_FILE, path / WEIGHTS_FILE):
            if not file.is_file():
                raise ValueError(f"{file} is missing: save_pretrained writes {CONFIG_FILE} and {WEIGHTS_FILE}")
        meta = read_reported(path / CONFIG_FILE, lambda f: json.loads(f.read_text()))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path / CONFIG_FILE} must have format {FORMAT!r}, got {meta.get('format')!r}")
        config = GeneratorConfig.from_dict(meta["generator"])
        tokenizer = None
        if clip_model is None:
            spec = meta.get("clip")
            if spec is None:
                raise ValueError(f"{path} does not say how to build its CLIP model (not made by build_clip); "
                                 "pass clip_model=...")
            weights = meta.get("clip_weights")
            pretrained, sha256 = (None, None) if weights else (spec["pretrained"], spec.get("weights_sha256"))
            clip_model, tokenizer = build_clip(
                spec["model_name"], pretrained, weights_sha256=sha256, device=device, **spec["model_kwargs"]
            )
            if weights:
                clip_model.load_state_dict(read_reported(path / weights, lambda f: load_file(f, device="cpu")))
            setattr(clip_model, CLIP_SPEC_ATTR, spec)
        generator = cls(config, clip_model, tokenizer=tokenizer, impl=impl, device=device)
        weights = read_reported(path / WEIGHTS_FILE, lambda f: load_file(f, device="cpu"))
        generator.load_trainable_state_dict(weights)
        return generator

    def extra_repr(self) -> str:
        size = self.config.image_size
        return f"z_dim={self.z_dim}, sentence_dim={self.sentence_dim}, grid={self.grid}, image_size={size}"


def _unshared(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state`` with a copy of each tensor whose storage an earlier entry uses (a shared LSTM cell),
    which safetensors refuses; the copies load back into the same shared parameter."""
    seen: set[int] = set()
    out = {}
    for key, value in state.items():
        ptr = value.untyped_storage().data_ptr()
        out[key] = value.detach().clone() if ptr in seen else value.detach().contiguous()
        seen.add(ptr)
    return out
